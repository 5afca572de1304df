package collector

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// Netstat exports the kernel's counters of connections turned away by a
// full listen queue, read from /proc/net/netstat at each scrape (one small
// file read). They are host-wide (the exporter's network namespace), not per
// app: the kernel does not count them per socket. The names are reflex_*
// so they never collide with node_exporter's
// node_netstat_TcpExt_ListenOverflows.
type Netstat struct {
	read             func() (procinfo.ListenStats, error)
	overflows, drops *prometheus.Desc
}

// NewNetstat returns the listen-overflow collector over read
// (procinfo.FS.TCPListenStats); a nil read, or a proc root without
// net/netstat, exports nothing.
func NewNetstat(read func() (procinfo.ListenStats, error)) *Netstat {
	const src = " Host-wide (the exporter's network namespace), read from /proc/net/netstat at scrape time."
	return &Netstat{
		read:      read,
		overflows: newDesc(reflexNS, "tcp", "listen_overflows_total", "Connections the kernel dropped because a listener's accept queue was full (TcpExt ListenOverflows): clients that found every worker busy and the backlog at its ceiling."+src),
		drops:     newDesc(reflexNS, "tcp", "listen_drops_total", "Connection requests any listener dropped, overflows included (TcpExt ListenDrops)."+src),
	}
}

// Update implements Collector.
func (c *Netstat) Update(ch chan<- prometheus.Metric) error {
	if c.read == nil {
		return nil
	}
	st, err := c.read()
	if errors.Is(err, procinfo.ErrGone) {
		return nil // a proc root without net/netstat: a saved tree
	}
	if err != nil {
		return err
	}
	e := &emitter{ch: ch}
	e.counter(c.overflows, st.Overflows)
	e.counter(c.drops, st.Drops)
	return e.err
}
