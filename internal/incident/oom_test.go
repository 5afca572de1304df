package incident

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

var death = WorkerKill{App: "shop", PID: 4242, MasterPID: 4000, Time: time.Date(2026, 11, 24, 17, 50, 27, 0, time.UTC)}

// The question names the worker and its master and starts a minute before
// the death.
func TestQueryFor(t *testing.T) {
	require.Equal(t, OOMQuery{WorkerPID: 4242, MasterPID: 4000, Since: death.Time.Add(-time.Minute)}, QueryFor(death))
	noMaster := death
	noMaster.MasterPID = 0
	require.Zero(t, QueryFor(noMaster).MasterPID)
}

// The verdict, rule by rule.
func TestOOMVerdict(t *testing.T) {
	unreadable := errors.New("permission denied")
	for _, tc := range []struct {
		name       string
		confirmed  bool
		evidence   string
		err        error
		wantKind   string
		wantDetail string
	}{
		{"positive evidence confirms", true, "kernel: Killed process 4242", nil, timeline.KindOOMConfirmed, "kernel: Killed process 4242"},
		{"evidence read, no kill: suspected", false, "oom_kill 3 -> 3 in /system.slice/shop.service", nil, timeline.KindOOMSuspected, "oom_kill 3 -> 3 in /system.slice/shop.service"},
		{"nothing readable: suspected, says why", false, "", unreadable, timeline.KindOOMSuspected, "no OOM evidence readable: permission denied"},
		{"partial evidence with an error keeps the evidence", false, "host oom_kill rose", unreadable, timeline.KindOOMSuspected, "host oom_kill rose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := OOMVerdict(death, tc.confirmed, tc.evidence, tc.err)
			require.Equal(t, timeline.Event{Time: death.Time, App: "shop", Source: timeline.SourceProc, Kind: tc.wantKind, PID: 4242, Detail: tc.wantDetail}, ev)
		})
	}
}

// JudgeOOM asks the evidence the right question and appends what it says.
func TestJudgeOOMAppends(t *testing.T) {
	tl := timeline.New(8, 0)
	var asked OOMQuery
	ev := JudgeOOM(func(q OOMQuery) (bool, string, error) {
		asked = q
		return true, "kernel: Killed process 4242", nil
	}, tl, death)
	require.Equal(t, QueryFor(death), asked)
	require.Equal(t, timeline.KindOOMConfirmed, ev.Kind)
	got := tl.Select(timeline.Query{})
	require.Len(t, got, 1)
	require.Equal(t, timeline.KindOOMConfirmed, got[0].Kind)
	require.Equal(t, death.Time, got[0].Time, "stamped with the log time of the death, not the time of judging")
}
