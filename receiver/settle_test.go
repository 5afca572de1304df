package receiver

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/verify"
)

// readFeed is /proc as a sequence of reads of the app's master, on a clock
// of its own that moves 50ms at every read (the settle interval), so what
// settles depends on the reads alone, not on the machine's speed. After
// its reads it repeats them (cycle) or its last one.
type readFeed struct {
	mu    sync.Mutex
	clock clock
	reads []verify.Sample
	cycle bool
	n     int
}

func (f *readFeed) set(cycle bool, reads ...verify.Sample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads, f.cycle, f.n = reads, cycle, 0
}

func (f *readFeed) probe(context.Context) (verify.Sample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.n, len(f.reads)-1)
	if f.cycle {
		i = f.n % len(f.reads)
	}
	f.n++
	f.clock.Add(50 * time.Millisecond)
	return f.reads[i], nil
}

// live is the live effector over the feed; it has no actuator, so it can
// only be asked for counts, or to perform a scale it will not send.
func (f *readFeed) live() Live {
	return Live{
		Probe:  func(intent.AppView) verify.Probe { return f.probe },
		Settle: verify.SettleOptions{Interval: time.Microsecond, Now: f.clock.Now},
	}
}

// read is one read of n workers, gone of them exiting (not counted).
func read(n, gone int) verify.Sample {
	return verify.Sample{Workers: n, Booted: n, Exiting: gone}
}

// feedCounts counts workers through the live effector over a feed and
// performs like fakeEffector: Gunicorn obeys and the step is verified.
type feedCounts struct {
	*fakeEffector
	feed *readFeed
}

func (f feedCounts) Workers(ctx context.Context, app intent.AppView) (verify.Settled, error) {
	return f.feed.live().Workers(ctx, app)
}

// A scale decided while a worker killed for the timeout is exiting and
// its replacement not forked yet steps from the count Gunicorn runs once
// /proc settled, not from the first read (one short): the decision, and
// the re-apply after a HUP, target one past what runs.
func TestScaleStepsFromTheSettledCount(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	feed := &readFeed{clock: clock{now: t0}}
	r.e.opts.Effector = feedCounts{fakeEffector: r.eff, feed: feed}
	r.host.workers = 3
	// Exiting, reaped (one short, nothing exiting), replaced.
	feed.set(false, read(2, 1), read(2, 0), read(3, 0))
	r.submit(t, scaleUp(t0))
	r.drain()
	lines := auditLines(t, filepath.Join(r.dir, "audit.jsonl"))
	require.Equal(t, []string{"scale_up:acted", "scale_up:verified"}, auditOutcomes(t, filepath.Join(r.dir, "audit.jsonl")))
	require.Equal(t, [2]int{3, 4}, [2]int{lines[0].Workers, lines[0].Target}, "from the settled count")

	// A HUP reset Gunicorn to 2, one re-apply step restored 3, and the
	// next one reads a worker being replaced.
	r.clock.Add(time.Minute)
	r.host.mu.Lock()
	r.host.workers = 3
	r.host.mu.Unlock()
	r.e.opts.Host = hupHost{r.host, r.clock.Now()}
	r.clock.Add(time.Second)
	feed.set(false, read(2, 1), read(2, 0), read(3, 0))
	r.e.Reconcile(context.Background(), "shop")
	lines = auditLines(t, filepath.Join(r.dir, "audit.jsonl"))
	require.Len(t, lines, 4)
	require.True(t, lines[2].Reconcile)
	require.Equal(t, [2]int{3, 4}, [2]int{lines[2].Workers, lines[2].Target}, "the re-apply from the settled count")
}

// A count that never settles (workers killed and replaced all along)
// decides nothing: the outcome is unsettled, no cooldown starts, the key
// is not kept, and the same alert re-sent (Alertmanager re-sends a firing
// alert) acts once the count settles. Nothing is counted as failed.
func TestUnsettledCountDecidesNothing(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	feed := &readFeed{clock: clock{now: t0}}
	r.e.opts.Effector = feedCounts{fakeEffector: r.eff, feed: feed}
	r.host.workers = 3
	feed.set(true, read(3, 0), read(2, 1))
	a := scaleUp(t0)
	r.submit(t, a)
	r.drain()
	require.Equal(t, 0, r.eff.count(), "nothing sent")
	lines := auditLines(t, filepath.Join(r.dir, "audit.jsonl"))
	require.Len(t, lines, 1)
	require.Equal(t, intent.OutcomeUnsettled, lines[0].Outcome, lines[0].Reason)
	require.Equal(t, -1, lines[0].Workers)
	require.Contains(t, lines[0].Evidence, "3, 2 (1 exiting)")
	require.Empty(t, r.e.Status()[0].LastAction, "no cooldown")

	r.clock.Add(time.Minute) // the next notification, well inside the 5m cooldown
	feed.set(false, read(3, 0))
	require.Equal(t, 1, r.submit(t, a).Queued, "the re-send is decided again, not deduplicated")
	r.drain()
	require.Equal(t, []string{"scale_up:unsettled", "scale_up:acted", "scale_up:verified"}, auditOutcomes(t, filepath.Join(r.dir, "audit.jsonl")))
	require.Equal(t, 4, r.host.workers)
	st := r.e.Stats()
	require.Zero(t, st.Decisions[DecisionKey{"shop", intent.ScaleUp, intent.OutcomeFailed}])
	require.Equal(t, uint64(1), st.Decisions[DecisionKey{"shop", intent.ScaleUp, intent.OutcomeUnsettled}])
}

// A count that does not settle in the decision's first second is read
// again (UnsettledRetries) before anything is decided: the replacements of
// workers killed for the timeout are forked, the count settles, and the
// scale acts now rather than at Alertmanager's next repeat, an hour later.
// With no retries the same reads end unsettled.
func TestUnsettledCountIsReadAgain(t *testing.T) {
	// A second of a worker exiting and being replaced (the first read's
	// bound is 1s of the feed's clock: 20 reads), a little more, then 3.
	var reads []verify.Sample
	for i := range 30 {
		reads = append(reads, read(3-i%2, i%2))
	}
	reads = append(reads, read(3, 0))
	for _, tc := range []struct {
		retries int
		want    []string
	}{
		{2, []string{"scale_up:acted", "scale_up:verified"}}, // the default
		{-1, []string{"scale_up:unsettled"}},
	} {
		r := newRig(t, t.TempDir(), 8)
		r.e.opts.UnsettledRetries = tc.retries
		feed := &readFeed{clock: clock{now: t0}}
		r.e.opts.Effector = feedCounts{fakeEffector: r.eff, feed: feed}
		r.host.workers = 3
		feed.set(false, reads...)
		r.submit(t, scaleUp(t0))
		r.drain()
		require.Equal(t, tc.want, auditOutcomes(t, filepath.Join(r.dir, "audit.jsonl")), "retries %d", tc.retries)
		if tc.retries > 0 {
			lines := auditLines(t, filepath.Join(r.dir, "audit.jsonl"))
			require.Equal(t, [2]int{3, 4}, [2]int{lines[0].Workers, lines[0].Target})
		}
	}
}

// A count that settled for the decision but not again just before the
// signal sends nothing, and the acted decision is withdrawn: its
// verification line says unsettled, no cooldown or desired count is left
// behind, and its re-send acts.
func TestUnsettledBeforeTheSignalIsWithdrawn(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	feed := &readFeed{clock: clock{now: t0}}
	r.host.workers = 3
	// Settled at 3 for the decision; then workers keep being replaced.
	feed.set(false, read(3, 0))
	r.e.opts.Effector = withdrawFeed{Live: feed.live(), feed: feed}
	a := scaleUp(t0)
	r.submit(t, a)
	r.drain()
	lines := auditLines(t, filepath.Join(r.dir, "audit.jsonl"))
	require.Equal(t, []string{"scale_up:acted", "scale_up:unsettled"}, auditOutcomes(t, filepath.Join(r.dir, "audit.jsonl")))
	require.Equal(t, [2]int{3, 4}, [2]int{lines[0].Workers, lines[0].Target})
	require.Equal(t, lines[0].ID, lines[1].Verifies)
	require.Contains(t, lines[1].Evidence, "nothing was sent")
	s := r.e.Status()[0]
	require.Empty(t, s.LastAction, "no cooldown")
	require.Zero(t, s.Desired, "no desired count")
	require.Empty(t, r.e.Stats().LastAction)

	r.clock.Add(time.Minute)
	r.e.opts.Effector = r.eff
	require.Equal(t, 1, r.submit(t, a).Queued, "the key was forgotten")
	r.drain()
	require.Equal(t, []string{"scale_up:acted", "scale_up:unsettled", "scale_up:acted", "scale_up:verified"},
		auditOutcomes(t, filepath.Join(r.dir, "audit.jsonl")))
	require.Equal(t, 4, r.e.Status()[0].Desired)
	require.Zero(t, r.e.Stats().Decisions[DecisionKey{"shop", intent.ScaleUp, intent.OutcomeFailed}])
}

// withdrawFeed is the live effector over the feed whose reads, once the
// decision's count settled, never settle again for Perform's re-check.
type withdrawFeed struct {
	Live
	feed *readFeed
}

func (w withdrawFeed) Workers(ctx context.Context, app intent.AppView) (verify.Settled, error) {
	c, err := w.Live.Workers(ctx, app)
	w.feed.set(true, read(2, 1), read(3, 0))
	return c, err
}
