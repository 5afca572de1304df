package workerstate

import (
	"fmt"
	"strconv"
	"strings"
)

// sysClass groups the syscalls the classification cares about.
type sysClass int

const (
	sysUnknown sysClass = iota
	sysRead             // read, readv, pread64, recvfrom, recvmsg, recvmmsg: arg0 is the fd
	sysSelect           // select, pselect6: arg0 nfds, arg1 readfds
	sysPoll             // poll, ppoll: arg0 pollfd array, arg1 nfds
	sysEpoll            // epoll_wait, epoll_pwait, epoll_pwait2: arg0 epfd
	sysAccept           // accept, accept4: arg0 is the fd
	sysFutex            // futex, futex_waitv, futex_wait
	sysSleep            // nanosleep, clock_nanosleep
	sysConnect          // connect
	sysWait             // wait4, waitid
)

type sysEntry struct {
	name  string
	class sysClass
}

// syscallTables maps a GOARCH to its syscall numbers (the kernel's
// arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h).
// The target process is assumed to run the exporter's architecture.
var syscallTables = map[string]map[int64]sysEntry{
	"amd64": {
		0: {"read", sysRead}, 17: {"pread64", sysRead}, 19: {"readv", sysRead},
		45: {"recvfrom", sysRead}, 47: {"recvmsg", sysRead}, 299: {"recvmmsg", sysRead},
		23: {"select", sysSelect}, 270: {"pselect6", sysSelect},
		7: {"poll", sysPoll}, 271: {"ppoll", sysPoll},
		232: {"epoll_wait", sysEpoll}, 281: {"epoll_pwait", sysEpoll}, 441: {"epoll_pwait2", sysEpoll},
		43: {"accept", sysAccept}, 288: {"accept4", sysAccept},
		202: {"futex", sysFutex}, 449: {"futex_waitv", sysFutex}, 455: {"futex_wait", sysFutex},
		35: {"nanosleep", sysSleep}, 230: {"clock_nanosleep", sysSleep},
		42: {"connect", sysConnect},
		61: {"wait4", sysWait}, 247: {"waitid", sysWait},
		1: {"write", sysUnknown}, 44: {"sendto", sysUnknown}, 46: {"sendmsg", sysUnknown},
		74: {"fsync", sysUnknown}, 75: {"fdatasync", sysUnknown}, 257: {"openat", sysUnknown},
	},
	"arm64": {
		63: {"read", sysRead}, 65: {"readv", sysRead}, 67: {"pread64", sysRead},
		207: {"recvfrom", sysRead}, 212: {"recvmsg", sysRead}, 243: {"recvmmsg", sysRead},
		72: {"pselect6", sysSelect},
		73: {"ppoll", sysPoll},
		22: {"epoll_pwait", sysEpoll}, 441: {"epoll_pwait2", sysEpoll},
		202: {"accept", sysAccept}, 242: {"accept4", sysAccept},
		98: {"futex", sysFutex}, 449: {"futex_waitv", sysFutex}, 455: {"futex_wait", sysFutex},
		101: {"nanosleep", sysSleep}, 115: {"clock_nanosleep", sysSleep},
		203: {"connect", sysConnect},
		260: {"wait4", sysWait}, 95: {"waitid", sysWait},
		64: {"write", sysUnknown}, 206: {"sendto", sysUnknown}, 211: {"sendmsg", sysUnknown},
		82: {"fsync", sysUnknown}, 83: {"fdatasync", sysUnknown}, 56: {"openat", sysUnknown},
	},
}

// lookupSyscall returns the entry for nr on arch; ok is false for a number
// the table does not know (its class is then sysUnknown).
func lookupSyscall(arch string, nr int64) (sysEntry, bool) {
	e, ok := syscallTables[arch][nr]
	return e, ok
}

// syscallState is /proc/<pid>/syscall parsed.
type syscallState struct {
	// Running: the task was running ("running"): no syscall to report.
	Running bool
	// NotInSyscall: blocked outside a syscall ("-1 sp pc"), e.g. stopped
	// or in a page fault.
	NotInSyscall bool
	Nr           int64
	Args         [6]uint64
}

// parseSyscall parses the content of /proc/<pid>/syscall: "running",
// "-1 <sp> <pc>", or "<nr> <arg1> ... <arg6> <sp> <pc>" with hex arguments.
func parseSyscall(s string) (syscallState, error) {
	s = strings.TrimSpace(s)
	if s == "running" {
		return syscallState{Running: true}, nil
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		return syscallState{}, fmt.Errorf("syscall: empty")
	}
	nr, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return syscallState{}, fmt.Errorf("syscall: number %q: %w", f[0], err)
	}
	if nr < 0 {
		return syscallState{NotInSyscall: true, Nr: nr}, nil
	}
	if len(f) < 7 {
		return syscallState{}, fmt.Errorf("syscall: %d fields, want at least 7", len(f))
	}
	st := syscallState{Nr: nr}
	for i := range st.Args {
		v, err := strconv.ParseUint(strings.TrimPrefix(f[i+1], "0x"), 16, 64)
		if err != nil {
			return syscallState{}, fmt.Errorf("syscall: argument %d %q: %w", i+1, f[i+1], err)
		}
		st.Args[i] = v
	}
	return st, nil
}
