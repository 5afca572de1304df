package errorlog

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSignalName is the longest signal name without "SIG" (STKFLT, VTALRM).
const maxSignalName = 6

// SignalNumber returns the signal number for a name such as "SIGKILL",
// "KILL" or "hup" (any case, with or without "SIG"), or 0 if unknown. The
// names are golang.org/x/sys/unix's for this platform, plus SIGIOT,
// SIGPOLL and SIGCLD, the aliases Python may print (Gunicorn 24.0.0 logs
// "Unhandled signal: cld"). It does not allocate.
func SignalNumber(name []byte) int {
	if len(name) >= 3 && upper(name[0]) == 'S' && upper(name[1]) == 'I' && upper(name[2]) == 'G' {
		name = name[3:]
	}
	if len(name) == 0 || len(name) > maxSignalName {
		return 0
	}
	var buf [len("SIG") + maxSignalName]byte
	n := copy(buf[:], "SIG")
	for _, c := range name {
		buf[n] = upper(c)
		n++
	}
	full := buf[:n]
	switch string(full) {
	case "SIGIOT":
		return int(unix.SIGIOT)
	case "SIGPOLL":
		return int(unix.SIGPOLL)
	case "SIGCLD":
		return int(unix.SIGCLD)
	}
	return int(unix.SignalNum(string(full)))
}

// SignalName returns the "SIGKILL" style name of a signal number, or ""
// when unknown.
func SignalName(n int) string {
	if n <= 0 {
		return ""
	}
	return unix.SignalName(syscall.Signal(n))
}
