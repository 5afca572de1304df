package appset

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// TestLookupOnRealGunicorn: the receiver's view of a real app configured
// by pidfile: its verified master, its live worker count, fresh data, and
// the time of the last HUP once the log shows one; an app this host does
// not follow is not known. It runs untitled (no setproctitle) so that
// the master's -w 2 is visible in its argv: a titled master's workers
// setting is known only from its config file or control socket.
func TestLookupOnRealGunicorn(t *testing.T) {
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 2, NoSetproctitle: true})
	tl := timeline.New(256, 0)
	m := New(promslog.NewNopLogger(), tl)
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	m.EnableProc(fs)
	ctx, cancel := context.WithCancel(context.Background())
	m.Start(ctx)
	cfg := parse(t, fmt.Sprintf("logs:\n  poll_interval: 20ms\ndiscovery:\n  interval: 1s\napps:\n  - name: web\n    error_log: %s\n    pidfile: %s\n",
		g.ErrorLog, g.Pidfile))
	m.Apply(cfg)
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); m.RunDiscovery(ctx, cfg, ready) }()
	t.Cleanup(func() { cancel(); <-done; m.Wait() })
	<-ready

	var h intent.Host = m
	_, ok := h.Lookup("other")
	require.False(t, ok)

	var v intent.AppView
	require.Eventually(t, func() bool {
		v, ok = h.Lookup("web")
		return ok && v.DataFresh && v.Workers == 2
	}, 20*time.Second, 20*time.Millisecond, "view: %+v", v)
	require.Equal(t, g.MasterPID(), v.Master.PID)
	require.NoError(t, fs.Verify(v.Master))
	require.False(t, v.SampledAt.IsZero())
	require.True(t, v.LastReload.IsZero(), "no HUP yet")
	require.Equal(t, 2, v.ConfiguredWorkers, "the -w 2 a HUP resets the count to")

	ga, ok := m.GuardApp("web")
	require.True(t, ok)
	require.True(t, ga.DataFresh)
	require.NotZero(t, ga.WorkerRSSMax, "one worker's RSS is what one more needs")
	require.Empty(t, ga.StuckOnDatabase)

	require.NoError(t, g.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		v, _ = h.Lookup("web")
		return !v.LastReload.IsZero()
	}, 20*time.Second, 20*time.Millisecond, "the HUP's \"Hang up: Master\" reaches the view")
}

// TestLookupWithoutProcIsNotFresh: an app whose /proc is not read (live
// worker state is off) is known but never fresh: the receiver does nothing
// without data.
func TestLookupWithoutProcIsNotFresh(t *testing.T) {
	m, _ := newManager(t)
	dir := t.TempDir()
	m.Apply(parse(t, appsYAML(dir, "a")))
	v, ok := m.Lookup("a")
	require.True(t, ok)
	require.False(t, v.DataFresh)
	require.Equal(t, -1, v.Workers)
	require.Zero(t, v.Master.PID)
}
