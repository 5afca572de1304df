package procinfo

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
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

// tcpListen is the TCP_LISTEN state in /proc/net/tcp{,6}.
const tcpListen = 0x0a

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
	// A procfs.FS rooted at /proc/<pid> reads /proc/<pid>/net/*.
	pfs, err := procfs.NewFS(fs.path(pid))
	if err != nil {
		return nil, fmt.Errorf("listeners of %d: %w", pid, classify(err))
	}
	var out []Listener
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fs.path(pid, "net", name))
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6, or a saved tree without this file
		}
		if err != nil {
			return nil, fmt.Errorf("listeners of %d: %w", pid, classify(err))
		}
		for _, r := range parseNetTCP(b) {
			fd, ok := byInode[r.inode]
			if !ok || r.state != tcpListen {
				continue
			}
			out = append(out, Listener{
				FD: fd, Inode: r.inode, Network: "tcp",
				Addr: net.JoinHostPort(r.addr.String(), strconv.Itoa(r.port)),
				Port: r.port,
			})
		}
	}
	unix, err := pfs.NetUNIX()
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("listeners of %d: %w", pid, classify(err))
	default:
		for _, r := range unix.Rows {
			fd, ok := byInode[r.Inode]
			if !ok || r.Flags&unixAcceptCon == 0 {
				continue
			}
			out = append(out, Listener{FD: fd, Inode: r.Inode, Network: "unix", Addr: r.Path})
		}
	}
	slices.SortFunc(out, func(a, b Listener) int { return a.FD - b.FD })
	return out, nil
}

type tcpRow struct {
	addr  net.IP
	port  int
	state uint64
	inode uint64
}

// parseNetTCP parses /proc/net/tcp or tcp6, skipping lines it cannot read.
// (procfs's NetTCP is deprecated in favour of netlink, which cannot read a
// saved tree.) Addresses are hex 32-bit words in host byte order.
func parseNetTCP(b []byte) []tcpRow {
	var rows []tcpRow
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 10 || f[0] == "sl" {
			continue
		}
		host, port, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		raw, err := hex.DecodeString(host)
		if err != nil || (len(raw) != net.IPv4len && len(raw) != net.IPv6len) {
			continue
		}
		ip := make(net.IP, len(raw))
		for i := 0; i < len(raw); i += 4 {
			binary.BigEndian.PutUint32(ip[i:], binary.NativeEndian.Uint32(raw[i:]))
		}
		p, err1 := strconv.ParseUint(port, 16, 16)
		st, err2 := strconv.ParseUint(f[3], 16, 8)
		ino, err3 := strconv.ParseUint(f[9], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		rows = append(rows, tcpRow{addr: ip, port: int(p), state: st, inode: ino})
	}
	return rows
}
