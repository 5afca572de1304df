package workerstate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// TestRealAtScrape: with --timeout 3 a worker is killed between 3 and 4 s
// into a stuck request. A sample taken as the request starts says its
// heartbeat is fresh; the background sampler runs every 2 s, so without
// AtScrape the next value a scrape could see might already be after the
// kill. AtScrape at 2.5 s into the request reads the heartbeat file again
// and shows the age (>= 2.4 s) and both past-timeout fractions before the
// kill; after the kill, the dead worker is left out.
func TestRealAtScrape(t *testing.T) {
	t.Parallel()
	const timeout = 3 * time.Second
	g, m := realApp(t, gunicorntest.Options{Workers: 1, Timeout: int(timeout / time.Second)})
	fs := procFS(t)
	r := sampler{t: t, s: NewSampler(fs, Options{}), app: "atscrape", m: m, timeout: timeout, class: "sync"}

	pending := g.GetAsync("/sleep?s=30")
	st := r.until(2*time.Second, func(st AppState) bool { return st.Busy == 1 })
	worker := st.PerWorker[0].PID
	hb, ok, err := fs.HeartbeatFD(worker)
	require.NoError(t, err)
	require.True(t, ok)
	// The sync worker notified just before it accepted the request: its
	// ctime is when the request started.
	t.Logf("sampled %v into the request: age %v, past 0.8: %d", time.Since(hb.Ctime), st.MaxHeartbeatAge, st.Past80Timeout)

	time.Sleep(time.Until(hb.Ctime.Add(2500 * time.Millisecond)))
	now := st.AtScrape()
	require.GreaterOrEqual(t, now.MaxHeartbeatAge, 2400*time.Millisecond, describe(now))
	require.Equal(t, 1, now.PastHalfTimeout, describe(now))
	require.Equal(t, 1, now.Past80Timeout, describe(now))
	require.Equal(t, 1, now.HeartbeatsRead)
	require.Equal(t, now.MaxHeartbeatAge, now.PerWorker[0].HeartbeatAge)
	require.Equal(t, st.Busy, now.Busy, "activity stays as sampled")
	require.Less(t, st.PerWorker[0].HeartbeatAge, now.PerWorker[0].HeartbeatAge, "the sample itself is not changed")

	<-pending // the worker is killed: the client sees the connection close
	require.NoError(t, g.WaitLog("WORKER TIMEOUT", 1, 10*time.Second))
	require.Eventually(t, func() bool { return !isAlive(fs, worker) }, 10*time.Second, 20*time.Millisecond)
	gone := st.AtScrape()
	require.Zero(t, gone.HeartbeatsRead, "a killed worker has no heartbeat: %s", describe(gone))
	require.Zero(t, gone.Past80Timeout)
	require.False(t, gone.PerWorker[0].HeartbeatRead)
}

func isAlive(fs procinfo.FS, pid int) bool {
	st, err := fs.Stat(pid)
	return err == nil && !st.Zombie()
}
