package incidentpage

import (
	"math"
	"sort"
	"sync"
	"time"
)

// AppSample is one app's cumulative counters and current gauges at a
// sampling instant, as the collectors hold them.
type AppSample struct {
	App string
	// Timeouts is the app's WORKER TIMEOUT count so far.
	Timeouts uint64
	// ProcKnown is false when no /proc sample of the app exists (no
	// master known, or the last sample failed); the worker gauges are
	// then not drawn.
	ProcKnown     bool
	Workers, Busy int
	// HeartbeatAge is the oldest worker heartbeat; zero with
	// HeartbeatKnown false when none could be read.
	HeartbeatAge   time.Duration
	HeartbeatKnown bool
	// Requests and LatencySum are the access log's request count and
	// summed durations (seconds) so far; LatencyKnown is false when the
	// app has no access log with a duration.
	Requests     uint64
	LatencySum   float64
	LatencyKnown bool
	// Timeout is the app's --timeout (0 unknown): the chart draws it as
	// the line heartbeat age must not cross.
	Timeout time.Duration
}

// DBSample is the database side at a sampling instant, summed over every
// PostgreSQL and PgBouncer target that answered (the configuration does
// not map apps onto targets, so every app is drawn with the same numbers).
type DBSample struct {
	// Known is false when no target answered.
	Known bool
	// LongestActive is the age of the longest-running active query.
	LongestActive time.Duration
	// Active counts sessions running a query; Blocked those
	// pg_blocking_pids reports as blocked; IdleInTransaction those idle
	// in a transaction.
	Active, Blocked, IdleInTransaction int
	// Saturation is the highest target's client backends over the
	// connections ordinary roles may use.
	Saturation float64
	// PoolWaiting counts PgBouncer clients queued for a server
	// connection.
	PoolWaiting int
}

// Point is one app's numbers for the interval ending at Time. A float that
// is NaN was not known then; it is drawn as a gap.
type Point struct {
	Time time.Time
	// Timeouts is the WORKER TIMEOUTs during the interval.
	Timeouts float64
	// Workers and Busy are the live workers and those inside a request.
	Workers, Busy float64
	// HeartbeatAge is the oldest heartbeat, in seconds.
	HeartbeatAge float64
	// Latency is the mean duration of the requests logged during the
	// interval, in seconds; Requests is their number.
	Latency, Requests float64
	// Timeout is the app's --timeout in seconds.
	Timeout float64
	// The database side (DBSample), in seconds and counts.
	DBLongestActive, DBActive, DBBlocked, DBIdleInTransaction, DBSaturation, DBPoolWaiting float64
}

// Options bound a Series. Zero values mean the documented defaults.
type Options struct {
	// MaxPoints per app; zero means 1800 (an hour at the feeder's 2 s).
	// A point is about 150 bytes: 270 KB per app, 17 MB at MaxApps.
	MaxPoints int
	// MaxApps kept at once; zero means 64. A new app past it replaces
	// the app sampled least recently.
	MaxApps int
}

// Series is the bounded per-app history the chart draws. It is safe for
// concurrent use.
type Series struct {
	opts Options

	mu   sync.Mutex
	apps map[string]*appRing
}

type appRing struct {
	points []Point // ring of len ≤ MaxPoints
	head   int     // index of the oldest point when full
	last   AppSample
	seen   bool
	lastAt time.Time
}

// NewSeries returns an empty Series.
func NewSeries(opts Options) *Series {
	if opts.MaxPoints <= 0 {
		opts.MaxPoints = 1800
	}
	if opts.MaxApps <= 0 {
		opts.MaxApps = 64
	}
	return &Series{opts: opts, apps: map[string]*appRing{}}
}

// Observe records one sampling instant: the interval's increase of each
// counter since the app's previous sample (a counter that went down was
// reset, and counts from zero), and the current gauges. The first sample
// of an app records no increase: there is no interval yet.
func (s *Series) Observe(at time.Time, apps []AppSample, db DBSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range apps {
		r := s.ring(a.App)
		p := pointOf(r, a, db, at)
		if len(r.points) < s.opts.MaxPoints {
			r.points = append(r.points, p)
		} else {
			r.points[r.head] = p
			r.head = (r.head + 1) % len(r.points)
		}
		r.last, r.seen, r.lastAt = a, true, at
	}
}

// ring returns app's ring, making room for it past MaxApps.
func (s *Series) ring(app string) *appRing {
	if r, ok := s.apps[app]; ok {
		return r
	}
	if len(s.apps) >= s.opts.MaxApps {
		oldest, at := "", time.Time{}
		for name, r := range s.apps {
			if oldest == "" || r.lastAt.Before(at) || (r.lastAt.Equal(at) && name < oldest) {
				oldest, at = name, r.lastAt
			}
		}
		delete(s.apps, oldest)
	}
	r := &appRing{}
	s.apps[app] = r
	return r
}

func pointOf(r *appRing, a AppSample, db DBSample, at time.Time) Point {
	nan := math.NaN()
	p := Point{Time: at, Timeouts: nan, Workers: nan, Busy: nan, HeartbeatAge: nan, Latency: nan, Requests: nan, Timeout: nan,
		DBLongestActive: nan, DBActive: nan, DBBlocked: nan, DBIdleInTransaction: nan, DBSaturation: nan, DBPoolWaiting: nan}
	if r.seen {
		p.Timeouts = float64(increase(r.last.Timeouts, a.Timeouts))
	}
	if a.ProcKnown {
		p.Workers, p.Busy = float64(a.Workers), float64(a.Busy)
		if a.HeartbeatKnown {
			p.HeartbeatAge = a.HeartbeatAge.Seconds()
		}
	}
	if a.Timeout > 0 {
		p.Timeout = a.Timeout.Seconds()
	}
	if a.LatencyKnown && r.seen && r.last.LatencyKnown {
		n := increase(r.last.Requests, a.Requests)
		sum := a.LatencySum
		if a.Requests >= r.last.Requests {
			sum -= r.last.LatencySum
		}
		p.Requests = float64(n)
		if n > 0 {
			p.Latency = math.Max(sum, 0) / float64(n)
		}
	}
	if db.Known {
		p.DBLongestActive = db.LongestActive.Seconds()
		p.DBActive, p.DBBlocked = float64(db.Active), float64(db.Blocked)
		p.DBIdleInTransaction = float64(db.IdleInTransaction)
		p.DBSaturation = db.Saturation
		p.DBPoolWaiting = float64(db.PoolWaiting)
	}
	return p
}

// increase is cur-prev for a counter, or cur when it was reset.
func increase(prev, cur uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// Window returns app's points with from ≤ Time ≤ to, oldest first (a zero
// to means no upper bound).
func (s *Series) Window(app string, from, to time.Time) []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.apps[app]
	if !ok {
		return nil
	}
	out := make([]Point, 0, len(r.points))
	for i := range r.points {
		p := r.points[(r.head+i)%len(r.points)]
		if p.Time.Before(from) || (!to.IsZero() && p.Time.After(to)) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// Apps lists the apps with points, sorted.
func (s *Series) Apps() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.apps))
	for name := range s.apps {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Len is the number of points kept for app.
func (s *Series) Len(app string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.apps[app]; ok {
		return len(r.points)
	}
	return 0
}
