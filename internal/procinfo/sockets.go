package procinfo

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Listener is a listening socket a process holds open.
type Listener struct {
	FD    int
	Inode uint64
	// Network is "tcp" or "unix".
	Network string
	// Addr is "host:port" for TCP ("[::1]:8000" for IPv6) and the socket
	// path for unix sockets ("" for an abstract or unnamed one).
	Addr string
	Port int // TCP port; 0 for unix sockets
}

// TCP states in /proc/net/tcp (include/net/tcp_states.h).
const (
	TCPEstablished = 0x01
	TCPListen      = 0x0a
)

// unixAcceptCon is __SO_ACCEPTCON in the flags column of /proc/net/unix:
// set on a listening unix socket.
const unixAcceptCon = 0x10000

// Listeners returns pid's listening TCP and unix sockets, by fd. It maps the
// socket inodes of /proc/<pid>/fd to /proc/<pid>/net/{tcp,tcp6,unix}, which
// describe the process's own network namespace.
func (fs FS) Listeners(pid int) ([]Listener, error) {
	files, err := fs.OpenFiles(pid)
	if err != nil {
		return nil, fmt.Errorf("listeners of %d: %w", pid, err)
	}
	byInode := map[uint64]int{}
	for _, f := range files {
		if f.Socket {
			byInode[f.Inode] = f.FD
		}
	}
	if len(byInode) == 0 {
		return nil, nil
	}
	conns, err := fs.NetTCP(pid)
	if err != nil {
		return nil, fmt.Errorf("listeners of %d: %w", pid, err)
	}
	var out []Listener
	for _, r := range conns {
		fd, ok := byInode[r.Inode]
		if !ok || r.State != TCPListen {
			continue
		}
		out = append(out, Listener{
			FD: fd, Inode: r.Inode, Network: "tcp",
			Addr: net.JoinHostPort(r.Local.String(), strconv.Itoa(r.LocalPort)),
			Port: r.LocalPort,
		})
	}
	socks, err := fs.NetUnix(pid)
	switch {
	case errors.Is(err, ErrGone):
	case err != nil:
		return nil, fmt.Errorf("listeners of %d: %w", pid, err)
	}
	for _, r := range socks {
		fd, ok := byInode[r.Inode]
		if !ok || r.Flags&unixAcceptCon == 0 {
			continue
		}
		out = append(out, Listener{FD: fd, Inode: r.Inode, Network: "unix", Addr: r.Path})
	}
	slices.SortFunc(out, func(a, b Listener) int { return a.FD - b.FD })
	return out, nil
}

// NetTCP returns the rows of /proc/<pid>/net/tcp and tcp6: the TCP sockets
// of pid's network namespace. A missing table (no IPv6, or a saved tree
// without it) is skipped.
func (fs FS) NetTCP(pid int) ([]TCPConn, error) {
	var out []TCPConn
	for _, name := range []string{"net/tcp", "net/tcp6"} {
		b, err := fs.ReadFile(pid, name)
		if errors.Is(err, ErrGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ParseNetTCP(b)...)
	}
	return out, nil
}

// NetUnix returns the rows of /proc/<pid>/net/unix: the unix sockets of
// pid's network namespace.
func (fs FS) NetUnix(pid int) ([]UnixSocket, error) {
	b, err := fs.ReadFile(pid, "net/unix")
	if err != nil {
		return nil, err
	}
	return ParseNetUnix(b), nil
}

// TCPConn is one row of /proc/<pid>/net/tcp or tcp6.
type TCPConn struct {
	Local, Remote net.IP
	LocalPort     int
	RemotePort    int
	State         uint64 // TCPEstablished, TCPListen, ...
	Inode         uint64
}

// ParseNetTCP parses /proc/net/tcp or tcp6, skipping lines it cannot read.
// (procfs's NetTCP is deprecated in favour of netlink, which cannot read a
// saved tree.) Addresses are hex 32-bit words in host byte order, ports
// hex; an IPv4-mapped tcp6 address reads as plain IPv4.
func ParseNetTCP(b []byte) []TCPConn {
	var rows []TCPConn
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
		rows = append(rows, TCPConn{Local: lip, LocalPort: lport, Remote: rip, RemotePort: rport, State: st, Inode: ino})
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
		ip = v4
	}
	return ip, int(p), true
}

// UnixSocket is one row of /proc/<pid>/net/unix.
type UnixSocket struct {
	Inode uint64
	Flags uint64 // __SO_ACCEPTCON (0x10000) marks a listening socket
	Path  string // "" for an unnamed socket
}

// ParseNetUnix parses /proc/net/unix: "Num RefCount Protocol Flags Type St
// Inode Path", skipping lines it cannot read.
func ParseNetUnix(b []byte) []UnixSocket {
	var rows []UnixSocket
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] == "Num" {
			continue
		}
		ino, err := strconv.ParseUint(f[6], 10, 64)
		if err != nil {
			continue
		}
		u := UnixSocket{Inode: ino}
		if fl, err := strconv.ParseUint(f[3], 16, 64); err == nil {
			u.Flags = fl
		}
		if len(f) >= 8 {
			u.Path = f[7]
		}
		rows = append(rows, u)
	}
	return rows
}
