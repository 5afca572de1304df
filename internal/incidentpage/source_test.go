package incidentpage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

func TestFromIncident(t *testing.T) {
	closed, changed := opened.Add(time.Minute), opened.Add(5*time.Second)
	got := FromIncident(incident.Incident{
		ID: "7", App: "shop", State: incident.StateClosed, OpenedAt: opened, ClosedAt: &closed,
		Cause: incident.CauseDatabaseLock, Confidence: 0.8, Summary: "s", Advice: "a",
		Evidence: []incident.Evidence{
			{Time: opened, Kind: timeline.KindWorkerTimeout, PID: 101, Detail: "WORKER TIMEOUT (pid:101)", Decisive: true},
			{Time: opened, Kind: timeline.KindWorkerStuck, PID: 102, Detail: "socket_read on 127.0.0.1:5432"},
			{Source: incident.SourceState, Kind: incident.FactAllBusy},
		},
		EvidenceDropped: 3,
		Decisions: []incident.Decision{
			{Time: opened, Action: "scale_up", Outcome: "refused", Refusal: "verdict_database_lock", Detail: "more workers would wait", Cause: incident.CauseDatabaseLock},
			{Time: opened, Action: "reload", Outcome: "performed"},
		},
		Causes: []incident.CauseSpan{
			{Cause: incident.CauseDatabaseSlowQuery, Confidence: 0.9, Summary: "q", From: opened, Until: &changed},
			{Cause: incident.CauseDatabaseLock, Confidence: 0.8, Summary: "s", From: changed, Until: &closed},
		},
		CausesDropped: 2,
	})
	require.Equal(t, "closed", got.State)
	require.Equal(t, closed, got.ClosedAt)
	require.Equal(t, "database_lock", got.Cause)
	require.Equal(t, "a", got.Action)
	require.Equal(t, []Evidence{
		{Time: opened, Kind: "worker_timeout", Text: "WORKER TIMEOUT (pid:101)", Decisive: true},
		{Time: opened, Kind: "worker_stuck", Text: "socket_read on 127.0.0.1:5432 (pid 102)"},
		{Kind: incident.FactAllBusy, Text: "state all_workers_busy"},
		{Kind: "note", Text: "3 more evidence item(s) left out by the cap (the decisive ones are all above)"},
	}, got.Evidence)
	require.Equal(t, "verdict_database_lock: more workers would wait", got.Decisions[0].Reason)
	require.Empty(t, got.Decisions[1].Reason)
	require.Equal(t, "database_lock", got.Decisions[0].Cause)
	require.Empty(t, got.Decisions[1].Cause)
	require.Equal(t, []CauseSpan{
		{Cause: "database_slow_query", Confidence: 0.9, Summary: "q", From: opened, Until: changed},
		{Cause: "database_lock", Confidence: 0.8, Summary: "s", From: changed, Until: closed},
	}, got.Causes)
	require.Equal(t, 2, got.CausesDropped)

	current := opened.Add(time.Second)
	open := FromIncident(incident.Incident{ID: "8", State: incident.StateOpen, OpenedAt: opened,
		Causes: []incident.CauseSpan{{Cause: incident.CauseUnknown, From: opened, Until: &current}, {Cause: incident.CauseCapacity, From: current}}})
	require.True(t, open.ClosedAt.IsZero())
	require.True(t, open.Causes[1].Until.IsZero(), "the open incident's current cause has no end")
}

func TestTimelineMarkers(t *testing.T) {
	tl := timeline.New(1000, 0)
	tl.Append(timeline.Event{Time: opened.Add(-time.Hour), App: "shop", Source: timeline.SourceDeploy, Kind: timeline.KindDeploy, Cause: "git_head"})
	tl.Append(timeline.Event{Time: opened.Add(-2 * time.Minute), App: "shop", Source: timeline.SourceDeploy, Kind: timeline.KindDeploy,
		Cause: "release_symlink", Attrs: map[string]string{"from": "releases/41", "to": "releases/42"}})
	tl.Append(timeline.Event{Time: opened.Add(-time.Minute), App: "shop", Source: timeline.SourceDeploy, Kind: timeline.KindDeploy,
		Cause: "api", Attrs: map[string]string{"version": "v1.2.3"}})
	tl.Append(timeline.Event{Time: opened.Add(-50 * time.Second), App: "other", Source: timeline.SourceErrorLog, Kind: timeline.KindMasterReload})
	tl.Append(timeline.Event{Time: opened.Add(-40 * time.Second), App: "shop", Source: timeline.SourceErrorLog, Kind: timeline.KindMasterReload})
	tl.Append(timeline.Event{Time: opened.Add(-30 * time.Second), App: "shop", Source: timeline.SourceErrorLog, Kind: timeline.KindWorkerTimeout})
	for i := range 200 {
		tl.Append(timeline.Event{Time: opened.Add(time.Duration(i) * time.Millisecond), App: "loop", Source: timeline.SourceErrorLog, Kind: timeline.KindMasterStart})
	}

	markers := TimelineMarkers(tl)
	got := markers("shop", opened.Add(-5*time.Minute), opened)
	require.Equal(t, []Marker{
		{Time: opened.Add(-2 * time.Minute), Kind: MarkerDeploy, Label: "deploy (release_symlink) releases/41 -> releases/42"},
		{Time: opened.Add(-time.Minute), Kind: MarkerDeploy, Label: "deploy (api) v1.2.3"},
		{Time: opened.Add(-40 * time.Second), Kind: MarkerDeploy, Label: "HUP reload"},
	}, got)
	require.Len(t, markers("loop", opened.Add(-time.Minute), opened.Add(time.Minute)), MaxMarkers, "a master restarting in a loop draws at most MaxMarkers")
}
