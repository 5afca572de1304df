package incident

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// clock is a settable clock for the engine and the timeline.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: since} }
func ev(kind string, attrs map[string]string) timeline.Event {
	return timeline.Event{App: "shop", Source: timeline.SourceErrorLog, Kind: kind, Attrs: attrs}
}

// A timeout opens an incident; a backend link names the slow query; the
// quiet period closes it and counts it under its final cause.
func TestEngineOpensJudgesCloses(t *testing.T) {
	c := newClock()
	tl := timeline.New(64, 0)
	tl.SetClock(c.now)
	e := NewEngine(EngineOptions{Timeline: tl, Now: c.now, QuietPeriod: time.Minute})

	tl.Append(timeline.Event{App: "shop", Source: timeline.SourceErrorLog, Kind: timeline.KindWorkerBoot, PID: 10})
	e.Step(context.Background())
	require.Empty(t, e.List(Filter{}), "a boot opens nothing")

	c.add(time.Second)
	tl.Append(timeline.Event{App: "shop", Source: timeline.SourceErrorLog, Kind: timeline.KindWorkerTimeout, PID: 10, Time: c.t})
	tl.Append(timeline.Event{App: "shop", Source: timeline.SourcePostgres, Kind: timeline.KindWorkerWaitsOnBackend, PID: 11, Time: c.t,
		Attrs: map[string]string{"backend_pid": "777", "state": "active", "query_age_seconds": "4.0", "query": "SELECT pg_sleep(?)"}})
	e.Step(context.Background())
	l := e.List(Filter{})
	require.Len(t, l, 1)
	inc := l[0]
	require.Equal(t, StateOpen, inc.State)
	require.Equal(t, TriggerTimeout, inc.Trigger)
	require.Equal(t, CauseDatabaseSlowQuery, inc.Cause)
	require.Nil(t, inc.ClosedAt)
	require.Len(t, inc.Evidence, 2)

	b, err := json.Marshal(inc)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"id", "app", "state", "opened_at", "closed_at", "cause", "confidence", "summary", "evidence", "decisions"} {
		require.Contains(t, m, k)
	}

	c.add(time.Minute)
	e.Step(context.Background())
	inc, ok := e.Get(inc.ID)
	require.True(t, ok)
	require.Equal(t, StateClosed, inc.State)
	require.Equal(t, c.t, *inc.ClosedAt)
	require.Equal(t, uint64(1), e.Stats().Closed["shop"][CauseDatabaseSlowQuery])
}
