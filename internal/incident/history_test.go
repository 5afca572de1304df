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
)

// historyRig is an engine over a real timeline, stepped by hand every 2 s
// of a settable clock.
type historyRig struct {
	c  *clock
	tl *timeline.Timeline
	e  *Engine
}

func newHistoryRig(opts EngineOptions) *historyRig {
	c := newClock()
	tl := timeline.New(4096, 0)
	tl.SetClock(c.now)
	opts.Timeline, opts.Now = tl, c.now
	return &historyRig{c: c, tl: tl, e: NewEngine(opts)}
}

func (h *historyRig) add(ev timeline.Event) {
	ev.App, ev.Time = "shop", h.c.t
	h.tl.Append(ev)
}

// step steps the engine at the clock's time, then moves the clock on by
// the engine's default interval.
func (h *historyRig) step() {
	h.e.Step(context.Background())
	h.c.add(2 * time.Second)
}

func (h *historyRig) latest(t *testing.T) Incident {
	t.Helper()
	inc, ok := h.e.Latest("shop")
	require.True(t, ok, "an incident")
	return inc
}

func stuckOn(pid int, kind, peer string) timeline.Event {
	attrs := map[string]string{"kind": kind}
	if peer != "" {
		attrs["peer"] = peer
	}
	return timeline.Event{Source: timeline.SourceProc, Kind: timeline.KindWorkerStuck, PID: pid, Attrs: attrs}
}

func decision(outcome, refusal string) timeline.Event {
	kind := timeline.KindRemediationActed
	attrs := map[string]string{"action": "scale_up"}
	if refusal != "" {
		kind, attrs["refusal"] = timeline.KindRemediationDeclined, refusal
	}
	return timeline.Event{Source: timeline.SourceReceiver, Kind: kind, Cause: outcome, Attrs: attrs}
}

func causesOf(inc Incident) []Cause {
	out := make([]Cause, 0, len(inc.Causes))
	for _, c := range inc.Causes {
		out = append(out, c.Cause)
	}
	return out
}

// Two faults back to back on one app with no quiet period between them
// (the demo's): workers hang on an external service (external_call; the
// receiver scales up), then on a slow PostgreSQL query
// (database_slow_query; the receiver refuses). It stays one incident whose
// current verdict is the second, and whose history keeps the first with
// its span, confidence and summary; each decision names the cause it was
// taken under.
func TestEngineKeepsVerdictHistory(t *testing.T) {
	h := newHistoryRig(EngineOptions{QuietPeriod: time.Minute})
	opened := h.c.t
	h.add(stuckOn(10, "socket_read", "127.0.0.1:9999"))
	h.add(timeline.Event{Source: timeline.SourceErrorLog, Kind: timeline.KindWorkerTimeout, PID: 10})
	h.step()
	require.Equal(t, CauseExternalCall, h.latest(t).Cause)
	h.add(decision("acted", ""))
	h.step()
	h.step()

	changed := h.c.t
	h.add(stuckOn(11, "socket_read", "127.0.0.1:5432"))
	h.add(timeline.Event{Source: timeline.SourcePostgres, Kind: timeline.KindWorkerWaitsOnBackend, PID: 11,
		Attrs: map[string]string{"backend_pid": "777", "state": "active", "query_age_seconds": "4.0", "query": "SELECT pg_sleep(?)"}})
	h.add(timeline.Event{Source: timeline.SourceErrorLog, Kind: timeline.KindWorkerTimeout, PID: 11})
	h.step()
	h.add(decision("refused", "verdict_database_slow_query"))
	for i := 0; h.latest(t).Open(); i++ {
		require.Less(t, i, 100, "the quiet period closes it")
		h.step()
	}

	inc := h.latest(t)
	require.Len(t, h.e.List(Filter{}), 1, "one incident")
	require.Equal(t, CauseDatabaseSlowQuery, inc.Cause, "the current verdict is the latest")
	require.Equal(t, []Cause{CauseExternalCall, CauseDatabaseSlowQuery}, causesOf(inc))
	first, second := inc.Causes[0], inc.Causes[1]
	require.Equal(t, opened, first.From, "the first cause spans from the opening")
	require.NotNil(t, first.Until)
	require.Equal(t, changed, *first.Until)
	require.Equal(t, 0.8, first.Confidence)
	require.Contains(t, first.Summary, "127.0.0.1:9999")
	require.Equal(t, changed, second.From)
	require.Equal(t, *inc.ClosedAt, *second.Until, "the last cause ends when the incident closes")
	require.Equal(t, inc.Confidence, second.Confidence)
	require.Equal(t, inc.Summary, second.Summary)
	require.Contains(t, second.Summary, "backend 777")
	require.Zero(t, inc.CausesDropped)

	require.Len(t, inc.Decisions, 2)
	require.Equal(t, "acted", inc.Decisions[0].Outcome)
	require.Equal(t, CauseExternalCall, inc.Decisions[0].Cause, "the scale-up was taken under external_call")
	require.Equal(t, "refused", inc.Decisions[1].Outcome)
	require.Equal(t, CauseDatabaseSlowQuery, inc.Decisions[1].Cause)
	require.Equal(t, uint64(1), h.e.Stats().Closed["shop"][CauseDatabaseSlowQuery], "counted once, under its final cause")
}

// A verdict trading places between two judgments as evidence trickles in
// (rules 6 to 8: each new stuck event tips the majority between cpu and
// socket_read) does not make a long history: a cause that gives way back
// to the one before it within HoldSteps steps is folded into it. A cause
// that held for HoldSteps steps, or that a receiver decision was taken
// under, is a change and is kept.
func TestEngineVerdictHistoryDoesNotFlap(t *testing.T) {
	h := newHistoryRig(EngineOptions{})
	opened := h.c.t
	h.add(timeline.Event{Kind: timeline.KindWorkerTimeout, PID: 1})
	h.add(stuckOn(100, "socket_read", "127.0.0.1:9999"))
	h.step()
	h.step()
	h.step()
	judged := map[Cause]bool{}
	for i := range 10 {
		h.add(stuckOn(200+i, "cpu", "")) // a tie: cpu_bound comes before external_call
		h.step()
		judged[h.latest(t).Cause] = true
		require.LessOrEqual(t, len(h.latest(t).Causes), 2, "flap %d", i)
		h.add(stuckOn(300+i, "socket_read", "127.0.0.1:9999"))
		h.step()
		judged[h.latest(t).Cause] = true
	}
	require.True(t, judged[CauseCPUBound] && judged[CauseExternalCall], "the verdict did flap: %v", judged)
	inc := h.latest(t)
	require.Equal(t, []Cause{CauseExternalCall}, causesOf(inc), "twenty flips, no change that held")
	require.Equal(t, opened, inc.Causes[0].From)
	require.Nil(t, inc.Causes[0].Until, "current again")

	// cpu_bound takes the majority and holds for three steps: a change.
	h.add(stuckOn(400, "cpu", ""))
	h.add(stuckOn(401, "cpu", ""))
	h.step()
	h.step()
	h.step()
	h.add(stuckOn(500, "socket_read", "127.0.0.1:9999"))
	h.add(stuckOn(501, "socket_read", "127.0.0.1:9999"))
	h.step()
	require.Equal(t, []Cause{CauseExternalCall, CauseCPUBound, CauseExternalCall}, causesOf(h.latest(t)))
	h.step()
	h.step()

	// cpu_bound for one step only, but the receiver decided under it: kept,
	// so the decision's cause is in the history.
	h.add(stuckOn(600, "cpu", ""))
	h.add(stuckOn(601, "cpu", ""))
	h.step()
	h.add(decision("acted", ""))
	h.add(stuckOn(700, "socket_read", "127.0.0.1:9999"))
	h.add(stuckOn(701, "socket_read", "127.0.0.1:9999"))
	h.step()
	inc = h.latest(t)
	require.Equal(t, []Cause{CauseExternalCall, CauseCPUBound, CauseExternalCall, CauseCPUBound, CauseExternalCall}, causesOf(inc))
	require.Equal(t, CauseCPUBound, inc.Decisions[len(inc.Decisions)-1].Cause)
	for i := 1; i < len(inc.Causes); i++ {
		require.Equal(t, inc.Causes[i].From, *inc.Causes[i-1].Until, "entry %d starts where %d ends", i, i-1)
	}
}

// However often the verdict really changes, the history is bounded: the
// opening verdict and the newest are kept, and the ones in between that
// the cap left out are counted.
func TestEngineVerdictHistoryBounded(t *testing.T) {
	h := newHistoryRig(EngineOptions{MaxCauses: 4})
	opened := h.c.t
	h.add(timeline.Event{Kind: timeline.KindWorkerTimeout, PID: 1})
	h.add(stuckOn(100, "socket_read", "127.0.0.1:9999"))
	pid := 1000
	kinds := []string{"cpu", "socket_read"}
	const changes = 20
	var changedAt []time.Time
	for i := range changes + 1 {
		if i > 0 {
			changedAt = append(changedAt, h.c.t)
			// Two of the other kind take the majority back.
			for range 2 {
				pid++
				h.add(stuckOn(pid, kinds[(i-1)%2], "127.0.0.1:9999"))
			}
		}
		h.step()
		h.step()
		h.step()
	}
	inc := h.latest(t)
	require.Len(t, inc.Causes, 4)
	require.Equal(t, changes+1-4, inc.CausesDropped)
	require.Equal(t, CauseExternalCall, inc.Causes[0].Cause, "the opening verdict is kept")
	require.Equal(t, opened, inc.Causes[0].From)
	require.Equal(t, changedAt[0], *inc.Causes[0].Until)
	require.Equal(t, inc.Cause, inc.Causes[3].Cause, "the last is the current verdict")
	require.Nil(t, inc.Causes[3].Until)
	require.Equal(t, changedAt[changes-1], inc.Causes[3].From)
	require.Equal(t, changedAt[changes-3], inc.Causes[1].From, "the newest are kept")

	// The copy handed out is the caller's.
	inc.Causes[0].Cause = CauseUnknown
	require.Equal(t, CauseExternalCall, h.latest(t).Causes[0].Cause)
}

// The history and the decisions' causes are part of the incident's JSON
// (GET /api/v1/incidents): from and until as RFC 3339, until null for the
// current cause of an open incident.
func TestIncidentJSONHasCauses(t *testing.T) {
	until := since.Add(7 * time.Second)
	inc := Incident{ID: "1", App: "shop", State: StateOpen, OpenedAt: since, Cause: CauseDatabaseSlowQuery, Confidence: 0.9,
		Summary: "slow", Trigger: TriggerTimeout, Evidence: []Evidence{},
		Decisions: []Decision{{Time: since.Add(2 * time.Second), Seq: 3, Kind: timeline.KindRemediationActed, Action: "scale_up", Outcome: "acted", Cause: CauseExternalCall}},
		Causes: []CauseSpan{
			{Cause: CauseExternalCall, Confidence: 0.8, Summary: "external", From: since, Until: &until},
			{Cause: CauseDatabaseSlowQuery, Confidence: 0.9, Summary: "slow", From: until},
		},
		CausesDropped: 2,
	}
	b, err := json.Marshal(inc)
	require.NoError(t, err)
	require.JSONEq(t, fmt.Sprintf(`{"id":"1","app":"shop","state":"open","opened_at":"2026-11-24T17:50:00Z","closed_at":null,
	  "cause":"database_slow_query","confidence":0.9,"summary":"slow","advice":"","trigger":"worker_timeout","evidence":[],
	  "decisions":[{"time":"2026-11-24T17:50:02Z","seq":3,"kind":%q,"action":"scale_up","outcome":"acted","cause":"external_call"}],
	  "causes":[
	    {"cause":"external_call","confidence":0.8,"summary":"external","from":"2026-11-24T17:50:00Z","until":"2026-11-24T17:50:07Z"},
	    {"cause":"database_slow_query","confidence":0.9,"summary":"slow","from":"2026-11-24T17:50:07Z","until":null}],
	  "causes_dropped":2}`, timeline.KindRemediationActed), string(b))
	var back Incident
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, inc, back, "explain decodes what the API encodes")
}

// The text form says since when the current verdict holds, gives a
// "before:" line per earlier cause with its span and confidence, and names
// the cause each decision was taken under.
func TestWriteTextHistory(t *testing.T) {
	closed := since.Add(3 * time.Minute)
	t1, t2, t3 := since.Add(2*time.Second), since.Add(9*time.Second), since.Add(20*time.Second)
	inc := Incident{ID: "1", App: "shop", State: StateClosed, OpenedAt: since, ClosedAt: &closed, Trigger: TriggerAlert,
		Cause: CauseDatabaseSlowQuery, Confidence: 0.9, Summary: "Workers of shop wait on PostgreSQL backend 777.", Advice: "Make the query faster.",
		Causes: []CauseSpan{
			{Cause: CauseUnknown, Summary: "No rule explains the trouble of shop.", From: since, Until: &t1},
			{Cause: CauseExternalCall, Confidence: 0.8, Summary: "1 stuck worker(s) of shop wait on a socket to\n127.0.0.1:9999.", From: t2, Until: &t3},
			{Cause: CauseDatabaseSlowQuery, Confidence: 0.9, Summary: "Workers of shop wait on PostgreSQL backend 777.", From: t3, Until: &closed},
		},
		CausesDropped: 1,
		Decisions: []Decision{
			{Time: since.Add(12 * time.Second), Action: "scale_up", Outcome: "acted", Cause: CauseExternalCall},
			{Time: since.Add(25 * time.Second), Action: "scale_up", Outcome: "refused", Refusal: "verdict_database_slow_query",
				Detail: "incident 1: database_slow_query", Cause: CauseDatabaseSlowQuery},
		},
	}
	var b strings.Builder
	require.NoError(t, WriteText(&b, inc))
	require.Equal(t, `Incident 1 of shop: closed, 2026-11-24T17:50:00Z to 2026-11-24T17:53:00Z (opened by alert)
Verdict: database_slow_query (confidence 0.90), since 17:50:20
  Workers of shop wait on PostgreSQL backend 777.
  before: unknown 17:50:00–17:50:02 (0.00): No rule explains the trouble of shop.
  before: 1 more cause(s) left out by the cap
  before: external_call 17:50:09–17:50:20 (0.80): 1 stuck worker(s) of shop wait on a socket to 127.0.0.1:9999.
What to do: Make the query faster.
Evidence (0; * decided the verdict):
Remediation decisions (2):
    17:50:12 scale_up acted under external_call
    17:50:25 scale_up refused under database_slow_query (verdict_database_slow_query): incident 1: database_slow_query
`, b.String())
}
