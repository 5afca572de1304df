// Package procinfo is the one reader of /proc and the one model of a
// Gunicorn process tree: who a pid is (start time, argv, executable) and
// whether a pid still names the same process, its children, open files,
// listening sockets and Gunicorn's worker heartbeat files; the raw /proc
// readers (files, memory, the net/tcp and net/unix tables) other packages
// interpret; what a child of a master is (ChildRole: worker, USR2 upgrade
// child, unknown); Gunicorn's pidfile and worker-class names; and sending a
// signal to a process only while it still is the one identified (Signal,
// through a pidfd).
//
// The discovery collector, the worker sampler and the remediation receiver
// share it: the receiver calls Identify when it decides and Signal (which
// Verifies with a pidfd held) when it acts, so a recycled pid is never
// signalled.
//
// Every function reads under a configurable proc root, so tests can point it
// at a saved /proc subtree in testdata. Errors are classified with sentinel
// values that errors.Is recognises: ErrGone (the process has exited),
// ErrPIDReused (the pid now names another process), ErrPermission (the caller
// may not inspect the process), ErrRefused (pid <= 1) and ErrStarting (the
// process is inside execve and has no command line yet).
package procinfo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// Sentinel errors. Errors returned by this package wrap one of these (and,
// for ErrPermission and ErrGone, also the underlying *fs.PathError).
var (
	// ErrGone means the process has exited (no /proc entry, or a zombie).
	ErrGone = errors.New("process gone")
	// ErrPIDReused means the pid now names a different process than the
	// Identity: another start time, executable or command line.
	ErrPIDReused = errors.New("pid reused by another process")
	// ErrPermission means /proc refused to show the process's data to us
	// (another user's process, or a non-dumpable one). Inspecting another
	// user's open files needs root or CAP_DAC_READ_SEARCH plus
	// CAP_SYS_PTRACE (proc_fd_access_allowed in fs/proc/fd.c).
	ErrPermission = errors.New("permission denied reading /proc")
	// ErrRefused means the pid is 0, 1 or negative: never a target.
	ErrRefused = errors.New("refusing to inspect pid <= 1")
	// ErrStarting means the process is alive but shows no command line:
	// it is inside execve (see Identify), so no identity can be taken from
	// it yet. Asking again a moment later succeeds.
	ErrStarting = errors.New("process is starting (inside execve): no command line yet")
)

// Flags of /proc/<pid>/stat field 9 (include/linux/sched.h).
const (
	pfExiting = 0x00000004 // PF_EXITING: exit() has begun; the memory (and the command line) is being released
	pfKthread = 0x00200000 // PF_KTHREAD: a kernel thread, which never has a command line
)

// identifyAttempts bounds how often Identify reads a process again that it
// caught inside execve; the waits between attempts double from 1 ms, so it
// gives the kernel about half a second (a cold page cache while the dynamic
// loader is read from disk is the slow case).
const identifyAttempts = 10

// FS reads process information under a proc root ("/proc" in production).
// The zero value is not usable; call NewFS.
type FS struct {
	root     string
	procfs   procfs.FS
	bootTime time.Time
	// settle waits before attempt (1, 2, ...) of reading a process caught
	// inside execve again; nil means sleeping 1 ms << (attempt-1). Tests
	// replace it to step a process through its exec deterministically.
	settle func(attempt int)
}

// NewFS returns an FS for the proc filesystem mounted at procRoot. It reads
// the boot time once (the "btime" line of <procRoot>/stat), which Identify
// needs to turn start ticks into a wall-clock time.
func NewFS(procRoot string) (FS, error) {
	pfs, err := procfs.NewFS(procRoot)
	if err != nil {
		return FS{}, fmt.Errorf("procinfo: %w", err)
	}
	st, err := pfs.Stat()
	if err != nil {
		return FS{}, fmt.Errorf("procinfo: read %s: %w", filepath.Join(procRoot, "stat"), classify(err))
	}
	return FS{root: procRoot, procfs: pfs, bootTime: time.Unix(int64(st.BootTime), 0)}, nil
}

// Root is the proc root the FS reads.
func (fs FS) Root() string { return fs.root }

// BootTime is the system boot time read from <root>/stat.
func (fs FS) BootTime() time.Time { return fs.bootTime }

func (fs FS) path(pid int, elem ...string) string {
	return filepath.Join(append([]string{fs.root, strconv.Itoa(pid)}, elem...)...)
}

// RootPath returns the path under which a file path as the process sees it
// can be opened from here: /proc/<pid>/root/<p>. Going through the
// process's root resolves the path in its mount namespace and chroot
// (containers, PrivateTmp=). p must be absolute.
func (fs FS) RootPath(pid int, p string) string {
	return fs.path(pid, "root", filepath.Clean("/"+p))
}

// Identity is what names one process for its whole life: the pid and its
// start time together are unique on a host until reboot; the executable and
// command line detect an execve in the same process.
type Identity struct {
	PID, PPID  int
	StartTicks uint64    // /proc/<pid>/stat field 22, in clock ticks since boot
	StartTime  time.Time // boot time + StartTicks
	Exe        string    // /proc/<pid>/exe link text ("" for kernel threads)
	Cmdline    []string  // /proc/<pid>/cmdline split at NULs; setproctitle titles are one element
	Comm       string    // /proc/<pid>/stat comm (15 characters at most)
	UID        int       // real uid from /proc/<pid>/status
}

// Identify reads the identity of pid. It returns ErrGone for a process that
// does not exist or is a zombie, ErrPermission when /proc refuses (for
// example /proc/<pid>/exe of another user's process), and ErrStarting for a
// process that is still inside execve after identifyAttempts reads.
//
// An identity is never taken from a half-started process. execve replaces
// the process's memory (and with it the command line the kernel shows in
// /proc/<pid>/cmdline) before it has copied the new argv in: between
// exec_mmap and create_elf_tables (fs/exec.c, fs/binfmt_elf.c) the
// command line reads empty, the exe link already names the new program and
// comm may still be the parent's. That window opens after the close-on-exec
// descriptors are closed, which is when os/exec's Start (and Python's
// subprocess) return to the parent, so a just-started child can be caught
// in it; loading the dynamic loader from a cold page cache stretches it to
// milliseconds. A live process that is not a kernel thread but shows an
// empty command line is therefore read again, and refused with ErrStarting
// if it stays so. The stat fields read before and after the other files
// must also agree on start time and comm, or the process exec'd while it
// was being read and it is read again.
//
// A process between fork and exec is not half-started in that sense: it is
// a complete copy of its parent (as Gunicorn's workers, which never exec,
// stay), and is identified as such. If it then execs, its executable and
// command line change and Verify returns ErrPIDReused: the identity of the
// copy never matches the new program.
func (fs FS) Identify(pid int) (Identity, error) {
	if pid <= 0 {
		return Identity{}, fmt.Errorf("identify pid %d: %w", pid, ErrRefused)
	}
	id, state, err := fs.identify(pid)
	if err != nil {
		return Identity{}, fmt.Errorf("identify pid %d: %w", pid, err)
	}
	if state == 'Z' || state == 'X' {
		return Identity{}, fmt.Errorf("identify pid %d: zombie: %w", pid, ErrGone)
	}
	return id, nil
}

// identify reads a consistent identity of pid, reading it again while it
// is caught inside execve (see Identify).
func (fs FS) identify(pid int) (Identity, byte, error) {
	for attempt := 1; ; attempt++ {
		id, state, err := fs.identifyOnce(pid)
		if !errors.Is(err, errInExec) {
			return id, state, err
		}
		if attempt >= identifyAttempts {
			return Identity{}, state, fmt.Errorf("%w (%v after %d reads)", ErrStarting, err, attempt)
		}
		if fs.settle != nil {
			fs.settle(attempt)
		} else {
			time.Sleep(time.Millisecond << (attempt - 1))
		}
	}
}

// errInExec marks one read of a process that was inside execve; identify
// reads it again.
var errInExec = errors.New("caught inside execve")

func (fs FS) identifyOnce(pid int) (Identity, byte, error) {
	st, err := fs.stat(pid)
	if err != nil {
		return Identity{}, 0, err
	}
	id := Identity{
		PID:        pid,
		PPID:       st.PPID,
		StartTicks: st.Starttime,
		StartTime:  fs.bootTime.Add(time.Duration(st.Starttime) * (time.Second / userHZ)),
		Comm:       st.Comm,
	}
	state := byte(0)
	if st.State != "" {
		state = st.State[0]
	}
	if state == 'Z' || state == 'X' {
		return id, state, nil
	}
	if id.Cmdline, err = fs.Cmdline(pid); err != nil {
		return Identity{}, state, err
	}
	if id.UID, err = fs.uid(pid); err != nil {
		return Identity{}, state, err
	}
	exe, err := os.Readlink(fs.path(pid, "exe"))
	switch {
	case err == nil:
		id.Exe = exe
	case errors.Is(err, os.ErrNotExist):
		// Kernel threads and zombies have no exe; a vanished process is
		// caught by the second stat below.
	default:
		return Identity{}, state, classify(err)
	}
	// The process may have exited (or the pid been reused) while we read the
	// files one by one; the start time must not have changed.
	st2, err := fs.stat(pid)
	if err != nil {
		return Identity{}, state, err
	}
	if st2.Starttime != st.Starttime {
		return Identity{}, state, fmt.Errorf("pid changed while reading it: %w", ErrGone)
	}
	if st2.State != "" {
		// It may have exited while we read (its cmdline is then empty).
		state = st2.State[0]
	}
	switch {
	case state == 'Z' || state == 'X':
		return id, state, nil
	case st2.Flags&pfExiting != 0 && len(id.Cmdline) == 0:
		return Identity{}, state, fmt.Errorf("exiting: %w", ErrGone)
	case st2.Comm != st.Comm:
		return Identity{}, state, fmt.Errorf("comm changed from %q to %q while reading it: %w", st.Comm, st2.Comm, errInExec)
	case len(id.Cmdline) == 0 && st2.Flags&pfKthread == 0:
		return Identity{}, state, fmt.Errorf("empty command line (exe %q, comm %q): %w", id.Exe, st2.Comm, errInExec)
	}
	return id, state, nil
}

// stat reads /proc/<pid>/stat.
func (fs FS) stat(pid int) (procfs.ProcStat, error) {
	p, err := fs.procfs.Proc(pid)
	if err != nil {
		return procfs.ProcStat{}, classify(err)
	}
	st, err := p.Stat()
	if err != nil {
		return procfs.ProcStat{}, classify(err)
	}
	return st, nil
}

// Cmdline reads /proc/<pid>/cmdline split at NULs, with the trailing NUL
// padding setproctitle leaves removed. A zombie or kernel thread has an
// empty command line.
func (fs FS) Cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fs.path(pid, "cmdline"))
	if err != nil {
		return nil, classify(err)
	}
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return []string{}, nil
	}
	return strings.Split(s, "\x00"), nil
}

// Stat is the world-readable part of /proc/<pid>/stat that process
// discovery and worker sampling need.
type Stat struct {
	PID, PPID  int
	State      byte // R, S, D, Z, ...
	StartTicks uint64
	StartTime  time.Time
	Comm       string
	// UTime and STime are the CPU time spent in user and kernel mode, in
	// UserHZ ticks.
	UTime, STime uint64
	// RSSBytes is the resident set size.
	RSSBytes uint64
}

// Zombie reports whether the process has exited and waits to be reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// CPUTicks is the CPU time (user + system) in UserHZ ticks.
func (s Stat) CPUTicks() uint64 { return s.UTime + s.STime }

// CPUSeconds is the CPU time (user + system) in seconds.
func (s Stat) CPUSeconds() float64 { return float64(s.CPUTicks()) / UserHZ }

// StateString is the state letter as a string, "" when the stat line had
// none.
func (s Stat) StateString() string {
	if s.State == 0 {
		return ""
	}
	return string(rune(s.State))
}

// Stat reads /proc/<pid>/stat. Unlike Identify it needs no privilege over
// the process.
func (fs FS) Stat(pid int) (Stat, error) {
	st, err := fs.stat(pid)
	if err != nil {
		return Stat{}, fmt.Errorf("stat of %d: %w", pid, err)
	}
	s := Stat{
		PID: pid, PPID: st.PPID, StartTicks: st.Starttime, Comm: st.Comm,
		StartTime: fs.bootTime.Add(time.Duration(st.Starttime) * (time.Second / userHZ)),
		UTime:     uint64(st.UTime), STime: uint64(st.STime),
		RSSBytes: uint64(max(st.ResidentMemory(), 0)),
	}
	if st.State != "" {
		s.State = st.State[0]
	}
	return s, nil
}

// UID returns the real uid of pid (/proc/<pid>/status).
func (fs FS) UID(pid int) (int, error) {
	uid, err := fs.uid(pid)
	if err != nil {
		return 0, fmt.Errorf("uid of %d: %w", pid, err)
	}
	return uid, nil
}

func (fs FS) uid(pid int) (int, error) {
	p, err := fs.procfs.Proc(pid)
	if err != nil {
		return 0, classify(err)
	}
	s, err := p.NewStatus()
	if err != nil {
		return 0, classify(err)
	}
	return int(s.UIDs[0]), nil
}

// Verify checks that id.PID still names the process id describes: same
// start ticks, same executable, and the same command line. It returns nil
// when it does, ErrGone when the process has exited (or is a zombie),
// ErrPIDReused when the pid now names something else, ErrPermission when
// /proc refuses, and ErrRefused for pid <= 1.
//
// Gunicorn retitles its own processes (setproctitle: "master [app.2]"
// becomes "master [app]" on promotion, a new worker shows the master's
// title until it retitles itself), so a command line that is or was a
// "gunicorn: " title may change without the process changing; for those the
// start time and executable decide.
func (fs FS) Verify(id Identity) error {
	if id.PID <= 1 {
		return fmt.Errorf("verify pid %d: %w", id.PID, ErrRefused)
	}
	cur, state, err := fs.identify(id.PID)
	if err != nil {
		return fmt.Errorf("verify pid %d: %w", id.PID, err)
	}
	if cur.StartTicks != id.StartTicks {
		return fmt.Errorf("verify pid %d: started at tick %d, expected %d: %w", id.PID, cur.StartTicks, id.StartTicks, ErrPIDReused)
	}
	if state == 'Z' || state == 'X' {
		return fmt.Errorf("verify pid %d: zombie: %w", id.PID, ErrGone)
	}
	if id.Exe != "" && trimDeleted(cur.Exe) != trimDeleted(id.Exe) {
		return fmt.Errorf("verify pid %d: executable is %q, expected %q: %w", id.PID, cur.Exe, id.Exe, ErrPIDReused)
	}
	if !sameCmdline(id.Cmdline, cur.Cmdline) {
		return fmt.Errorf("verify pid %d: command line is %q, expected %q: %w", id.PID, cur.Cmdline, id.Cmdline, ErrPIDReused)
	}
	return nil
}

// trimDeleted drops the " (deleted)" the kernel appends to the exe link of
// a process whose binary was replaced on disk (a package upgrade); that
// is the same process.
func trimDeleted(s string) string { return strings.TrimSuffix(s, " (deleted)") }

// TitlePrefix is how Gunicorn's setproctitle titles start.
const TitlePrefix = "gunicorn: "

func sameCmdline(want, got []string) bool {
	if slices.Equal(want, got) {
		return true
	}
	titled := func(c []string) bool { return len(c) > 0 && strings.HasPrefix(c[0], TitlePrefix) }
	return titled(want) || titled(got)
}

// Cwd returns the current directory of pid (the /proc/<pid>/cwd link text).
func (fs FS) Cwd(pid int) (string, error) {
	wd, err := os.Readlink(fs.path(pid, "cwd"))
	if err != nil {
		return "", fmt.Errorf("cwd of %d: %w", pid, classify(err))
	}
	return wd, nil
}

// Environ returns the values of the named variables in
// /proc/<pid>/environ. setproctitle overwrites the environ area, so for a
// titled process this is usually empty (setproctitle reuses the
// environ area for long titles).
func (fs FS) Environ(pid int, names ...string) (map[string]string, error) {
	b, err := os.ReadFile(fs.path(pid, "environ"))
	if err != nil {
		return nil, fmt.Errorf("environ of %d: %w", pid, classify(err))
	}
	out := map[string]string{}
	for kv := range strings.SplitSeq(string(b), "\x00") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && slices.Contains(names, k) {
			out[k] = v
		}
	}
	return out, nil
}

// Children returns the pids of pid's children, sorted. It reads
// /proc/<pid>/task/*/children (a child forked by any thread is listed under
// that thread) and falls back to scanning every process's PPid when the
// kernel lacks CONFIG_PROC_CHILDREN.
func (fs FS) Children(pid int) ([]int, error) {
	tasks, err := os.ReadDir(fs.path(pid, "task"))
	if err != nil {
		return nil, fmt.Errorf("children of %d: %w", pid, classify(err))
	}
	var kids []int
	for _, t := range tasks {
		b, err := os.ReadFile(fs.path(pid, "task", t.Name(), "children"))
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(fs.path(pid, "task", t.Name())); serr == nil {
				// The task exists but has no children file.
				return fs.childrenByScan(pid)
			}
			continue // the thread exited meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("children of %d: %w", pid, classify(err))
		}
		for f := range strings.FieldsSeq(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				kids = append(kids, c)
			}
		}
	}
	slices.Sort(kids)
	return slices.Compact(kids), nil
}

func (fs FS) childrenByScan(pid int) ([]int, error) {
	pids, err := fs.PIDs()
	if err != nil {
		return nil, err
	}
	var kids []int
	for _, p := range pids {
		st, err := fs.stat(p)
		if err != nil {
			continue // exited, or hidden from us: it is not a child we can see
		}
		if st.PPID == pid {
			kids = append(kids, p)
		}
	}
	return kids, nil
}

// PIDs lists every process (thread group) under the proc root, sorted.
func (fs FS) PIDs() ([]int, error) {
	procs, err := fs.procfs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", classify(err))
	}
	pids := make([]int, len(procs))
	for i, p := range procs {
		pids[i] = p.PID
	}
	slices.Sort(pids)
	return pids, nil
}
