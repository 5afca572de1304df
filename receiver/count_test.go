package receiver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/actuator"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/verify"
)

// sampledHost is the host's view of one real Gunicorn as the running
// daemon gives it: the worker count of the last background /proc sample
// (appset samples every ProcInterval), which the test takes with sample,
// so the view lags the app exactly as far as the test says.
type sampledHost struct {
	fs procinfo.FS
	g  *gunicorntest.Gunicorn

	mu   sync.Mutex
	view intent.AppView
}

func (h *sampledHost) sample(t *testing.T) {
	t.Helper()
	id, err := h.fs.Identify(h.g.MasterPID())
	require.NoError(t, err)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.view = intent.AppView{Name: "shop", Master: id, Workers: len(h.g.WorkerPIDs()), DataFresh: true, SampledAt: time.Now()}
}

func (h *sampledHost) Lookup(app string) (intent.AppView, bool) {
	if app != "shop" {
		return intent.AppView{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.view, true
}

func auditLines(t *testing.T, path string) []policy.Decision {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []policy.Decision
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var d policy.Decision
		require.NoError(t, json.Unmarshal(sc.Bytes(), &d))
		out = append(out, d)
	}
	require.NoError(t, sc.Err())
	return out
}

// The demo's "scale_up verified" line whose target was the count Gunicorn
// already ran: a scale decided from a count one short of the live one (the
// host's last sample, taken while a timed-out worker was being replaced)
// sent a TTIN whose "verification" was the workers that were there before
// it. Now the effector compares the count the decision stepped from with
// /proc just before the signal, and sends nothing when they differ.
func TestLiveScaleFromAnotherCountSendsNothing(t *testing.T) {
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 2})
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	act, err := actuator.New(actuator.Options{FS: fs})
	require.NoError(t, err)
	t.Cleanup(act.Close)
	host := &sampledHost{fs: fs, g: g}
	host.sample(t)
	view, _ := host.Lookup("shop")
	live := Live{Actuator: act, FS: fs, Host: host, Verify: verify.Options{Deadline: 2 * time.Second, Interval: 50 * time.Millisecond}}
	d := policy.Decision{At: time.Now(), App: "shop", Action: intent.ScaleUp, Outcome: intent.OutcomeActed, Rule: 16, Workers: 1, Target: 2}

	eff := live.Perform(context.Background(), d, view, "")

	require.Equal(t, intent.OutcomeFailed, eff.Outcome, "not verified by the workers that ran before: %+v", eff)
	require.Equal(t, 2, eff.Workers, "the count /proc showed")
	require.Contains(t, eff.Evidence, "nothing was sent")
	require.Zero(t, g.LogCount("Handling signal: ttin"), "no TTIN")
	require.Len(t, g.WorkerPIDs(), 2)
}

// A scale decided right after the receiver's own verified scale, before
// the host sampled /proc again, steps from the live count: its acted line
// counts the workers Gunicorn runs, its verification sees one more, and
// max_workers is counted from the live count too.
func TestLiveScaleStepsFromTheLiveCount(t *testing.T) {
	for _, tc := range []struct {
		name     string
		max      int
		want     [][3]any // action:outcome, workers, target
		finalNow int
	}{
		{"below max", 4, [][3]any{{"scale_up:acted", 2, 3}, {"scale_up:verified", 3, 3}, {"scale_up:acted", 3, 4}, {"scale_up:verified", 4, 4}}, 4},
		{"at max", 3, [][3]any{{"scale_up:acted", 2, 3}, {"scale_up:verified", 3, 3}, {"scale_up:out_of_bounds", 3, 0}}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gunicorntest.Start(t, gunicorntest.Options{Workers: 2})
			fs, err := procinfo.NewFS("/proc")
			require.NoError(t, err)
			host := &sampledHost{fs: fs, g: g}
			host.sample(t)
			e, auditPath := liveEngineOn(t, host, fs, policy.Rules{MinWorkers: 2, MaxWorkers: tc.max, Cooldown: time.Millisecond, Grace: time.Millisecond}, 30*time.Second)
			ctx := context.Background()
			_, err = e.Submit(ctx, []intent.Alert{scaleUp(time.Now().Add(-time.Minute))}, nil)
			require.NoError(t, err)
			for e.Step(ctx, "shop") {
			}
			// The host did not sample again: its view still says 2.
			a := scaleUp(time.Now().Add(-time.Second))
			a.Fingerprint = "1111222233334444"
			_, err = e.Submit(ctx, []intent.Alert{a}, nil)
			require.NoError(t, err)
			for e.Step(ctx, "shop") {
			}
			var got [][3]any
			for _, l := range auditLines(t, auditPath) {
				got = append(got, [3]any{string(l.Action) + ":" + string(l.Outcome), l.Workers, l.Target})
			}
			require.Equal(t, tc.want, got)
			require.Len(t, g.WorkerPIDs(), tc.finalNow)
		})
	}
}

// The timing-out scale-up alert fires while workers are killed for the
// timeout and replaced, and each replacement leaves /proc one worker short
// for a moment (the killed worker exiting, then reaped before its
// replacement is forked). A scale that counts from such a read steps from
// a count Gunicorn does not run: it is not sent ("failed", which fires
// ReflexRemediationActionFailed for nothing), or it is sent with a target
// one short, past max_workers at max. Here clients hold every worker past
// --timeout 2 while the engine scales 2 → 12 and then keeps being asked at
// 12: every step sent must count what Gunicorn ran (its "Handling signal:
// ttin" lines say how many it got), none may fail, and after the holds
// stop /proc shows exactly the workers the TTINs asked for.
func TestLiveScaleUpWhileWorkersTimeOut(t *testing.T) {
	const start, maxWorkers, holders = 2, 12, 4
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: start, Timeout: 2})
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	e, auditPath := liveEngineOn(t, gunicornHost{fs: fs, g: g}, fs,
		policy.Rules{MinWorkers: start, MaxWorkers: maxWorkers, Cooldown: time.Millisecond, Grace: time.Millisecond}, 30*time.Second)
	e.opts.Global = policy.Global{RateLimit: 100} // the default (a few an hour) would stop the steps
	rec := &settleRecorder{Live: e.opts.Effector.(Live)}
	e.opts.Effector = rec

	// Each holder asks for a sleep far past the timeout, again as soon as
	// its worker is killed, until the holds stop.
	stopHolds := g.Hold(t, holders, "/sleep?s=20")
	require.NoError(t, g.WaitLog("WORKER TIMEOUT", holders, 30*time.Second), "workers are being killed for the timeout")

	// Bounded in time (the loop's deadline) and in count (the attempts at
	// max_workers): 10 steps up, then asked again at 12 for 10 seconds.
	ctx := context.Background()
	deadline := time.Now().Add(90 * time.Second)
	var atMaxSince time.Time
	attempts := 0
	for time.Now().Before(deadline) {
		if !atMaxSince.IsZero() && time.Since(atMaxSince) > 10*time.Second {
			break
		}
		attempts++
		a := scaleUp(time.Now().Add(-time.Second))
		a.Fingerprint = fmt.Sprintf("%016x", attempts)
		_, err := e.Submit(ctx, []intent.Alert{a}, nil)
		require.NoError(t, err)
		for e.Step(ctx, "shop") {
		}
		if atMaxSince.IsZero() && e.Stats().Decisions[DecisionKey{"shop", intent.ScaleUp, intent.OutcomeOutOfBounds}] > 0 {
			atMaxSince = time.Now()
		}
	}
	timeouts := g.LogCount("WORKER TIMEOUT")
	stopHolds()

	outcomes := map[string]int{}
	lines := auditLines(t, auditPath)
	byID := map[string]policy.Decision{}
	sent := 0
	for _, l := range lines {
		outcomes[string(l.Outcome)]++
		if l.Verifies == "" {
			byID[l.ID] = l
			continue
		}
		acted := byID[l.Verifies]
		require.Equal(t, intent.OutcomeActed, acted.Outcome, "line %s verifies an acted line", l.ID)
		if l.Outcome != intent.OutcomeVerified {
			continue // not sent; the outcome is checked below
		}
		sent++
		require.Equal(t, [2]int{start + sent - 1, start + sent}, [2]int{acted.Workers, acted.Target},
			"TTIN %d stepped from the %d workers Gunicorn ran", sent, start+sent-1)
	}
	t.Logf("%d attempts, %d worker timeouts meanwhile; outcomes %v; decision counts: %s", attempts, timeouts, outcomes, rec.summary())
	require.Zero(t, outcomes[string(intent.OutcomeFailed)], "no scale failed: %v", outcomes)
	require.Zero(t, outcomes[string(intent.OutcomeVerificationFailed)], "every TTIN sent was seen: %v", outcomes)
	require.Equal(t, maxWorkers-start, sent, "scaled to max_workers")
	require.Equal(t, sent, g.LogCount("Handling signal: ttin"), "one TTIN per step sent")
	require.NoError(t, g.WaitWorkers(start+sent, 30*time.Second), "/proc after the holds stopped")
}

// settleRecorder is the live effector, recording what settling the count
// of each decision took (for the figures in the test log).
type settleRecorder struct {
	Live
	mu sync.Mutex
	// counts read; unsettled of them; waited: those that saw an unsteady read
	counts, unsettled, waited int
	reads, unsteady, maxReads int
}

func (r *settleRecorder) Workers(ctx context.Context, app intent.AppView) (verify.Settled, error) {
	c, err := r.Live.Workers(ctx, app)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts++
	r.reads += c.Reads
	r.unsteady += c.Unsteady
	r.maxReads = max(r.maxReads, c.Reads)
	if c.Unsteady > 0 {
		r.waited++
	}
	if errors.Is(err, verify.ErrUnsettled) {
		r.unsettled++
	}
	return c, err
}

func (r *settleRecorder) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%d counts, %d unsettled, %d saw an unsteady read; %d reads in all (at most %d for one), %d unsteady (a worker exiting or the count moving)",
		r.counts, r.unsettled, r.waited, r.reads, r.maxReads, r.unsteady)
}
