package procinfo

import (
	"fmt"
	"strconv"
	"strings"
)

// ListenStats are the kernel's host-wide (per network namespace) counters
// of connections a full listen queue turned away, from the TcpExt lines of
// /proc/net/netstat.
type ListenStats struct {
	// Overflows is TcpExt ListenOverflows: a SYN or the final ACK of a
	// handshake dropped because the accept queue of the listener was full
	// (LINUX_MIB_LISTENOVERFLOWS, net/ipv4/tcp_ipv4.c).
	Overflows uint64
	// Drops is TcpExt ListenDrops: every connection request a listener
	// dropped, overflows included.
	Drops uint64
}

// TCPListenStats reads ListenOverflows and ListenDrops from
// <root>/net/netstat, which is the network namespace of the reader.
func (fs FS) TCPListenStats() (ListenStats, error) {
	b, err := fs.ReadRootFile("net/netstat")
	if err != nil {
		return ListenStats{}, fmt.Errorf("listen stats: %w", err)
	}
	return ParseListenStats(b)
}

// ParseListenStats finds ListenOverflows and ListenDrops in the text of
// /proc/net/netstat: pairs of lines "TcpExt: Name1 Name2 ..." and
// "TcpExt: v1 v2 ...". It fails when the TcpExt pair or either counter is
// missing or malformed.
func ParseListenStats(b []byte) (ListenStats, error) {
	var names []string
	var st ListenStats
	found := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "TcpExt:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		if len(f)-1 != len(names) {
			return ListenStats{}, fmt.Errorf("netstat: TcpExt has %d names and %d values", len(names), len(f)-1)
		}
		for i, v := range f[1:] {
			var dst *uint64
			switch names[i] {
			case "ListenOverflows":
				dst = &st.Overflows
			case "ListenDrops":
				dst = &st.Drops
			default:
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return ListenStats{}, fmt.Errorf("netstat: TcpExt %s: %w", names[i], err)
			}
			*dst = n
			found++
		}
		break
	}
	if found != 2 {
		return ListenStats{}, fmt.Errorf("netstat: TcpExt ListenOverflows and ListenDrops not found")
	}
	return st, nil
}
