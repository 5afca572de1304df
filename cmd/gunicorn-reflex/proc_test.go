package main_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// Live worker state through the binary: an app configured by pidfile, two
// requests held open on three sync workers: two busy, one idle, and the
// oldest heartbeat tracks the held requests.
func TestProcStateBusyIdle(t *testing.T) {
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 3, Timeout: 20})
	cfg := filepath.Join(t.TempDir(), "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("apps:\n  - name: procapp\n    timeout: 20s\n    pidfile: "+g.Pidfile+"\n"), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)
	exp.WaitValue(t, 15*time.Second, 1, "reflex_proc_up", "app", "procapp")
	m := exp.WaitValue(t, 15*time.Second, 3, "gunicorn_workers_by_activity", "app", "procapp", "activity", "idle")
	v, _ := m.Value("gunicorn_workers", "app", "procapp")
	require.Equal(t, 3.0, v)
	timeout, _ := m.Value("gunicorn_timeout_seconds", "app", "procapp")
	require.Equal(t, 20.0, timeout, "--timeout from the config (setproctitle hides the master's arguments)")

	held := []<-chan gunicorntest.Result{g.GetAsync("/sleep?s=8"), g.GetAsync("/sleep?s=8")}
	start := time.Now()
	exp.WaitValue(t, 6*time.Second, 2, "gunicorn_workers_by_activity", "app", "procapp", "activity", "busy")
	m = exp.WaitValue(t, 6*time.Second, 1, "gunicorn_workers_by_activity", "app", "procapp", "activity", "idle")
	busy, _ := m.Value("gunicorn_workers_by_activity", "app", "procapp", "activity", "busy")
	require.Equal(t, 2.0, busy, "the sample with one idle worker shows the other two busy")
	time.Sleep(3 * time.Second)
	m = exp.Scrape(t)
	age, _ := m.Value("gunicorn_worker_heartbeat_age_max_seconds", "app", "procapp")
	elapsed := time.Since(start).Seconds()
	// Sampled every 2 s: the age lags the request by at most that, plus 1 s.
	require.InDelta(t, elapsed, age, 3.0, "heartbeat age %v after %v s of request", age, elapsed)
	for _, r := range held {
		res := <-r
		require.Equal(t, 200, res.Status)
	}
	exp.WaitValue(t, 10*time.Second, 3, "gunicorn_workers_by_activity", "app", "procapp", "activity", "idle")
	promtoolCheck(t, exp.Scrape(t).Text)
}
