package gunicorntest

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// procStat is the part of /proc/<pid>/stat the harness needs.
type procStat struct {
	pid     int
	state   byte
	ppid    int
	pgrp    int
	session int
}

// readStat parses /proc/<pid>/stat. The comm field may contain spaces and
// parentheses, so the fixed fields are read after the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: no comm terminator", pid)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 4 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: short line", pid)
	}
	st := procStat{pid: pid, state: f[0][0]}
	for j, dst := range []*int{&st.ppid, &st.pgrp, &st.session} {
		n, err := strconv.Atoi(f[j+1])
		if err != nil {
			return procStat{}, fmt.Errorf("parse /proc/%d/stat field %d: %w", pid, j+4, err)
		}
		*dst = n
	}
	return st, nil
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.state != 'Z' && st.state != 'X'
}

// children lists the direct children of pid. It reads
// /proc/<pid>/task/<pid>/children (Gunicorn forks only from its main thread)
// and falls back to a /proc scan on kernels built without CONFIG_PROC_CHILDREN.
func children(pid int) ([]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		var out []int
		for _, f := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("parse children of %d: %w", pid, err)
			}
			out = append(out, n)
		}
		return out, nil
	}
	if _, serr := os.Stat(fmt.Sprintf("/proc/%d", pid)); serr != nil {
		return nil, err
	}
	all, serr := scanProc(func(st procStat) bool { return st.ppid == pid })
	if serr != nil {
		return nil, serr
	}
	out := make([]int, 0, len(all))
	for _, st := range all {
		out = append(out, st.pid)
	}
	return out, nil
}

// scanProc returns every process in /proc that keep accepts. Processes that
// vanish during the scan are skipped.
func scanProc(keep func(procStat) bool) ([]procStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		if keep(st) {
			out = append(out, st)
		}
	}
	return out, nil
}

// sessionMembers lists the processes (zombies included) in session sid. The
// harness starts each master with setsid, so its session holds the master,
// its workers and any USR2 re-exec master with its workers.
func sessionMembers(sid int) ([]procStat, error) {
	return scanProc(func(st procStat) bool { return st.session == sid })
}

// heartbeatRE matches the link text of a worker's unlinked heartbeat file
// (workers/workertmp.py: mkstemp(prefix="wgunicorn-") then unlink).
var heartbeatRE = regexp.MustCompile(`(^|/)wgunicorn-[a-z0-9_]{8} \(deleted\)$`)

// errNoHeartbeat means the process has no single wgunicorn-* fd (yet): a
// worker that has just been forked may still hold its siblings' files.
var errNoHeartbeat = errors.New("no single heartbeat fd")

// heartbeatStat stats the worker's own heartbeat file through
// /proc/<pid>/fd/N, which follows the link even though the file is unlinked.
func heartbeatStat(pid int) (syscall.Stat_t, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return syscall.Stat_t{}, err
	}
	var found []string
	for _, e := range ents {
		p := dir + "/" + e.Name()
		link, err := os.Readlink(p)
		if err != nil {
			continue
		}
		if heartbeatRE.MatchString(link) {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		return syscall.Stat_t{}, fmt.Errorf("pid %d has %d wgunicorn-* fds: %w", pid, len(found), errNoHeartbeat)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(found[0], &st); err != nil {
		return syscall.Stat_t{}, fmt.Errorf("stat %s: %w", found[0], err)
	}
	return st, nil
}

// heartbeatNotified reports whether the worker has called notify() at least
// once, i.e. has imported the app and entered its run loop. Gunicorn ≤21.2
// fchmods the file to 0o000/0o001 (it is created 0o600); ≥22 utimes it to a
// CLOCK_MONOTONIC value, far below any wall-clock creation time.
func heartbeatNotified(st syscall.Stat_t) bool {
	perm := st.Mode & 0o777
	if perm == 0 || perm == 1 {
		return true
	}
	return st.Mtim.Sec < 1_000_000_000
}

// isWorker reports whether a child of the master is a worker rather than a
// USR2 re-exec master: that one is named in <pidfile>.2 or has children of
// its own.
//
// This, like readStat, children and heartbeatStat above, is deliberately
// not procinfo: the harness is the independent oracle the tests of
// procinfo.ChildRole, discovery and workerstate compare against, so it must
// not share their code. It reads what Gunicorn itself writes (the .2
// pidfile) instead of inferring it.
func isWorker(pid int, newMaster int) bool {
	if pid == newMaster {
		return false
	}
	kids, err := children(pid)
	return err == nil && len(kids) == 0
}

// readPidfile reads a Gunicorn pidfile through procinfo (which refuses a
// pid <= 1).
func readPidfile(path string) (int, error) { return procinfo.ReadPidfile(path) }

// pidfdSignal sends sig to pid through a pidfd after check has confirmed,
// with the pidfd already open, that pid is still the intended process
// (procinfo.SignalChecked: an exited-and-reused pid fails with ESRCH
// instead of signalling a stranger).
// procinfo refuses pid <= 1 before any check; the harness reports such a
// pid by its check's error (ErrNotWorker, ErrNoMaster) as callers expect.
func pidfdSignal(pid int, sig syscall.Signal, check func() error) error {
	if pid <= 1 {
		if err := check(); err != nil {
			return err
		}
	}
	return procinfo.SignalChecked(pid, sig, check)
}

// reapOrphans waits for the zombies among members that the test process
// inherited as child subreaper, skipping skip (the master, reaped by its own
// Wait goroutine).
func reapOrphans(members []procStat, skip int) {
	self := os.Getpid()
	for _, m := range members {
		if m.ppid != self || m.pid == skip {
			continue
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(m.pid, &ws, unix.WNOHANG, nil)
	}
}

// Cmdline returns /proc/<pid>/cmdline split at NULs, without the trailing
// NUL padding setproctitle leaves. With setproctitle it reads
// "gunicorn: master [name]"; without, it is the exec argv (for a #! script,
// the interpreter followed by the script path and its arguments).
func Cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	parts := strings.Split(string(b), "\x00")
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts, nil
}

// sortedCopy returns a sorted copy of pids.
func sortedCopy(pids []int) []int {
	out := slices.Clone(pids)
	slices.Sort(out)
	return out
}
