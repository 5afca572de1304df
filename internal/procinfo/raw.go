package procinfo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// UserHZ is the unit of /proc/<pid>/stat times. The kernel reports them in
// USER_HZ, which is 100 on every Linux architecture Go supports.
const UserHZ = 100

// userHZ is UserHZ as this package has always spelt it.
const userHZ = UserHZ

// ReadFile reads /proc/<pid>/<name> (name may hold a slash:
// "fdinfo/5", "net/tcp"), with errors classified: ErrGone for a process or
// file that does not exist, ErrPermission for a refusal.
func (fs FS) ReadFile(pid int, name string) ([]byte, error) {
	b, err := os.ReadFile(fs.path(pid, filepath.FromSlash(name)))
	if err != nil {
		return nil, classify(err)
	}
	return b, nil
}

// ReadRootFile reads a file of the proc root itself ("vmstat",
// "self/mountinfo"), with errors classified like ReadFile's.
func (fs FS) ReadRootFile(name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(fs.root, filepath.FromSlash(name)))
	if err != nil {
		return nil, classify(err)
	}
	return b, nil
}

// ReadMem reads n bytes at addr of pid's memory through /proc/<pid>/mem.
// That needs ptrace attach access (same uid and a dumpable process, or
// CAP_SYS_PTRACE); it only reads, and the process is not stopped. A read
// past the end of a mapping returns what could be read, zero-padded.
func (fs FS) ReadMem(pid int, addr uint64, n int) ([]byte, error) {
	if addr > 1<<63-1 {
		return nil, fmt.Errorf("read memory of %d: address %#x out of range", pid, addr)
	}
	f, err := os.Open(fs.path(pid, "mem"))
	if err != nil {
		return nil, classify(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, int64(addr)); err != nil && !errors.Is(err, io.EOF) {
		return nil, classify(err)
	}
	return b, nil
}

// FDTarget returns the link text of /proc/<pid>/fd/<fd>: a path,
// "socket:[N]", "pipe:[N]", "anon_inode:[eventpoll]", ...
func (fs FS) FDTarget(pid, fd int) (string, error) {
	target, err := os.Readlink(fs.path(pid, "fd", strconv.Itoa(fd)))
	if err != nil {
		return "", classify(err)
	}
	return target, nil
}

// SocketInode parses a "socket:[N]" fd link text into the socket inode N,
// which the inode columns of /proc/<pid>/net/* name.
func SocketInode(target string) (uint64, bool) {
	s, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return 0, false
	}
	ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
	return ino, err == nil
}

// Classify maps an error from reading a process's files, or the kernel's
// (/proc, /dev/kmsg, a cgroup file), onto this package's sentinels,
// keeping the original in the chain: ErrPermission for EACCES and EPERM,
// ErrGone for ENOENT and ESRCH. Errors that already carry a sentinel are
// returned as they are.
//
// Both EACCES and EPERM are refusals: /proc answers EACCES where file
// permissions refuse (another user's fd directory) and EPERM where a
// ptrace access check does (/proc/<pid>/syscall, /proc/<pid>/stack).
// os.ErrPermission already matches both (syscall.Errno.Is); EPERM is
// named as well so the rule does not hinge on that.
func Classify(err error) error { return classify(err) }

func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrGone), errors.Is(err, ErrPermission), errors.Is(err, ErrPIDReused):
		return err
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("%w: %w", ErrPermission, err)
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ESRCH):
		// ESRCH: the process exited between open and read.
		return fmt.Errorf("%w: %w", ErrGone, err)
	}
	return err
}
