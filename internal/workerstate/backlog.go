package workerstate

import (
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// BacklogInterval is how often the caller is meant to call ObserveBacklog
// (one sock_diag dump of the host's listeners for all apps together, about
// 0.1 ms: see BENCHMARKS.md), so that a burst shorter than the scrape
// interval shows in Backlog.Peak.
const BacklogInterval = 100 * time.Millisecond

// DefaultBacklogWindow is how far back Backlog.Peak looks. It is a window,
// not "since the last scrape", so that two Prometheus servers scraping the
// same exporter do not reset each other's peak and a failed scrape loses
// nothing; 60 s covers every scrape interval up to a minute.
const DefaultBacklogWindow = 60 * time.Second

// Backlog is the listen queue of one app: connections the kernel has
// completed for the master's listening sockets that no worker has accepted
// yet. With sync workers all busy, that is where clients wait, a time the
// access log's %(D)s does not include.
//
// TCP queues come from sock_diag (procinfo.ListenQueues), or, for a
// listener in another network namespace, from the rx_queue of its LISTEN
// row in /proc/<master>/net/tcp{,6} (then without a ceiling). A unix
// socket's queue is only in sock_diag: one it cannot see is Unreadable.
type Backlog struct {
	// Listed is true when the master's listening sockets could be listed
	// (its fds were readable); the other fields are meaningful only then.
	Listed bool
	// Listeners is the listening sockets among the master's fds;
	// Unreadable counts those whose queue could not be read.
	Listeners, Unreadable int
	// Queued is the connections waiting to be accepted now, summed over the
	// readable listeners.
	Queued uint64
	// Max is the ceiling summed over the listeners (sk_max_ack_backlog:
	// --backlog clamped to net.core.somaxconn); valid when MaxKnown, which
	// needs every listener read through sock_diag.
	Max      uint64
	MaxKnown bool
	// Peak is the largest Queued seen over the Sampler's backlog window
	// (DefaultBacklogWindow), at samples, scrapes and ObserveBacklog calls.
	Peak uint64
}

// Readable reports whether at least one listener's queue was read, so that
// Queued is a measurement and not a default.
func (b Backlog) Readable() bool { return b.Listed && b.Listeners > b.Unreadable }

// peakRing keeps the largest backlog of each of the last len(max) seconds.
type peakRing struct {
	sec []int64
	max []uint64
}

func (r *peakRing) record(now time.Time, v uint64, window time.Duration) {
	n := max(int(window/time.Second), 1)
	if len(r.sec) != n {
		r.sec, r.max = make([]int64, n), make([]uint64, n)
	}
	s := now.Unix()
	i := int(((s % int64(n)) + int64(n)) % int64(n))
	if r.sec[i] != s {
		r.sec[i], r.max[i] = s, v
		return
	}
	r.max[i] = max(r.max[i], v)
}

func (r *peakRing) peak(now time.Time) uint64 {
	s := now.Unix()
	var p uint64
	for i, at := range r.sec {
		if age := s - at; age >= 0 && age < int64(len(r.sec)) {
			p = max(p, r.max[i])
		}
	}
	return p
}

// ReadBacklog reads app's listen queue now: the master's listening sockets
// (cached, see listenerRefresh), one sock_diag dump, and, only when a TCP
// listener is not in it, /proc/<master>/net/tcp{,6}. The reading counts
// toward Peak.
func (s *Sampler) ReadBacklog(app string, master procinfo.Identity) Backlog {
	return s.readBacklog(app, master, s.dumpQueues(), true)
}

// ObserveBacklog reads the listen queue of every app in masters (app →
// master) from one sock_diag dump, for Peak. An app with a listener
// sock_diag cannot see records nothing: reading /proc/<pid>/net/tcp ten
// times a second would cost what the listener cache saves on a host with
// many connections.
func (s *Sampler) ObserveBacklog(masters map[string]procinfo.Identity) {
	if len(masters) == 0 {
		return
	}
	queues := s.dumpQueues()
	for app, master := range masters {
		s.readBacklog(app, master, queues, false)
	}
}

// dumpQueues is one sock_diag dump; nil without sock_diag. A partial dump
// (unix_diag missing) still names what it saw.
func (s *Sampler) dumpQueues() map[uint64]procinfo.ListenQueue {
	if s.listenQueues == nil {
		return nil
	}
	q, _ := s.listenQueues()
	return q
}

func (s *Sampler) readBacklog(app string, master procinfo.Identity, queues map[uint64]procinfo.ListenQueue, fallback bool) Backlog {
	now := s.now()
	lis := s.listeners(app, master, now)
	var b Backlog
	if lis.err != nil && len(lis.all) == 0 {
		return s.withPeak(app, b, now, false)
	}
	b.Listed, b.Listeners, b.MaxKnown = true, len(lis.all), true
	var missing []procinfo.Listener
	for _, l := range lis.all {
		q, ok := queues[l.Inode]
		if !ok {
			missing = append(missing, l)
			continue
		}
		b.Queued += uint64(q.Queued)
		b.Max += uint64(q.Max)
	}
	if len(missing) == 0 {
		return s.withPeak(app, b, now, true)
	}
	b.MaxKnown = false
	if !fallback {
		return b
	}
	rx := map[uint64]uint64{}
	if conns, err := s.fs.NetTCP(master.PID); err == nil {
		for _, c := range conns {
			if c.State == procinfo.TCPListen {
				rx[c.Inode] = c.RxQueue
			}
		}
	}
	for _, l := range missing {
		q, ok := rx[l.Inode]
		if !ok || l.Network != "tcp" {
			b.Unreadable++
			continue
		}
		b.Queued += q
	}
	return s.withPeak(app, b, now, true)
}

// withPeak records b.Queued (when record, and b is a measurement) and
// fills b.Peak.
func (s *Sampler) withPeak(app string, b Backlog, now time.Time, record bool) Backlog {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.app(app)
	if record && b.Readable() {
		m.peak.record(now, b.Queued, s.backlogWindow)
	}
	b.Peak = max(m.peak.peak(now), b.Queued)
	if !b.Readable() {
		b.Peak = 0
	}
	return b
}
