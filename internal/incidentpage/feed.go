package incidentpage

import (
	"context"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/appset"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
)

// FeedOptions configure a Feeder. Every source is a function value, so
// the feeder reads nothing itself; a nil DB is no database numbers.
type FeedOptions struct {
	// Apps returns every app's state (appset.Manager.Snapshot). Required.
	Apps func() []appset.Snapshot
	// DB scrapes the PostgreSQL and PgBouncer targets (pgmon.Set.Scrape).
	DB func(ctx context.Context) (pgmon.SetSnapshot, error)
	// DBTimeout bounds one DB scrape; zero means 2s.
	DBTimeout time.Duration
	// Interval between samples; zero means 2s, the /proc sampler's own
	// interval, so a stuck worker's heartbeat age is seen climbing even
	// with a timeout of a few seconds.
	Interval time.Duration
	// DBEvery scrapes the databases at every DBEvery-th sample only, and
	// draws the last scrape's numbers in between: the database is asked
	// less often than /proc is read. Zero means 5 (every 10 s).
	DBEvery int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Feeder samples the collectors' state into a Series.
type Feeder struct {
	series *Series
	opts   FeedOptions

	samples int      // samples taken; only the goroutine calling Sample
	lastDB  DBSample // the last DB scrape's numbers
}

// NewFeeder returns a Feeder writing into series.
func NewFeeder(series *Series, opts FeedOptions) *Feeder {
	if opts.DBTimeout <= 0 {
		opts.DBTimeout = 2 * time.Second
	}
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.DBEvery <= 0 {
		opts.DBEvery = 5
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Feeder{series: series, opts: opts}
}

// Run samples every Interval until ctx is done.
func (f *Feeder) Run(ctx context.Context) {
	t := time.NewTicker(f.opts.Interval)
	defer t.Stop()
	for {
		f.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample takes one sample now; it is not safe for concurrent use. A DB
// scrape that fails or times out is no database numbers until the next
// one, never a missing app point.
func (f *Feeder) Sample(ctx context.Context) {
	if f.opts.DB != nil && f.samples%f.opts.DBEvery == 0 {
		f.lastDB = DBSample{}
		dctx, cancel := context.WithTimeout(ctx, f.opts.DBTimeout)
		snap, err := f.opts.DB(dctx)
		cancel()
		if err == nil {
			f.lastDB = DBFromSnapshot(snap)
		}
	}
	f.samples++
	db := f.lastDB
	snaps := f.opts.Apps()
	apps := make([]AppSample, 0, len(snaps))
	for _, s := range snaps {
		apps = append(apps, AppFromSnapshot(s))
	}
	f.series.Observe(f.opts.Now(), apps, db)
}

// AppFromSnapshot takes what the chart draws from one app's state.
func AppFromSnapshot(s appset.Snapshot) AppSample {
	a := AppSample{App: s.App, Timeouts: s.Lifecycle.Timeouts, Timeout: s.Proc.Timeout}
	if s.Proc.Known && s.Proc.Sampled {
		a.ProcKnown = true
		a.Workers, a.Busy = s.Proc.State.Workers, s.Proc.State.Busy
		if s.Proc.State.HeartbeatsRead > 0 {
			a.HeartbeatAge, a.HeartbeatKnown = s.Proc.State.MaxHeartbeatAge, true
		}
	}
	if s.Access != nil {
		a.Requests, a.LatencySum, a.LatencyKnown = s.Access.Latency()
	}
	return a
}

// DBFromSnapshot sums the targets that answered: the longest query and
// the saturation are the worst target's, the counts are added up.
func DBFromSnapshot(snap pgmon.SetSnapshot) DBSample {
	var db DBSample
	for _, t := range snap.Targets {
		if !t.Up {
			continue
		}
		db.Known = true
		db.LongestActive = max(db.LongestActive, t.LongestActive)
		db.Saturation = max(db.Saturation, t.Saturation)
		db.Blocked += t.Blocked
		db.IdleInTransaction += t.IdleInTransaction
		for _, c := range t.Connections {
			if c.State == pgmon.StateActive {
				db.Active += c.Count
			}
		}
	}
	for _, b := range snap.Bouncers {
		if !b.Up {
			continue
		}
		db.Known = true
		for _, p := range b.Pools {
			db.PoolWaiting += p.ClientWaiting
		}
	}
	return db
}
