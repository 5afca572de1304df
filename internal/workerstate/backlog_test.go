package workerstate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// TestBacklogPeakWindow steps the clock through a 10 s window: a burst is
// the peak for as long as it is inside the window, whatever the readings
// after it, and an unreadable queue is neither recorded nor reported.
func TestBacklogPeakWindow(t *testing.T) {
	s := NewSampler(procinfo.FS{}, Options{BacklogWindow: 10 * time.Second})
	t0 := time.Unix(1_800_000_000, 0)
	read := func(at time.Duration, queued uint64) uint64 {
		return s.withPeak("app", Backlog{Listed: true, Listeners: 1, Queued: queued}, t0.Add(at), true).Peak
	}
	for _, step := range []struct {
		at     time.Duration
		queued uint64
		peak   uint64
	}{
		{0, 9, 9},
		{300 * time.Millisecond, 4, 9}, // same second
		{time.Second, 2, 9},            // next second
		{9 * time.Second, 0, 9},        // the burst is 9 s old
		{10 * time.Second, 0, 2},       // the burst left the window; 2 (at 1 s) did not
		{11 * time.Second, 0, 0},       // all gone
		{11*time.Second + 500*time.Millisecond, 5, 5},
		{5 * time.Second, 1, 1}, // the clock stepped back: future buckets are ignored
	} {
		require.Equal(t, step.peak, read(step.at, step.queued), "at %v", step.at)
	}
	// Another app has its own window.
	require.Equal(t, uint64(0), s.withPeak("other", Backlog{Listed: true, Listeners: 1}, t0, true).Peak)
	// Unreadable: no peak, and nothing recorded.
	require.Zero(t, s.withPeak("app", Backlog{Listed: true, Listeners: 1, Unreadable: 1, Queued: 50}, t0.Add(5*time.Second), true).Peak)
	require.Equal(t, uint64(1), read(5*time.Second, 0))
}

// TestBacklogWithoutSockDiag: a Sampler over a saved tree never asks
// sock_diag (it describes this host, not the tree).
func TestBacklogWithoutSockDiag(t *testing.T) {
	require.Nil(t, NewSampler(procinfo.FS{}, Options{}).listenQueues)
	fs, err := procinfo.NewFS("/proc/")
	require.NoError(t, err)
	require.NotNil(t, NewSampler(fs, Options{}).listenQueues)
}
