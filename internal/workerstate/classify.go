package workerstate

import (
	"strconv"
	"strings"
)

// waitFD is one descriptor a worker's main thread waits on, resolved
// through /proc/<pid>/fd.
type waitFD struct {
	FD       int
	Target   string // the fd link text ("socket:[123]", "pipe:[4]", a path); "" if it could not be read
	Inode    uint64 // socket inode for sockets
	Socket   bool
	Listener bool // one of the master's listening sockets
}

// observation is what one read of a worker's main thread shows: the pure
// input of decideActivity and classifyStuck.
type observation struct {
	State byte   // /proc/<pid>/stat state: R, S, D, T, ...
	Wchan string // "" when the kernel shows "0" (running, or no ptrace read access)
	// SysOK is true when /proc/<pid>/syscall could be read and parsed.
	SysOK   bool
	Sys     syscallState
	SysName string // "" for a number the table does not know
	Class   sysClass
	// Wait lists the descriptors the syscall waits on; WaitKnown is false
	// when they could not be read (no access to /proc/<pid>/mem, a vanished
	// fd). For select/poll with no descriptors Wait is empty and WaitKnown
	// true.
	Wait      []waitFD
	WaitKnown bool
	// CPURatio is CPU seconds per wall second since the previous sample;
	// 0 when there is no previous sample.
	CPURatio float64
}

type activity int

const (
	activityUnknown activity = iota
	activityIdle
	activityBusy
)

// decideActivity says whether a sync worker waits for a connection (idle)
// or is inside a request (busy), and why. It needs the syscall: from wchan
// alone a worker in select on the listener and one polling a database
// socket look the same. A running worker is busy here; Sample then decides
// it from its connections (see needsConnCheck).
func decideActivity(o observation) (activity, string) {
	switch {
	case o.State == 'T' || o.State == 't' || o.State == 'Z' || o.State == 'X':
		return activityUnknown, "stopped or exiting" // neither
	case o.State == 'D':
		return activityBusy, "uninterruptible sleep"
	case !o.SysOK:
		return activityUnknown, "syscall unreadable"
	case o.Sys.Running || o.State == 'R':
		return activityBusy, "running"
	}
	name := o.SysName
	if name == "" {
		name = "syscall " + strconv.FormatInt(o.Sys.Nr, 10)
	}
	switch o.Class {
	case sysSelect, sysPoll, sysEpoll, sysAccept:
		if !o.WaitKnown {
			return activityUnknown, name + " on unreadable descriptors"
		}
		for _, w := range o.Wait {
			if w.Listener {
				return activityIdle, name + " on the listener"
			}
		}
		return activityBusy, name + " not on the listener"
	}
	return activityBusy, "blocked in " + name
}

// waitsOnListenerWithSelect reports whether the worker shows the sync
// worker's idle signature: select(2)/pselect6 over a listening socket. The
// other worker classes wait in epoll.
func waitsOnListenerWithSelect(o observation) bool {
	if !o.SysOK || o.Class != sysSelect || !o.WaitKnown {
		return false
	}
	for _, w := range o.Wait {
		if w.Listener {
			return true
		}
	}
	return false
}

// cpuBound is the share of wall time spent on CPU between two samples from
// which a waiting worker counts as CPU-bound.
const cpuBound = 0.5

// classifyStuck decides what a stuck worker is doing (see the package doc
// for the rules). sock is the descriptor to resolve a peer for when the kind
// is socket_read (nil when unknown, e.g. from wchan alone).
func classifyStuck(o observation) (kind StuckKind, sock *waitFD) {
	if o.State == 'D' {
		return KindDisk, nil
	}
	if o.State == 'R' || (o.SysOK && o.Sys.Running) {
		return KindCPU, nil
	}
	busyCPU := o.CPURatio >= cpuBound
	if o.SysOK && !o.Sys.NotInSyscall {
		switch o.Class {
		case sysFutex:
			if busyCPU {
				return KindCPU, nil
			}
			return KindFutex, nil
		case sysSleep:
			return KindSleep, nil
		case sysRead, sysSelect, sysPoll, sysEpoll:
			if o.WaitKnown && len(o.Wait) == 0 && o.Class != sysRead {
				return KindSleep, nil // select(0, NULL, NULL, NULL, &tv): Python < 3.11 time.sleep
			}
			if o.WaitKnown {
				if s := firstSocket(o.Wait); s != nil {
					return KindSocketRead, s
				}
			} else if wchanSocket(o.Wchan) {
				return KindSocketRead, nil
			}
		}
		if busyCPU {
			return KindCPU, nil
		}
		return KindOther, nil
	}
	// No syscall (no ptrace attach access, or not in a syscall): wchan is
	// what is left.
	switch {
	case strings.HasPrefix(o.Wchan, "futex"):
		if busyCPU {
			return KindCPU, nil
		}
		return KindFutex, nil
	case o.Wchan == "hrtimer_nanosleep" || o.Wchan == "do_nanosleep":
		return KindSleep, nil
	case wchanSocket(o.Wchan):
		return KindSocketRead, nil
	case busyCPU:
		return KindCPU, nil
	}
	return KindOther, nil
}

// firstSocket returns the first non-listening socket in ws; a worker
// waiting on a listener is in its accept loop, not reading.
func firstSocket(ws []waitFD) *waitFD {
	hasListener := false
	for i := range ws {
		if ws[i].Listener {
			hasListener = true
		}
	}
	if hasListener {
		return nil
	}
	for i := range ws {
		if ws[i].Socket {
			return &ws[i]
		}
	}
	return nil
}

// wchanSocket reports whether a wait channel is a socket receive wait:
// sk_wait_data (TCP recvmsg before 4.x), wait_woken (sk_wait_event in
// current kernels), unix_stream_data_wait and the receive functions
// themselves.
func wchanSocket(w string) bool {
	switch w {
	case "sk_wait_data", "wait_woken", "unix_stream_data_wait", "unix_stream_read_generic",
		"tcp_recvmsg", "tcp_recvmsg_locked", "__skb_wait_for_more_packets", "__skb_recv_datagram":
		return true
	}
	return false
}
