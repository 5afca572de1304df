package looptest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/looptest"
)

// The harness wires the parts together: Prometheus scrapes the exporter on
// its own loopback address, and an alert with a reflex_action label posted
// to Alertmanager reaches the receiver with the bearer token, which decides
// it (dry run: nothing is signalled).
func TestHarnessWiring(t *testing.T) {
	l := looptest.Start(t, looptest.Options{Host: looptest.HostOptions{Addr: "127.0.0.2", DryRun: true}})
	up := l.Prom.Query(t, `up{job="gunicorn-reflex"}`)
	require.Len(t, up, 1)
	require.Equal(t, l.Host.Instance, up[0].Metric["instance"])
	require.Contains(t, l.Host.Instance, "127.0.0.2:")

	l.AM.Fire(t, map[string]string{"alertname": "GunicornWorkersSaturatedScaleUp", "app": l.Host.Opts.App,
		"instance": l.Host.Instance, "job": "gunicorn-reflex", "reflex_action": "scale_up"}, time.Now().Add(-time.Minute))
	d := l.Host.WaitAudit(t, 30*time.Second, "scale_up", "dry_run")
	require.Equal(t, l.Host.Opts.App, d.App)
	_, ok := l.AM.FindAlert(t, "GunicornWorkersSaturatedScaleUp", "app", l.Host.Opts.App)
	require.True(t, ok)
	require.Len(t, l.Host.G.WorkerPIDs(), 2, "dry run: nothing signalled")
}
