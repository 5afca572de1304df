package procinfo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// OpenFile is one entry of /proc/<pid>/fd.
type OpenFile struct {
	FD     int
	Target string // the link text: "/var/log/app.log", "socket:[123]", "pipe:[45]", "/tmp/x (deleted)"
	// Regular is true when the fd refers to a regular file (stat through
	// /proc/<pid>/fd/N). Log discovery only considers regular files.
	Regular bool
	// Deleted is true when the link text ends in " (deleted)": the file was
	// unlinked (or rotated away and removed) while open.
	Deleted bool
	// Writable is true when the fd was opened O_WRONLY or O_RDWR
	// (/proc/<pid>/fdinfo/N flags). Only filled for regular files.
	Writable bool
	// Inode is the inode of a regular file, or the socket inode of a
	// "socket:[N]" target (matching /proc/net/* inode columns).
	Inode uint64
	// Socket is true for "socket:[N]" targets.
	Socket bool
}

// Path is the file path without the " (deleted)" suffix.
func (o OpenFile) Path() string { return trimDeleted(o.Target) }

// OpenFiles lists pid's open file descriptors, sorted by fd number. Listing
// another user's fds needs root or CAP_DAC_READ_SEARCH; following the links
// also needs CAP_SYS_PTRACE. Either refusal returns ErrPermission.
func (fs FS) OpenFiles(pid int) ([]OpenFile, error) {
	fds, err := fs.fdNumbers(pid)
	if err != nil {
		return nil, fmt.Errorf("open files of %d: %w", pid, err)
	}
	files := make([]OpenFile, 0, len(fds))
	for _, fd := range fds {
		f, ok, err := fs.openFile(pid, fd)
		if err != nil {
			return nil, fmt.Errorf("open files of %d: %w", pid, err)
		}
		if ok {
			files = append(files, f)
		}
	}
	return files, nil
}

func (fs FS) fdNumbers(pid int) ([]int, error) {
	entries, err := os.ReadDir(fs.path(pid, "fd"))
	if err != nil {
		return nil, classify(err)
	}
	fds := make([]int, 0, len(entries))
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, n)
		}
	}
	slices.Sort(fds)
	return fds, nil
}

// openFile reads one fd. ok is false when the fd was closed since the
// directory was listed.
func (fs FS) openFile(pid, fd int) (OpenFile, bool, error) {
	n := strconv.Itoa(fd)
	target, err := os.Readlink(fs.path(pid, "fd", n))
	if errors.Is(err, os.ErrNotExist) {
		return OpenFile{}, false, nil
	}
	if err != nil {
		return OpenFile{}, false, classify(err)
	}
	f := OpenFile{FD: fd, Target: target, Deleted: strings.HasSuffix(target, " (deleted)")}
	if ino, ok := SocketInode(target); ok {
		f.Socket, f.Inode = true, ino
		return f, true, nil
	}
	if !strings.HasPrefix(target, "/") {
		return f, true, nil // pipe:[N], anon_inode:..., and the like
	}
	st, err := fs.statFD(pid, fd, target)
	if errors.Is(err, os.ErrNotExist) {
		return f, true, nil // closed meanwhile: report it without details
	}
	if err != nil {
		return OpenFile{}, false, classify(err)
	}
	f.Regular = st.Mode&syscall.S_IFMT == syscall.S_IFREG
	f.Inode = st.Ino
	if f.Regular {
		flags, err := fs.fdFlags(pid, fd)
		switch {
		case err == nil:
			f.Writable = flags&syscall.O_ACCMODE != syscall.O_RDONLY
		case errors.Is(err, os.ErrNotExist):
		default:
			return OpenFile{}, false, classify(err)
		}
	}
	return f, true, nil
}

// statFD stats the file fd refers to. It goes through the magic link
// /proc/<pid>/fd/N, which works for unlinked files and across mount
// namespaces. When the link does not resolve (the fd was closed since it
// was listed, or the tree is a saved copy whose fd entries are plain
// symlinks) it tries the target path inside the process's root.
func (fs FS) statFD(pid, fd int, target string) (*syscall.Stat_t, error) {
	var st syscall.Stat_t
	err := syscall.Stat(fs.path(pid, "fd", strconv.Itoa(fd)), &st)
	if errors.Is(err, syscall.ENOENT) && strings.HasPrefix(target, "/") {
		err = syscall.Stat(fs.RootPath(pid, target), &st)
	}
	if err != nil {
		return nil, &os.PathError{Op: "stat", Path: fs.path(pid, "fd", strconv.Itoa(fd)), Err: err}
	}
	return &st, nil
}

// fdFlags returns the open flags from /proc/<pid>/fdinfo/N.
func (fs FS) fdFlags(pid, fd int) (int, error) {
	b, err := os.ReadFile(fs.path(pid, "fdinfo", strconv.Itoa(fd)))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			f, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return 0, fmt.Errorf("fdinfo %d of %d: flags %q: %w", fd, pid, v, err)
			}
			return int(f), nil
		}
	}
	return 0, fmt.Errorf("fdinfo %d of %d: no flags line", fd, pid)
}

// OpenFD opens the file pid has open as fd, for reading: through the magic
// link /proc/<pid>/fd/N (the very file, even if renamed), falling back to
// the target path inside the process's root like statFD. It never opens
// anything but a regular file, so it cannot block on a FIFO or device.
func (fs FS) OpenFD(pid int, f OpenFile) (*os.File, error) {
	if !f.Regular {
		return nil, fmt.Errorf("fd %d of %d (%s) is not a regular file", f.FD, pid, f.Target)
	}
	fh, err := os.OpenFile(fs.path(pid, "fd", strconv.Itoa(f.FD)), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) && !f.Deleted {
		fh, err = os.OpenFile(fs.RootPath(pid, f.Target), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open fd %d of %d: %w", f.FD, pid, classify(err))
	}
	if st, err := fh.Stat(); err != nil || !st.Mode().IsRegular() {
		_ = fh.Close()
		return nil, fmt.Errorf("fd %d of %d (%s) is not a regular file", f.FD, pid, f.Target)
	}
	return fh, nil
}

// ReadTail returns up to n bytes from the end of the regular file pid has
// open as f.
func (fs FS) ReadTail(pid int, f OpenFile, n int64) ([]byte, error) {
	fh, err := fs.OpenFD(pid, f)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("read fd %d of %d: %w", f.FD, pid, err)
	}
	off := max(st.Size()-n, 0)
	b, err := io.ReadAll(io.NewSectionReader(fh, off, n))
	if err != nil {
		return nil, fmt.Errorf("read fd %d of %d: %w", f.FD, pid, err)
	}
	return b, nil
}

// heartbeatRE matches the link text of Gunicorn's worker heartbeat file: a
// mkstemp("wgunicorn-") file unlinked right after creation
// (gunicorn/workers/workertmp.py).
var heartbeatRE = regexp.MustCompile(`^(.*/)?wgunicorn-[a-z0-9_]{8} \(deleted\)$`)

// IsHeartbeatTarget reports whether an fd link text names a Gunicorn worker
// heartbeat file.
func IsHeartbeatTarget(target string) bool { return heartbeatRE.MatchString(target) }

// HeartbeatFD is one open Gunicorn worker heartbeat file, stat()ed through
// /proc/<pid>/fd/N.
type HeartbeatFD struct {
	FD    int
	Path  string // the unlinked file's former path, e.g. /tmp/wgunicorn-ab12cd34
	Inode uint64 // matches the worker's fd with the master's (the master holds one per worker)
	Dev   uint64
	// Mode holds the permission bits: Gunicorn ≤ 21.2 flips them between
	// 0 and 1 on every notify (0o600 until the first one); ≥ 22 leaves 0o600.
	Mode uint32
	// Ctime is the wall-clock time of the worker's last notify() in every
	// version: heartbeat age = now - Ctime.
	Ctime time.Time
	// Mtime is the raw st_mtime: the file's creation in ≤ 21.2; in ≥ 22 the
	// CLOCK_MONOTONIC value of the last notify, as seconds since the epoch
	// (a tiny value once the worker has notified).
	Mtime time.Time
	// Count is how many heartbeat files the process holds: 1 for a worker,
	// one per worker for the master (and briefly all of them in a worker
	// just forked, before it closes its siblings').
	Count int
}

// HeartbeatFD returns pid's heartbeat file with the lowest fd number and
// how many it holds (HeartbeatFD.Count). ok is false when it holds none.
func (fs FS) HeartbeatFD(pid int) (hb HeartbeatFD, ok bool, err error) {
	all, err := fs.HeartbeatFDs(pid)
	if err != nil || len(all) == 0 {
		return HeartbeatFD{}, false, err
	}
	return all[0], true, nil
}

// HeartbeatFDs returns every heartbeat file pid holds, by fd number; each
// has Count set to the total. A master's list matches its workers' files
// by Inode.
func (fs FS) HeartbeatFDs(pid int) ([]HeartbeatFD, error) {
	fds, err := fs.fdNumbers(pid)
	if err != nil {
		return nil, fmt.Errorf("heartbeat of %d: %w", pid, err)
	}
	var out []HeartbeatFD
	for _, fd := range fds {
		target, err := os.Readlink(fs.path(pid, "fd", strconv.Itoa(fd)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("heartbeat of %d: %w", pid, classify(err))
		}
		if !heartbeatRE.MatchString(target) {
			continue
		}
		st, err := fs.statFD(pid, fd, target)
		if errors.Is(err, os.ErrNotExist) {
			continue // the worker died and the master closed its file
		}
		if err != nil {
			return nil, fmt.Errorf("heartbeat of %d: %w", pid, classify(err))
		}
		out = append(out, HeartbeatFD{
			FD:    fd,
			Path:  trimDeleted(target),
			Inode: st.Ino,
			Dev:   st.Dev,
			Mode:  st.Mode & 0o7777,
			Ctime: time.Unix(st.Ctim.Unix()),
			Mtime: time.Unix(st.Mtim.Unix()),
		})
	}
	for i := range out {
		out[i].Count = len(out)
	}
	return out, nil
}

// RestatHeartbeat reads h, a heartbeat file pid held when HeartbeatFDs
// listed it, again: one stat(2) through /proc/<pid>/fd/<h.FD>. It returns
// ErrGone when the fd is closed, the process has exited, or the fd now
// names another file (another inode or device): the worker is not the one
// h was read from.
func (fs FS) RestatHeartbeat(pid int, h HeartbeatFD) (HeartbeatFD, error) {
	st, err := fs.statFD(pid, h.FD, h.Path+" (deleted)")
	if err != nil {
		return HeartbeatFD{}, fmt.Errorf("heartbeat of %d: %w", pid, classify(err))
	}
	if st.Ino != h.Inode || st.Dev != h.Dev {
		return HeartbeatFD{}, fmt.Errorf("heartbeat of %d: fd %d now names inode %d, not %d: %w", pid, h.FD, st.Ino, h.Inode, ErrGone)
	}
	h.Mode = st.Mode & 0o7777
	h.Ctime = time.Unix(st.Ctim.Unix())
	h.Mtime = time.Unix(st.Mtim.Unix())
	return h, nil
}
