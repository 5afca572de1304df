package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// clock is a settable clock for the engine and the timeline.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: since} }

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
	for _, k := range []string{"id", "app", "state", "opened_at", "closed_at", "cause", "confidence", "summary", "evidence", "decisions", "causes"} {
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

// The text form names the verdict, the advice, the decisive evidence
// and the decisions, one per line.
func TestWriteText(t *testing.T) {
	closed := since.Add(3 * time.Minute)
	inc := Incident{ID: "4", App: "shop", State: StateClosed, OpenedAt: since, ClosedAt: &closed, Trigger: TriggerTimeout,
		Cause: CauseDatabaseLock, Confidence: 0.9, Summary: "Workers wait on a lock.", Advice: "End pid 555.",
		Evidence: []Evidence{
			{Time: since, Source: "errorlog", Kind: "worker_timeout", PID: 10, Detail: "WORKER TIMEOUT\n(pid:10)"},
			{Time: since.Add(time.Second), Source: "postgres", Kind: "worker_waits_on_backend", PID: 11, Detail: "waits on 778", Decisive: true},
		},
		EvidenceDropped: 2,
		Decisions:       []Decision{{Time: since.Add(2 * time.Second), Action: "scale_up", Outcome: "refused", Refusal: "verdict_database_lock", Detail: "no"}},
	}
	var b strings.Builder
	require.NoError(t, WriteText(&b, inc))
	require.Equal(t, `Incident 4 of shop: closed, 2026-11-24T17:50:00Z to 2026-11-24T17:53:00Z (opened by worker_timeout)
Verdict: database_lock (confidence 0.90)
  Workers wait on a lock.
What to do: End pid 555.
Evidence (2, 2 more left out; * decided the verdict):
    17:50:00 errorlog/worker_timeout pid 10: WORKER TIMEOUT (pid:10)
  * 17:50:01 postgres/worker_waits_on_backend pid 11: waits on 778
Remediation decisions (1):
    17:50:02 scale_up refused (verdict_database_lock): no
`, b.String())
}

// snapshots is a settable EngineOptions.Snapshot.
type snapshots map[string]Snapshot

func (s snapshots) get(app string) (Snapshot, bool) { v, ok := s[app]; return v, ok }

// Each opening trigger, and what does not open an incident.
func TestEngineTriggers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		events  []timeline.Event
		snaps   []Snapshot // one per step
		trigger string     // "" none
	}{
		{"worker timeout", []timeline.Event{{Kind: timeline.KindWorkerTimeout}}, nil, TriggerTimeout},
		{"oom kill", []timeline.Event{{Kind: timeline.KindOOMConfirmed, Source: timeline.SourceProc}}, nil, TriggerOOM},
		{"stuck past 0.8", []timeline.Event{{Kind: timeline.KindWorkerStuck, Attrs: map[string]string{"heartbeat_age_seconds": "2.500", "timeout_seconds": "3"}}}, nil, TriggerPast80},
		{"stuck below 0.8", []timeline.Event{{Kind: timeline.KindWorkerStuck, Attrs: map[string]string{"heartbeat_age_seconds": "2.000", "timeout_seconds": "3"}}}, nil, ""},
		{"alert", []timeline.Event{{Kind: timeline.KindRemediationDeclined, Source: timeline.SourceReceiver, Cause: "refused", Attrs: map[string]string{"action": "scale_up"}}}, nil, TriggerAlert},
		{"ignored alert", []timeline.Event{{Kind: timeline.KindRemediationDeclined, Source: timeline.SourceReceiver, Cause: "ignored"}}, nil, ""},
		{"reconciliation", []timeline.Event{{Kind: timeline.KindRemediationActed, Source: timeline.SourceReceiver, Cause: "acted", Attrs: map[string]string{"reconcile": "true"}}}, nil, ""},
		{"reload alone", []timeline.Event{{Kind: timeline.KindMasterReload}}, nil, ""},
		{"sample past 0.8", nil, []Snapshot{{Sampled: true, Workers: 3, Past80Timeout: 1}}, TriggerPast80},
		{"backlog two steps", nil, []Snapshot{
			{Sampled: true, Workers: 3, Busy: 3, BacklogKnown: true, BacklogQueued: 2},
			{Sampled: true, Workers: 3, Busy: 3, BacklogKnown: true, BacklogQueued: 2}}, TriggerBacklog},
		{"backlog one step only", nil, []Snapshot{
			{Sampled: true, Workers: 3, Busy: 3, BacklogKnown: true, BacklogQueued: 2},
			{Sampled: true, Workers: 3, Busy: 2, BacklogKnown: true, BacklogQueued: 2},
			{Sampled: true, Workers: 3, Busy: 3, BacklogKnown: true, BacklogQueued: 2}}, ""},
		{"backlog below half the workers", nil, []Snapshot{
			{Sampled: true, Workers: 4, Busy: 4, BacklogKnown: true, BacklogQueued: 1},
			{Sampled: true, Workers: 4, Busy: 4, BacklogKnown: true, BacklogQueued: 1}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			tl := timeline.New(64, 0)
			snaps := snapshots{}
			e := NewEngine(EngineOptions{Timeline: tl, Now: c.now, Apps: func() []string { return []string{"shop"} }, Snapshot: snaps.get})
			for _, ev := range tc.events {
				ev.App, ev.Time = "shop", c.t
				tl.Append(ev)
			}
			steps := max(1, len(tc.snaps))
			for i := range steps {
				if i < len(tc.snaps) {
					snaps["shop"] = tc.snaps[i]
				}
				e.Step(context.Background())
				c.add(2 * time.Second)
			}
			l := e.List(Filter{})
			if tc.trigger == "" {
				require.Empty(t, l)
				return
			}
			require.Len(t, l, 1)
			require.Equal(t, tc.trigger, l[0].Trigger)
		})
	}
}

// The evidence window starts Lookback before the opening; events after
// the opening are added; a stuck worker in the sample keeps the incident
// open past the quiet period; receiver decisions are kept as decisions.
func TestEngineWindowAndQuiet(t *testing.T) {
	c := newClock()
	tl := timeline.New(256, 0)
	snaps := snapshots{"shop": {Sampled: true, Workers: 2}}
	e := NewEngine(EngineOptions{Timeline: tl, Now: c.now, Snapshot: snaps.get, Apps: func() []string { return []string{"shop"} },
		Lookback: time.Minute, QuietPeriod: time.Minute})
	add := func(ev timeline.Event) {
		ev.App, ev.Time = "shop", c.t
		tl.Append(ev)
	}
	add(timeline.Event{Kind: timeline.KindMasterReload, Detail: "too old"})
	c.add(2 * time.Minute)
	add(timeline.Event{Kind: "deploy_release", Source: "deploy", Detail: "release r2"})
	add(timeline.Event{Kind: timeline.KindWorkerBoot})
	c.add(10 * time.Second)
	add(timeline.Event{Kind: timeline.KindWorkerTimeout, PID: 7})
	add(timeline.Event{Kind: timeline.KindRemediationDeclined, Source: timeline.SourceReceiver, Cause: "refused",
		Attrs: map[string]string{"action": "scale_up", "refusal": "verdict_deploy_regression"}, Detail: "refused"})
	e.Step(context.Background())
	inc, ok := e.Latest("shop")
	require.True(t, ok)
	require.Equal(t, CauseDeployRegression, inc.Cause, inc.Summary)
	require.Contains(t, inc.Summary, "release r2")
	var details []string
	for _, ev := range inc.Evidence {
		details = append(details, ev.Kind)
	}
	require.NotContains(t, details, timeline.KindMasterReload, "before the lookback")
	require.NotContains(t, details, timeline.KindWorkerBoot)
	require.Equal(t, []Decision{{Time: c.t, Seq: 5, Kind: timeline.KindRemediationDeclined, Action: "scale_up", Outcome: "refused",
		Refusal: "verdict_deploy_regression", Detail: "refused", Cause: CauseDeployRegression}}, inc.Decisions)

	snaps["shop"] = Snapshot{Sampled: true, Workers: 2, Stuck: 1}
	c.add(50 * time.Second)
	e.Step(context.Background())
	c.add(50 * time.Second)
	e.Step(context.Background())
	require.True(t, must(e.Latest("shop")).Open(), "a stuck worker is activity")
	snaps["shop"] = Snapshot{Sampled: true, Workers: 2}
	c.add(59 * time.Second)
	e.Step(context.Background())
	require.True(t, must(e.Latest("shop")).Open())
	c.add(time.Second)
	e.Step(context.Background())
	require.False(t, must(e.Latest("shop")).Open())

	// A new timeout after closing is a new incident.
	add(timeline.Event{Kind: timeline.KindWorkerTimeout, PID: 8})
	e.Step(context.Background())
	l := e.List(Filter{})
	require.Len(t, l, 2)
	require.Equal(t, StateOpen, l[0].State)
	require.Len(t, e.List(Filter{State: StateClosed}), 1)
	require.Len(t, e.List(Filter{Limit: 1}), 1)
}

func must(i Incident, ok bool) Incident {
	if !ok {
		panic("no incident")
	}
	return i
}

// A noisy host: incidents, events per incident, evidence and decisions
// are all capped, and the verdict's decisive evidence survives the cap.
func TestEngineBounded(t *testing.T) {
	c := newClock()
	tl := timeline.New(100000, 0)
	e := NewEngine(EngineOptions{Timeline: tl, Now: c.now, QuietPeriod: time.Second,
		MaxIncidents: 5, MaxEvidence: 10, MaxDecisions: 3, MaxEvents: 40})
	for i := range 20 {
		app := fmt.Sprintf("app%d", i)
		tl.Append(timeline.Event{App: app, Time: c.t, Kind: timeline.KindWorkerTimeout})
		e.Step(context.Background())
		c.add(2 * time.Second)
		e.Step(context.Background())
	}
	require.Len(t, e.List(Filter{}), 5)
	require.Equal(t, uint64(15), e.Stats().Evicted)

	tl.Append(timeline.Event{App: "noisy", Time: c.t, Kind: timeline.KindWorkerTimeout})
	for i := range 1000 {
		tl.Append(timeline.Event{App: "noisy", Time: c.t, Kind: timeline.KindWorkerTimeout, PID: i})
		tl.Append(timeline.Event{App: "noisy", Time: c.t, Kind: timeline.KindWorkerExit, PID: i})
		tl.Append(timeline.Event{App: "noisy", Time: c.t, Kind: timeline.KindRemediationDeclined, Source: timeline.SourceReceiver, Cause: "cooling_down"})
	}
	tl.Append(timeline.Event{App: "noisy", Time: c.t, Kind: timeline.KindWorkerStuck, PID: 5000,
		Attrs: map[string]string{"kind": "socket_read", "peer": "127.0.0.1:9999"}})
	e.Step(context.Background())
	inc := must(e.Latest("noisy"))
	require.Equal(t, CauseExternalCall, inc.Cause, "the one stuck event is kept despite 2000 others")
	require.Len(t, inc.Evidence, 10)
	require.Greater(t, inc.EvidenceDropped, 1900)
	require.Len(t, inc.Decisions, 3)
	require.Equal(t, 997, inc.DecisionsDropped)
	var decisive bool
	for _, ev := range inc.Evidence {
		decisive = decisive || (ev.Decisive && ev.PID == 5000)
	}
	require.True(t, decisive)
	require.LessOrEqual(t, len(e.open["noisy"].events), 40)
}

// fixedGuard is a fallback guard with a fixed answer that records calls.
type fixedGuard struct {
	r     intent.Refusal
	calls *int
}

func (g fixedGuard) Check(context.Context, string, intent.Action) (intent.Refusal, string) {
	*g.calls++
	return g.r, "fallback"
}

// The guard follows the verdict: refused for the database verdicts,
// memory_oom, deploy_regression and cpu_bound on a saturated host, each
// named; capacity, external_call, unknown and cpu_bound with CPU to spare
// go to the fallback's headroom checks; other actions always do.
func TestEngineGuard(t *testing.T) {
	lock := map[string]string{"backend_pid": "1", "wait_event_type": "Lock", "blocked": "true"}
	for _, tc := range []struct {
		name     string
		events   []timeline.Event
		cpuBusy  bool // the host's cores saturated between the two steps
		action   intent.Action
		want     intent.Refusal
		fallback bool
	}{
		{"no incident", nil, false, intent.ScaleUp, "", true},
		{"lock", []timeline.Event{{Kind: timeline.KindWorkerTimeout}, {Kind: timeline.KindWorkerWaitsOnBackend, Attrs: lock}}, false, intent.ScaleUp, intent.RefuseVerdictDatabaseLock, false},
		{"lock, reload asked", []timeline.Event{{Kind: timeline.KindWorkerTimeout}, {Kind: timeline.KindWorkerWaitsOnBackend, Attrs: lock}}, false, intent.Reload, "", true},
		{"slow query", []timeline.Event{{Kind: timeline.KindWorkerWaitsOnBackend, Attrs: map[string]string{"state": "active"}}, {Kind: timeline.KindWorkerTimeout}}, false, intent.ScaleUp, intent.RefuseVerdictDatabaseSlowQuery, false},
		{"oom", []timeline.Event{{Kind: timeline.KindOOMConfirmed}}, false, intent.ScaleUp, intent.RefuseVerdictMemoryOOM, false},
		{"deploy", []timeline.Event{{Kind: "deploy_release", Source: "deploy"}, {Kind: timeline.KindWorkerTimeout}}, false, intent.ScaleUp, intent.RefuseVerdictDeployRegression, false},
		{"cpu, saturated", []timeline.Event{{Kind: timeline.KindWorkerTimeout}, {Kind: timeline.KindWorkerStuck, Attrs: map[string]string{"kind": "cpu"}}}, true, intent.ScaleUp, intent.RefuseVerdictCPUBound, false},
		{"cpu, spare", []timeline.Event{{Kind: timeline.KindWorkerTimeout}, {Kind: timeline.KindWorkerStuck, Attrs: map[string]string{"kind": "cpu"}}}, false, intent.ScaleUp, "", true},
		{"external", []timeline.Event{{Kind: timeline.KindWorkerTimeout}, {Kind: timeline.KindWorkerStuck, Attrs: map[string]string{"kind": "socket_read", "peer": "10.1.1.1:443"}}}, false, intent.ScaleUp, "", true},
		{"unknown", []timeline.Event{{Kind: timeline.KindWorkerTimeout}}, false, intent.ScaleUp, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			tl := timeline.New(64, 0)
			stat := "cpu 100 0 100 800 0 0 0 0 0 0\n"
			calls := 0
			e := NewEngine(EngineOptions{Timeline: tl, Now: c.now, Fallback: fixedGuard{calls: &calls},
				ReadProc: func(string) ([]byte, error) { return []byte(stat), nil }})
			e.Step(context.Background())
			if tc.cpuBusy {
				stat = "cpu 1090 0 100 810 0 0 0 0 0 0\n"
			} else {
				stat = "cpu 110 0 100 1790 0 0 0 0 0 0\n"
			}
			for _, ev := range tc.events {
				ev.App, ev.Time = "shop", c.t
				tl.Append(ev)
			}
			r, evidence := e.Check(context.Background(), "shop", tc.action)
			require.Equal(t, tc.want, r)
			require.Equal(t, tc.fallback, calls == 1)
			if r != "" {
				require.Contains(t, evidence, "incident 1: ")
				require.Contains(t, evidence, strings.TrimPrefix(string(r), "verdict_"))
			}
			r2, _ := e.Guard(nil).Check(context.Background(), "shop", tc.action)
			require.Equal(t, tc.want, r2, "Guard(nil) refuses the same and has no fallback")
		})
	}
}
