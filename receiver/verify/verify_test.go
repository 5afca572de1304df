package verify_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/verify"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// script is a probe that returns its readings in order, then the last
// one forever.
type script struct {
	mu    sync.Mutex
	reads []reading
	n     int
}

type reading struct {
	s   verify.Sample
	err error
}

func (p *script) probe(context.Context) (verify.Sample, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reads[min(p.n, len(p.reads)-1)]
	p.n++
	return r.s, r.err
}

var master = procinfo.Identity{PID: 100, StartTicks: 5}

func workers(n, booted int, pids ...int) verify.Sample {
	return verify.Sample{Master: master, Workers: n, Booted: booted, WorkerPIDs: pids}
}

// run starts fn on a stepped waker and fake clock, steps it with the
// clock advanced by tick until it returns, and returns its result and the
// number of steps taken.
func run(t *testing.T, tick time.Duration, fn func(verify.Options) (verify.Result, error)) (verify.Result, int) {
	t.Helper()
	c := &clock{now: time.Unix(1000, 0)}
	w := verify.NewTestWaker()
	opts := verify.Options{Deadline: 10 * time.Second, Waker: w, Now: c.Now}
	type out struct {
		r   verify.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := fn(opts)
		done <- out{r, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	finished, err := w.WaitIdle(ctx)
	require.NoError(t, err)
	steps := 0
	for !finished {
		require.Less(t, steps, 100, "the verifier never returned")
		c.Advance(tick)
		finished, err = w.Step(ctx)
		require.NoError(t, err)
		steps++
	}
	o := <-done
	require.NoError(t, o.err)
	return o.r, steps
}

func TestWorkerCount(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reads    []reading
		want     int
		outcome  intent.Outcome
		steps    int
		evidence string
	}{
		{"already there", []reading{{s: workers(3, 3)}}, 3, intent.OutcomeVerified, 0, "3 booted workers seen"},
		{"third poll", []reading{{s: workers(2, 2)}, {s: workers(3, 2)}, {s: workers(3, 3)}}, 3, intent.OutcomeVerified, 2, ""},
		{"booting is not booted", []reading{{s: workers(3, 2)}}, 3, intent.OutcomeVerificationFailed, 5, "no 3 booted workers within 10s"},
		{"overshoot is not the target", []reading{{s: workers(4, 4)}}, 3, intent.OutcomeVerificationFailed, 5, "4 workers"},
		{"probe errors then success", []reading{{err: procinfo.ErrPermission}, {s: workers(3, 3)}}, 3, intent.OutcomeVerified, 1, ""},
		{"probe fails throughout", []reading{{err: procinfo.ErrGone}}, 3, intent.OutcomeVerificationFailed, 5, "last probe failed: process gone"},
		{"stopped master", []reading{{s: verify.Sample{Master: master, Workers: 2, Booted: 2, Stopped: true}}}, 3, intent.OutcomeVerificationFailed, 5, "the master is stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &script{reads: tc.reads}
			r, steps := run(t, 2*time.Second, func(o verify.Options) (verify.Result, error) {
				return verify.WorkerCount(context.Background(), p.probe, tc.want, o)
			})
			require.Equal(t, tc.outcome, r.Outcome, r.Evidence)
			require.Equal(t, tc.steps, steps)
			require.Equal(t, steps+1, r.Polls, "one probe per wake, no retry loop")
			require.Contains(t, r.Evidence, tc.evidence)
		})
	}
}

// TestDeadlineIsOnTheInjectedClock: polls that do not advance the clock
// never reach the deadline; the poll that reaches it still counts a
// change seen at that moment.
func TestDeadlineIsOnTheInjectedClock(t *testing.T) {
	p := &script{reads: []reading{{s: workers(2, 2)}, {s: workers(2, 2)}, {s: workers(3, 3)}}}
	r, steps := run(t, 0, func(o verify.Options) (verify.Result, error) {
		return verify.WorkerCount(context.Background(), p.probe, 3, o)
	})
	require.True(t, r.Verified())
	require.Equal(t, 2, steps)

	p = &script{reads: []reading{{s: workers(2, 2)}, {s: workers(3, 3)}}}
	r, steps = run(t, 10*time.Second, func(o verify.Options) (verify.Result, error) {
		return verify.WorkerCount(context.Background(), p.probe, 3, o)
	})
	require.True(t, r.Verified(), "seen at the deadline: %s", r.Evidence)
	require.Equal(t, 1, steps)
}

func TestNewGeneration(t *testing.T) {
	before := workers(2, 2, 11, 12)
	other := procinfo.Identity{PID: 200, StartTicks: 9}
	for _, tc := range []struct {
		name    string
		reads   []reading
		outcome intent.Outcome
	}{
		{"new booted generation", []reading{{s: workers(4, 2, 11, 12, 21, 22)}, {s: workers(2, 1, 21, 22)}, {s: workers(2, 2, 21, 22)}}, intent.OutcomeVerified},
		{"a smaller generation counts (HUP resets to workers)", []reading{{s: workers(1, 1, 31)}}, intent.OutcomeVerified},
		{"an old worker left", []reading{{s: workers(2, 2, 12, 21)}}, intent.OutcomeVerificationFailed},
		{"nothing changed", []reading{{s: before}}, intent.OutcomeVerificationFailed},
		{"another master is not this reload", []reading{{s: verify.Sample{Master: other, Workers: 2, Booted: 2, WorkerPIDs: []int{41, 42}}}}, intent.OutcomeVerificationFailed},
		{"no workers", []reading{{s: workers(0, 0)}}, intent.OutcomeVerificationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &script{reads: tc.reads}
			r, _ := run(t, 2*time.Second, func(o verify.Options) (verify.Result, error) {
				return verify.NewGeneration(context.Background(), p.probe, before, o)
			})
			require.Equal(t, tc.outcome, r.Outcome, r.Evidence)
		})
	}
}

func TestNewMaster(t *testing.T) {
	before := workers(2, 2, 11, 12)
	restarted := procinfo.Identity{PID: 300, StartTicks: 50}
	samePIDLater := procinfo.Identity{PID: 100, StartTicks: 60}
	for _, tc := range []struct {
		name    string
		reads   []reading
		outcome intent.Outcome
	}{
		{"new master, booted", []reading{{err: procinfo.ErrGone}, {s: verify.Sample{Master: restarted, Workers: 2, Booted: 1}}, {s: verify.Sample{Master: restarted, Workers: 2, Booted: 2}}}, intent.OutcomeVerified},
		{"same pid, started again", []reading{{s: verify.Sample{Master: samePIDLater, Workers: 1, Booted: 1}}}, intent.OutcomeVerified},
		{"the old master", []reading{{s: before}}, intent.OutcomeVerificationFailed},
		{"new master, no workers", []reading{{s: verify.Sample{Master: restarted}}}, intent.OutcomeVerificationFailed},
		{"gone throughout", []reading{{err: procinfo.ErrGone}}, intent.OutcomeVerificationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &script{reads: tc.reads}
			r, _ := run(t, 2*time.Second, func(o verify.Options) (verify.Result, error) {
				return verify.NewMaster(context.Background(), p.probe, before, o)
			})
			require.Equal(t, tc.outcome, r.Outcome, r.Evidence)
		})
	}
}

func TestCancelAndBadArguments(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &script{reads: []reading{{s: workers(2, 2)}}}
	w := verify.NewTestWaker()
	errc := make(chan error, 1)
	go func() {
		_, err := verify.WorkerCount(ctx, p.probe, 3, verify.Options{Waker: w})
		errc <- err
	}()
	_, err := w.WaitIdle(context.Background())
	require.NoError(t, err)
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)

	_, err = verify.WorkerCount(context.Background(), p.probe, 0, verify.Options{})
	require.Error(t, err, "Gunicorn never has 0 workers on purpose")
	_, err = verify.WorkerCount(context.Background(), nil, 2, verify.Options{})
	require.Error(t, err)
	require.False(t, errors.Is(err, context.Canceled))
}

// TestDefaultWakerPollsOnTheWallClock: with no waker the verifier polls on
// a ticker; the change is seen without a test stepping anything.
func TestDefaultWakerPollsOnTheWallClock(t *testing.T) {
	p := &script{reads: []reading{{s: workers(2, 2)}, {s: workers(3, 3)}}}
	r, err := verify.WorkerCount(context.Background(), p.probe, 3, verify.Options{Interval: time.Millisecond})
	require.NoError(t, err)
	require.True(t, r.Verified())
	require.Equal(t, 2, r.Polls)
}
