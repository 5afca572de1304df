package workerstate

import (
	"encoding/binary"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
)

// tcpConn is one row of /proc/<pid>/net/tcp or tcp6.
type tcpConn struct {
	Local, Remote net.IP
	LocalPort     int
	RemotePort    int
	State         uint64
	Inode         uint64
}

// TCP states in /proc/net/tcp (include/net/tcp_states.h).
const (
	tcpEstablished = 0x01
	tcpListen      = 0x0a
)

// parseNetTCP parses /proc/net/tcp or tcp6, skipping lines it cannot read.
// Addresses are hex 32-bit words in host byte order, ports hex.
func parseNetTCP(b []byte) []tcpConn {
	var rows []tcpConn
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 10 || f[0] == "sl" {
			continue
		}
		lip, lport, ok1 := parseHexAddr(f[1])
		rip, rport, ok2 := parseHexAddr(f[2])
		st, err1 := strconv.ParseUint(f[3], 16, 8)
		ino, err2 := strconv.ParseUint(f[9], 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			continue
		}
		rows = append(rows, tcpConn{Local: lip, LocalPort: lport, Remote: rip, RemotePort: rport, State: st, Inode: ino})
	}
	return rows
}

// parseHexAddr parses "0100007F:1F90" (IPv4) or a 32-hex-digit IPv6 address
// with its port.
func parseHexAddr(s string) (net.IP, int, bool) {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, false
	}
	raw, err := hex.DecodeString(host)
	if err != nil || (len(raw) != net.IPv4len && len(raw) != net.IPv6len) {
		return nil, 0, false
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(ip[i:], binary.NativeEndian.Uint32(raw[i:]))
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return nil, 0, false
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4 // an IPv4-mapped tcp6 address reads as plain IPv4
	}
	return ip, int(p), true
}

// unixSock is one row of /proc/<pid>/net/unix.
type unixSock struct {
	Inode uint64
	Path  string
}

// parseNetUnix parses /proc/net/unix: "Num RefCount Protocol Flags Type St
// Inode Path".
func parseNetUnix(b []byte) []unixSock {
	var rows []unixSock
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] == "Num" {
			continue
		}
		ino, err := strconv.ParseUint(f[6], 10, 64)
		if err != nil {
			continue
		}
		u := unixSock{Inode: ino}
		if len(f) >= 8 {
			u.Path = f[7]
		}
		rows = append(rows, u)
	}
	return rows
}

// epollTarget is one "tfd:" line of /proc/<pid>/fdinfo/<epoll fd>.
type epollTarget struct {
	FD    int
	Inode uint64
}

// parseEpollFdinfo parses the "tfd: N events: E data: D pos:P ino:I sdev:S"
// lines of an epoll instance's fdinfo (fs/eventpoll.c ep_show_fdinfo; ino is
// hex).
func parseEpollFdinfo(b []byte) []epollTarget {
	var out []epollTarget
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "tfd:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		fd, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		t := epollTarget{FD: fd}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "ino:"); ok {
				if ino, err := strconv.ParseUint(v, 16, 64); err == nil {
					t.Inode = ino
				}
			}
		}
		out = append(out, t)
	}
	return out
}

// maxWaitFDs bounds the fd_set and pollfd array read from a process: the
// classic FD_SETSIZE. A poll over more is read only in part.
const maxWaitFDs = 1024

// fdSetBytes is how many bytes of an fd_set cover nfds descriptors (the
// kernel reads whole longs).
func fdSetBytes(nfds uint64) int {
	n := min(nfds, maxWaitFDs)
	return int((n + 63) / 64 * 8)
}

// decodeFDSet returns the descriptors below nfds set in an fd_set (an array
// of native-endian 64-bit words).
func decodeFDSet(b []byte, nfds uint64) []int {
	var fds []int
	n := min(nfds, maxWaitFDs, uint64(len(b))*8)
	for w := 0; w*64 < int(n) && (w+1)*8 <= len(b); w++ {
		word := binary.NativeEndian.Uint64(b[w*8:])
		for bit := 0; bit < 64 && w*64+bit < int(n); bit++ {
			if word&(1<<bit) != 0 {
				fds = append(fds, w*64+bit)
			}
		}
	}
	return fds
}

// pollfdSize is sizeof(struct pollfd): int fd; short events; short revents.
const pollfdSize = 8

// decodePollFDs returns the non-negative fds of a struct pollfd array.
func decodePollFDs(b []byte) []int {
	var fds []int
	for i := 0; i+pollfdSize <= len(b); i += pollfdSize {
		fd := int32(binary.NativeEndian.Uint32(b[i:]))
		if fd >= 0 {
			fds = append(fds, int(fd))
		}
	}
	return fds
}

// socketInode parses a "socket:[N]" fd link text.
func socketInode(target string) (uint64, bool) {
	s, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return 0, false
	}
	ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
	return ino, err == nil
}
