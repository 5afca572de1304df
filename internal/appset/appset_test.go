package appset

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

func newManager(t *testing.T) (*Manager, *timeline.Timeline) {
	t.Helper()
	tl := timeline.New(64, 0)
	m := New(promslog.NewNopLogger(), tl)
	ctx, cancel := context.WithCancel(context.Background())
	m.Start(ctx)
	t.Cleanup(func() { cancel(); m.Wait() })
	return m, tl
}

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	require.NoError(t, err)
	return cfg
}

func appsYAML(dir string, names ...string) string {
	s := "logs:\n  poll_interval: 20ms\napps:\n"
	for _, n := range names {
		s += fmt.Sprintf("  - name: %s\n    error_log: %s\n", n, filepath.Join(dir, n+".log"))
	}
	return s
}

// The pipeline follows the log into the tracker and the timeline; a reload
// that keeps an app keeps its counters; one that drops it stops it.
func TestApplyFollowsAndReconciles(t *testing.T) {
	dir := t.TempDir()
	m, tl := newManager(t)
	old := "[2026-11-24 17:50:20 +0000] [20865] [CRITICAL] WORKER TIMEOUT (pid:21150)\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.log"), []byte(old), 0o644))
	m.Apply(parse(t, appsYAML(dir, "a", "b")))
	require.Equal(t, []string{"a", "b"}, m.Names())
	require.Eventually(t, func() bool { return snapshotOf(m, "a").ErrorLog.Open }, 5*time.Second, 10*time.Millisecond)

	// What was in the log before it was opened is history: not counted.
	f, err := os.OpenFile(filepath.Join(dir, "a.log"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("[2026-11-24 17:50:23 +0000] [20865] [CRITICAL] WORKER TIMEOUT (pid:21151)\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Eventually(t, func() bool { return snapshotOf(m, "a").Lifecycle.Timeouts == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(tl.Select(timeline.Query{App: "a", Kinds: []string{"worker_timeout"}})) == 1 },
		5*time.Second, 10*time.Millisecond)

	m.Apply(parse(t, appsYAML(dir, "a", "c")))
	require.Equal(t, []string{"a", "c"}, m.Names())
	require.Equal(t, uint64(1), snapshotOf(m, "a").Lifecycle.Timeouts, "an unchanged app keeps its counters across a reload")
}

// Discovery never overrides a configured app, and is bounded.
func TestEnsureRespectsConfigAndBound(t *testing.T) {
	dir := t.TempDir()
	m, _ := newManager(t)
	m.Apply(parse(t, appsYAML(dir, "shop")))
	m.Ensure(Spec{Name: "shop", Source: SourceDiscovery, ErrorLog: "/elsewhere.log"})
	require.Equal(t, filepath.Join(dir, "shop.log"), snapshotOf(m, "shop").ErrorLogPath)
	require.Equal(t, SourceConfig, snapshotOf(m, "shop").Source)

	for i := 0; i < MaxApps+10; i++ {
		m.Ensure(Spec{Name: fmt.Sprintf("d%03d", i), Source: SourceDiscovery, ErrorLog: filepath.Join(dir, "d.log")})
	}
	require.Len(t, m.Names(), MaxApps)

	// A config reload does not drop discovered apps.
	m.Apply(parse(t, appsYAML(dir, "shop")))
	require.Len(t, m.Names(), MaxApps)
}

func snapshotOf(m *Manager, app string) Snapshot {
	for _, s := range m.Snapshot() {
		if s.App == app {
			return s
		}
	}
	return Snapshot{}
}

// An access log discovered later (an empty one cannot be recognised by its
// content) is attached without restarting the app's error-log side.
func TestAccessLogFoundLaterKeepsCounters(t *testing.T) {
	dir := t.TempDir()
	errLog := filepath.Join(dir, "err.log")
	require.NoError(t, os.WriteFile(errLog, nil, 0o644))
	m, _ := newManager(t)
	m.Apply(parse(t, "logs:\n  poll_interval: 20ms\ndiscovery:\n  enabled: true\n"))
	spec := Spec{Name: "late", Source: SourceDiscovery, ErrorLog: errLog, Routes: config.Routes{MaxRoutes: 10}}
	m.Ensure(spec)
	require.Eventually(t, func() bool { return snapshotOf(m, "late").ErrorLog.Open }, 5*time.Second, 10*time.Millisecond)
	f, err := os.OpenFile(errLog, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("[2026-11-24 17:50:23 +0000] [20865] [CRITICAL] WORKER TIMEOUT (pid:21151)\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Eventually(t, func() bool { return snapshotOf(m, "late").Lifecycle.Timeouts == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Nil(t, snapshotOf(m, "late").Access)

	spec.AccessLog = filepath.Join(dir, "acc.log")
	m.Ensure(spec)
	s := snapshotOf(m, "late")
	require.NotNil(t, s.Access, "the access log is followed")
	require.Equal(t, uint64(1), s.Lifecycle.Timeouts, "the error-log side kept its counters")
}
