// Package timeline owns the in-memory, bounded event timeline: collectors
// append what they observed (a worker timeout, a stuck-worker snapshot, a
// slow query), and incident correlation reads a time window of it. It keeps
// at most MaxEvents and nothing older than MaxAge, so memory is bounded no
// matter how noisy a host gets; the oldest events are evicted first.
package timeline

import (
	"sync"
	"time"
)

// Event is one observation. PID and Detail are evidence for people and
// incident reports, never metric labels.
type Event struct {
	Seq    uint64            `json:"seq"`
	Time   time.Time         `json:"time"`
	App    string            `json:"app"`
	Source string            `json:"source"` // a Source* constant (names.go)
	Kind   string            `json:"kind"`   // a Kind* constant (names.go)
	PID    int               `json:"pid,omitempty"`
	Cause  string            `json:"cause,omitempty"`
	Detail string            `json:"detail,omitempty"`
	Attrs  map[string]string `json:"attrs,omitempty"`
}

// Timeline is a ring buffer safe for concurrent use.
type Timeline struct {
	mu      sync.Mutex
	buf     []Event
	head    int // index of the oldest event
	n       int
	seq     uint64
	maxAge  time.Duration
	now     func() time.Time
	evicted uint64
}

// New returns a timeline holding at most maxEvents events no older than
// maxAge (0 = no age limit).
func New(maxEvents int, maxAge time.Duration) *Timeline {
	if maxEvents < 1 {
		maxEvents = 1
	}
	return &Timeline{buf: make([]Event, maxEvents), maxAge: maxAge, now: time.Now}
}

// SetClock replaces the clock used for age eviction (tests).
func (t *Timeline) SetClock(now func() time.Time) {
	t.mu.Lock()
	t.now = now
	t.mu.Unlock()
}

// Append records e, stamping its sequence number (and its time when zero),
// and returns the sequence number.
func (t *Timeline) Append(e Event) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = t.now()
	}
	t.seq++
	e.Seq = t.seq
	if t.n == len(t.buf) {
		t.buf[t.head] = Event{}
		t.head = (t.head + 1) % len(t.buf)
		t.n--
		t.evicted++
	}
	t.buf[(t.head+t.n)%len(t.buf)] = e
	t.n++
	t.expireLocked()
	return e.Seq
}

func (t *Timeline) expireLocked() {
	if t.maxAge <= 0 {
		return
	}
	cutoff := t.now().Add(-t.maxAge)
	for t.n > 0 && t.buf[t.head].Time.Before(cutoff) {
		t.buf[t.head] = Event{}
		t.head = (t.head + 1) % len(t.buf)
		t.n--
		t.evicted++
	}
}

// Query selects events, oldest first.
type Query struct {
	App      string    // "" = every app
	From, To time.Time // zero = unbounded
	AfterSeq uint64    // only events with a larger sequence number
	Kinds    []string  // empty = every kind
	Limit    int       // 0 = no limit; keeps the newest Limit matches
}

// Select returns copies of the matching events, oldest first.
func (t *Timeline) Select(q Query) []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireLocked()
	var out []Event
	for i := 0; i < t.n; i++ {
		e := t.buf[(t.head+i)%len(t.buf)]
		if e.Seq <= q.AfterSeq || (q.App != "" && e.App != q.App) {
			continue
		}
		if (!q.From.IsZero() && e.Time.Before(q.From)) || (!q.To.IsZero() && e.Time.After(q.To)) {
			continue
		}
		if len(q.Kinds) > 0 && !contains(q.Kinds, e.Kind) {
			continue
		}
		out = append(out, e)
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out
}

// Stats reports the current size and how many events were evicted so far.
func (t *Timeline) Stats() (size int, evicted uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n, t.evicted
}

func contains(set []string, s string) bool {
	for _, v := range set {
		if v == s {
			return true
		}
	}
	return false
}
