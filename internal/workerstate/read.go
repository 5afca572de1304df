package workerstate

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// runningRetries is how often a worker seen running is read again, and
// runningPause how long apart, before it counts as busy/cpu.
const (
	runningRetries = 3
	runningPause   = 2 * time.Millisecond
)

// readTaskState reads the state letter, wchan and syscall of pid's main
// thread. sysErr is the syscall file's error (nil when parsed).
func (s *Sampler) readTaskState(pid int) (o observation, sysErr error) {
	if b, err := s.fs.ReadFile(pid, "stat"); err == nil {
		o.State = statState(string(b))
	}
	if b, err := s.fs.ReadFile(pid, "wchan"); err == nil {
		if w := strings.TrimSpace(string(b)); w != "0" {
			o.Wchan = w
		}
	}
	b, err := s.fs.ReadFile(pid, "syscall")
	if err != nil {
		return o, err
	}
	sys, err := parseSyscall(string(b))
	if err != nil {
		return o, err
	}
	o.Sys, o.SysOK = sys, true
	if !sys.Running && !sys.NotInSyscall {
		if e, ok := lookupSyscall(s.arch, sys.Nr); ok {
			o.SysName, o.Class = e.name, e.class
		}
	}
	return o, nil
}

// statState returns the state letter of a /proc/<pid>/stat line (after the
// comm field, which may hold spaces and parentheses).
func statState(s string) byte {
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// observe reads what pid's main thread is doing and resolves the
// descriptors it waits on. perm is true when /proc refused part of it.
func (s *Sampler) observe(pid int, lis listenerCache) (o observation, perm bool) {
	o, err := s.readTaskState(pid)
	for i := 0; i < runningRetries && err == nil && (o.Sys.Running || o.State == 'R'); i++ {
		// An idle worker between select and its next notify() runs for
		// microseconds; a CPU-bound one keeps running.
		s.pause(runningPause)
		o, err = s.readTaskState(pid)
	}
	if err != nil {
		return o, errors.Is(err, procinfo.ErrPermission)
	}
	if !o.SysOK || o.Sys.Running || o.Sys.NotInSyscall {
		return o, false
	}
	a := o.Sys.Args
	var fds []int
	switch o.Class {
	case sysRead, sysAccept:
		fds, o.WaitKnown = []int{int(int32(a[0]))}, true
	case sysSelect:
		nfds := a[0]
		o.WaitKnown = true
		for _, set := range []uint64{a[1], a[2], a[3]} {
			if set == 0 || nfds == 0 {
				continue
			}
			b, err := s.readMem(pid, set, fdSetBytes(nfds))
			if err != nil {
				o.WaitKnown = false
				perm = perm || errors.Is(err, procinfo.ErrPermission)
				break
			}
			fds = append(fds, decodeFDSet(b, nfds)...)
		}
	case sysPoll:
		n := min(a[1], maxWaitFDs)
		o.WaitKnown = true
		if n > 0 && a[0] != 0 {
			b, err := s.readMem(pid, a[0], int(n)*pollfdSize)
			if err != nil {
				o.WaitKnown = false
				perm = errors.Is(err, procinfo.ErrPermission)
				break
			}
			fds = decodePollFDs(b)
		}
	case sysEpoll:
		b, err := s.fs.ReadFile(pid, "fdinfo/"+strconv.Itoa(int(int32(a[0]))))
		if err != nil {
			perm = errors.Is(err, procinfo.ErrPermission)
			break
		}
		o.WaitKnown = true
		for _, t := range parseEpollFdinfo(b) {
			w := s.resolveFD(pid, t.FD, lis)
			if t.Inode != 0 && w.Inode == 0 {
				w.Inode = t.Inode
				w.Listener = lis.inodes[t.Inode]
			}
			o.Wait = append(o.Wait, w)
		}
		return o, perm
	}
	if !o.WaitKnown {
		return o, perm
	}
	for _, fd := range uniqueInts(fds) {
		o.Wait = append(o.Wait, s.resolveFD(pid, fd, lis))
	}
	return o, perm
}

// resolveFD reads the link of /proc/<pid>/fd/<fd>.
func (s *Sampler) resolveFD(pid, fd int, lis listenerCache) waitFD {
	w := waitFD{FD: fd}
	if fd < 0 {
		return w
	}
	target, err := s.fs.FDTarget(pid, fd)
	if err != nil {
		return w
	}
	w.Target = target
	if ino, ok := procinfo.SocketInode(target); ok {
		w.Socket, w.Inode = true, ino
		w.Listener = lis.inodes[ino]
	}
	return w
}

func uniqueInts(in []int) []int {
	seen := map[int]bool{}
	out := in[:0:0]
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// needsConnCheck reports whether a sync worker's activity must be decided
// from its connections: it was running (an idle worker woken by its select
// timeout stays runnable for as long as the CPU is contended), or its
// syscall could not be read.
func needsConnCheck(o observation) bool {
	switch o.State {
	case 'T', 't', 'Z', 'X', 'D':
		return false
	case 'R':
		return true
	}
	return !o.SysOK || o.Sys.Running
}

// connTable is the TCP and unix socket tables of the app's network
// namespace, read at most once per Sample.
type connTable struct {
	loaded bool
	tcp    []procinfo.TCPConn
	unix   []procinfo.UnixSocket
	err    error
}

func (s *Sampler) loadConns(pid int, t *connTable) error {
	if t.loaded {
		return t.err
	}
	t.loaded = true
	t.tcp, t.err = s.fs.NetTCP(pid)
	if t.err != nil {
		return t.err
	}
	if socks, err := s.fs.NetUnix(pid); err == nil {
		t.unix = socks
	}
	return nil
}

// holdsClientConn reports whether pid holds a connection accepted on one of
// the master's listeners: a sync worker holds one exactly while it serves
// a request (it closes the client socket when the request is done).
func (s *Sampler) holdsClientConn(pid, masterPID int, lis listenerCache, t *connTable) (bool, error) {
	if lis.err != nil {
		return false, lis.err
	}
	files, err := s.fs.OpenFiles(pid)
	if err != nil {
		return false, err
	}
	socks := map[uint64]bool{}
	for _, f := range files {
		if f.Socket && !lis.inodes[f.Inode] {
			socks[f.Inode] = true
		}
	}
	if len(socks) == 0 {
		return false, nil
	}
	if err := s.loadConns(masterPID, t); err != nil {
		return false, err
	}
	for _, c := range t.tcp {
		if !socks[c.Inode] || c.State == procinfo.TCPListen {
			continue
		}
		for _, l := range lis.tcp {
			if acceptedOn(c, l) {
				return true, nil
			}
		}
	}
	for _, u := range t.unix {
		if socks[u.Inode] && u.Path != "" && lis.unix[u.Path] {
			return true, nil // an accepted unix socket shares its listener's address
		}
	}
	return false, nil
}

// acceptedOn reports whether connection c was accepted on listener l: its
// local end is the listener's port, on the listener's address unless that
// is a wildcard.
func acceptedOn(c procinfo.TCPConn, l procinfo.Listener) bool {
	if c.LocalPort != l.Port {
		return false
	}
	host, _, err := net.SplitHostPort(l.Addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || ip.IsUnspecified() || ip.Equal(c.Local)
}
