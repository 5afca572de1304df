package appset

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// A worker death by SIGKILL without a timeout reaches the incident
// package's OOM judge through the pipeline: one verdict on the timeline
// (source proc, stamped with the log time) and one in the app's counts.
func TestSIGKILLIsJudgedAsEvidence(t *testing.T) {
	dir := t.TempDir()
	tl := timeline.New(64, 0)
	m := New(promslog.NewNopLogger(), tl)
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	m.EnableProc(fs)
	ctx, cancel := context.WithCancel(context.Background())
	m.Start(ctx)
	t.Cleanup(func() { cancel(); m.Wait() })
	log := filepath.Join(dir, "k.log")
	require.NoError(t, os.WriteFile(log, nil, 0o644))
	m.Apply(parse(t, appsYAML(dir, "k")))
	require.Eventually(t, func() bool { return snapshotOf(m, "k").ErrorLog.Open }, 5*time.Second, 10*time.Millisecond)
	f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("[2026-11-24 17:50:23 +0000] [20865] [ERROR] Worker (pid:21834) was sent SIGKILL! Perhaps out of memory?\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	verdicts := func() []timeline.Event {
		return tl.Select(timeline.Query{App: "k", Kinds: []string{timeline.KindOOMConfirmed, timeline.KindOOMSuspected}})
	}
	require.Eventually(t, func() bool { return len(verdicts()) == 1 }, 10*time.Second, 20*time.Millisecond)
	ev := verdicts()[0]
	require.Equal(t, timeline.SourceProc, ev.Source)
	require.Equal(t, 21834, ev.PID)
	require.Equal(t, time.Date(2026, 11, 24, 17, 50, 23, 0, time.UTC), ev.Time.UTC())
	p := snapshotOf(m, "k").Proc
	require.Equal(t, uint64(1), p.OOMConfirmed+p.OOMSuspected)
}
