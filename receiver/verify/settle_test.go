package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/verify"
)

// feed is a probe over a fake clock that moves 50ms at every read (the
// default interval), so Bound and Quiet are counted in reads, whatever
// the machine's speed. After its reads it repeats them (cycle) or the
// last one.
type feed struct {
	c     *clock
	reads []reading
	cycle bool
	n     int
}

func (f *feed) probe(context.Context) (verify.Sample, error) {
	i := min(f.n, len(f.reads)-1)
	if f.cycle {
		i = f.n % len(f.reads)
	}
	if f.n > 0 {
		f.c.Advance(50 * time.Millisecond)
	}
	f.n++
	return f.reads[i].s, f.reads[i].err
}

func exiting(n, gone int) reading {
	return reading{s: verify.Sample{Master: master, Workers: n, Booted: n, Exiting: gone}}
}

func count(n int) reading { return reading{s: workers(n, n)} }

func TestSettle(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reads    []reading
		cycle    bool
		settled  int // the count settled on; 0: none
		n        int // reads
		unsteady int
		evidence string
	}{
		{"steady: held over 150ms", []reading{count(3)}, false, 3, 4, 0, ""},
		// A worker killed for the timeout: exiting, reaped (one short with
		// nothing exiting, for a moment), replaced.
		{"a timed-out worker replaced", []reading{count(3), exiting(2, 1), exiting(2, 1), count(2), count(3)}, false, 3, 8, 3, ""},
		// Four killed at once, forked back one at a time with pauses: a
		// pause read twice (9, 9) is not a settled count.
		{"a refill after four timeouts", []reading{count(12), exiting(8, 4), count(8), count(9), count(9), count(10), count(11), count(11), count(12)},
			false, 12, 12, 5, ""},
		{"never holds", []reading{count(3), exiting(2, 1)}, true, 0, 21, 20, "no count held for 150ms with no worker exiting within 1s (21 reads; counts seen last: 2 (1 exiting), 3, 2 (1 exiting), 3,"},
		{"always exiting", []reading{exiting(2, 1)}, false, 0, 21, 21, "(21 reads; counts seen last: 2 (1 exiting))"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{now: time.Unix(1000, 0)}
			f := &feed{c: c, reads: tc.reads, cycle: tc.cycle}
			s, err := verify.Settle(context.Background(), f.probe, verify.SettleOptions{Interval: time.Microsecond, Now: c.Now})
			require.Equal(t, [2]int{tc.n, tc.unsteady}, [2]int{s.Reads, s.Unsteady}, "reads, unsteady")
			if tc.settled == 0 {
				require.ErrorIs(t, err, verify.ErrUnsettled)
				require.Contains(t, err.Error(), tc.evidence)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.settled, s.Workers)
			require.Equal(t, time.Duration(s.Reads-1)*50*time.Millisecond, s.Elapsed)
		})
	}
}

// A probe that fails (the master went away) ends the settling with its
// error, which is not ErrUnsettled: the count is unknown, not moving.
func TestSettleProbeError(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	f := &feed{c: c, reads: []reading{count(3), {err: procinfo.ErrGone}}}
	s, err := verify.Settle(context.Background(), f.probe, verify.SettleOptions{Interval: time.Microsecond, Now: c.Now})
	require.ErrorIs(t, err, procinfo.ErrGone)
	require.NotErrorIs(t, err, verify.ErrUnsettled)
	require.Equal(t, 2, s.Reads)
}

// The end of the context (the receiver stopping) is an unsettled count.
func TestSettleCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := verify.NewTestWaker()
	p := &script{reads: []reading{count(3)}}
	errc := make(chan error, 1)
	go func() {
		_, err := verify.Settle(ctx, p.probe, verify.SettleOptions{Waker: w})
		errc <- err
	}()
	_, err := w.WaitIdle(context.Background())
	require.NoError(t, err)
	cancel()
	err = <-errc
	require.ErrorIs(t, err, verify.ErrUnsettled)
	require.ErrorIs(t, err, context.Canceled)
}
