package collector

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/appset"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/workerstate"
)

// TestRealProcHeartbeatAtScrape: a real Gunicorn 20.1 with --timeout 3
// serves /sleep; the state was sampled as the request started, as the
// 2 s background sampler may have. A scrape at 2.5 s into the request
// exports the heartbeat age and the 0.8 fraction as they are then, before
// the master kills the worker.
func TestRealProcHeartbeatAtScrape(t *testing.T) {
	t.Parallel()
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 1, Timeout: 3})
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	m, err := fs.Identify(g.MasterPID())
	require.NoError(t, err)
	s := workerstate.NewSampler(fs, workerstate.Options{})
	pending := g.GetAsync("/sleep?s=30")
	t.Cleanup(func() { <-pending })

	var st workerstate.AppState
	require.Eventually(t, func() bool {
		st, err = s.Sample("sleepy", m, 3*time.Second, "sync")
		return err == nil && st.Busy == 1
	}, 5*time.Second, 20*time.Millisecond)
	hb, ok, err := fs.HeartbeatFD(st.PerWorker[0].PID)
	require.NoError(t, err)
	require.True(t, ok)
	time.Sleep(time.Until(hb.Ctime.Add(2500 * time.Millisecond)))

	c := NewProc(fakeApps{{App: "sleepy", Proc: appset.ProcState{Known: true, Sampled: true, Timeout: 3 * time.Second, State: st}}})
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(asCollector{c}))
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			name := f.GetName()
			for _, l := range mt.GetLabel() {
				if l.GetName() == "fraction" {
					name += "/" + l.GetValue()
				}
			}
			got[name] = mt.GetGauge().GetValue()
		}
	}
	require.GreaterOrEqual(t, got["gunicorn_worker_heartbeat_age_max_seconds"], 2.4, "%v", got)
	require.Equal(t, 1.0, got["gunicorn_workers_past_timeout_fraction/0.8"], "%v", got)
	require.Equal(t, 1.0, got["gunicorn_workers_past_timeout_fraction/0.5"], "%v", got)
}
