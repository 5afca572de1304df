package incidentpage

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/appset"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestSeriesIncreasesAndGauges(t *testing.T) {
	s := NewSeries(Options{})
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 5 * time.Second) }
	db := DBSample{Known: true, LongestActive: 7 * time.Second, Active: 3, Blocked: 2, IdleInTransaction: 1, Saturation: 0.5, PoolWaiting: 4}
	s.Observe(at(0), []AppSample{{App: "a", Timeouts: 5, ProcKnown: true, Workers: 4, Busy: 1, Requests: 100, LatencySum: 10, LatencyKnown: true, Timeout: 3 * time.Second}}, DBSample{})
	s.Observe(at(1), []AppSample{{App: "a", Timeouts: 7, ProcKnown: true, Workers: 4, Busy: 4, HeartbeatAge: 2500 * time.Millisecond, HeartbeatKnown: true, Requests: 104, LatencySum: 18, LatencyKnown: true}}, db)
	// The pipeline restarted: counters start again from zero.
	s.Observe(at(2), []AppSample{{App: "a", Timeouts: 1, Requests: 2, LatencySum: 1, LatencyKnown: true}}, DBSample{})

	pts := s.Window("a", time.Time{}, time.Time{})
	require.Len(t, pts, 3)
	first, second, third := pts[0], pts[1], pts[2]
	require.True(t, math.IsNaN(first.Timeouts), "the first sample has no interval yet")
	require.True(t, math.IsNaN(first.Latency))
	require.Equal(t, 3.0, first.Timeout)
	require.True(t, math.IsNaN(first.HeartbeatAge), "no heartbeat read")
	require.True(t, math.IsNaN(first.DBActive), "no database known")

	require.Equal(t, 2.0, second.Timeouts)
	require.Equal(t, 4.0, second.Busy)
	require.Equal(t, 2.5, second.HeartbeatAge)
	require.Equal(t, 4.0, second.Requests)
	require.InDelta(t, 2.0, second.Latency, 1e-9, "8 s over 4 requests")
	require.Equal(t, 7.0, second.DBLongestActive)
	require.Equal(t, 2.0, second.DBBlocked)
	require.Equal(t, 4.0, second.DBPoolWaiting)
	require.Equal(t, 0.5, second.DBSaturation)

	require.Equal(t, 1.0, third.Timeouts, "a reset counts from zero")
	require.Equal(t, 2.0, third.Requests)
	require.InDelta(t, 0.5, third.Latency, 1e-9)
	require.True(t, math.IsNaN(third.Busy), "no /proc sample")

	require.Len(t, s.Window("a", at(1), at(1)), 1)
	require.Empty(t, s.Window("nope", time.Time{}, time.Time{}))
}

func TestSeriesIsBounded(t *testing.T) {
	s := NewSeries(Options{MaxPoints: 10, MaxApps: 3})
	for i := range 1000 {
		apps := []AppSample{{App: "a", Timeouts: uint64(i)}, {App: "b"}}
		// A noisy host: a new short-lived app every sample.
		apps = append(apps, AppSample{App: "short-" + string(rune('a'+i%26)) + time.Duration(i).String()})
		s.Observe(t0.Add(time.Duration(i)*time.Second), apps, DBSample{})
	}
	require.LessOrEqual(t, len(s.Apps()), 3)
	require.Equal(t, 10, s.Len("a"))
	pts := s.Window("a", time.Time{}, time.Time{})
	require.Len(t, pts, 10)
	require.Equal(t, t0.Add(990*time.Second), pts[0].Time, "the oldest points were dropped, order kept")
	require.Equal(t, t0.Add(999*time.Second), pts[9].Time)
	for _, p := range pts {
		require.Equal(t, 1.0, p.Timeouts)
	}
}

func TestDBFromSnapshot(t *testing.T) {
	require.False(t, DBFromSnapshot(pgmon.SetSnapshot{}).Known)
	require.False(t, DBFromSnapshot(pgmon.SetSnapshot{Targets: []pgmon.Snapshot{{Up: false, Blocked: 9}}}).Known,
		"a target that is down is no numbers, not zeros")
	db := DBFromSnapshot(pgmon.SetSnapshot{
		Targets: []pgmon.Snapshot{
			{Up: true, LongestActive: 3 * time.Second, Saturation: 0.2, Blocked: 1, IdleInTransaction: 1,
				Connections: []pgmon.ConnectionCount{{State: pgmon.StateActive, Count: 2}, {State: pgmon.StateIdle, Count: 5}}},
			{Up: true, LongestActive: 9 * time.Second, Saturation: 0.9, Blocked: 2,
				Connections: []pgmon.ConnectionCount{{State: pgmon.StateActive, Count: 1}}},
		},
		Bouncers: []pgmon.BouncerSnapshot{{Up: true, Pools: []pgmon.Pool{{ClientWaiting: 3}, {ClientWaiting: 2}}}, {Up: false}},
	})
	require.Equal(t, DBSample{Known: true, LongestActive: 9 * time.Second, Active: 3, Blocked: 3, IdleInTransaction: 1, Saturation: 0.9, PoolWaiting: 5}, db)
}

// TestFeederAsksTheDatabaseLessOften: the database is scraped at every
// DBEvery-th sample and its numbers drawn until the next scrape; a failed
// scrape is no numbers, and the app points are there either way.
func TestFeederAsksTheDatabaseLessOften(t *testing.T) {
	s := NewSeries(Options{})
	now := t0
	scrapes := 0
	fail := false
	f := NewFeeder(s, FeedOptions{
		Apps: func() []appset.Snapshot {
			snap := appset.Snapshot{App: "a"}
			snap.Lifecycle.Timeouts = uint64(scrapes)
			snap.Proc = appset.ProcState{Known: true, Sampled: true, Timeout: 3 * time.Second}
			snap.Proc.State.Workers, snap.Proc.State.Busy = 2, 1
			return []appset.Snapshot{snap}
		},
		DB: func(ctx context.Context) (pgmon.SetSnapshot, error) {
			scrapes++
			if fail {
				return pgmon.SetSnapshot{}, errors.New("down")
			}
			_, ok := ctx.Deadline()
			require.True(t, ok, "the scrape is bounded")
			return pgmon.SetSnapshot{Targets: []pgmon.Snapshot{{Up: true, Blocked: scrapes}}}, nil
		},
		DBEvery: 3,
		Now:     func() time.Time { return now },
	})
	for i := range 7 {
		fail = i == 6
		f.Sample(context.Background())
		now = now.Add(2 * time.Second)
	}
	require.Equal(t, 3, scrapes, "samples 0, 3 and 6")
	pts := s.Window("a", time.Time{}, time.Time{})
	require.Len(t, pts, 7)
	var blocked []float64
	for _, p := range pts {
		blocked = append(blocked, p.DBBlocked)
		require.Equal(t, 2.0, p.Workers)
		require.Equal(t, 3.0, p.Timeout)
	}
	require.Equal(t, []float64{1, 1, 1, 2, 2, 2}, blocked[:6])
	require.True(t, math.IsNaN(blocked[6]), "a failed scrape is no numbers, not the old ones")
}
