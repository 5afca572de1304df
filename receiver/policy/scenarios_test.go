package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// D1: an alert pair flapping every 30 s for an hour (each re-fire a new
// startsAt, so a new key) neither ping-pongs the worker count nor acts
// more than once per cooldown; a flapping restart alert stops at the
// budget.
func TestFlappingForAnHour(t *testing.T) {
	flap := func(f *feeder) (ups []time.Time) {
		for i := 0; f.now.Before(t0.Add(time.Hour)); i++ {
			act := intent.ScaleUp
			if i%2 == 1 {
				act = intent.ScaleDown
			}
			a := f.alert(act, 0)
			if d := f.fire(a); d.Outcome == intent.OutcomeActed {
				ups = append(ups, f.now)
			}
			f.step(15 * time.Second)
			a.Status = "resolved"
			want(t, f.fire(a), intent.OutcomeIgnored, 1)
			f.step(15 * time.Second)
		}
		require.Zero(t, f.acted(intent.ScaleDown), "a scale-up wanted every minute keeps scale-down stabilising")
		for i := 1; i < len(ups); i++ {
			require.GreaterOrEqual(t, ups[i].Sub(ups[i-1]), DefaultCooldown)
		}
		return ups
	}
	f := newFeeder(t)
	f.rules.MaxWorkers = 40 // so the bound is not what stops it
	require.Len(t, flap(f), DefaultRateLimit, "the host's rate limit of 6 an hour")
	want(t, f.log[len(f.log)-4], intent.OutcomeRateLimited, 14) // the last scale-up

	f = newFeeder(t)
	f.rules.MaxWorkers = 40
	f.global.RateLimit = 100
	require.Len(t, flap(f), 12, "one scale-up per 5 minute cooldown in an hour")
	require.Equal(t, 14, f.obs.App.Workers)

	g := newFeeder(t)
	for g.now.Before(t0.Add(time.Hour)) {
		g.fire(g.alert(intent.Restart, 0))
		g.step(30 * time.Second)
	}
	require.Equal(t, DefaultBudget, g.acted(intent.Restart))
	require.True(t, g.st.App("shop").CircuitOpen)
}

// D2: "need more workers" sustained for two hours, as Alertmanager sends
// it (the first notification, retries, an HA peer, repeat_interval
// re-sends of the same alert): the count rises one worker at a time, each
// once the key's TTL and the cooldown are over, to max_workers and never
// beyond.
func TestSustainedNeedAtMax(t *testing.T) {
	f := newFeeder(t)
	f.rules.MaxWorkers = 5
	a := f.alert(intent.ScaleUp, 0)
	for f.now.Before(t0.Add(2 * time.Hour)) {
		f.fire(a) // the repeat_interval re-send, or its retries
		f.step(20 * time.Second)
		f.fire(a)
		f.step(20 * time.Second)
	}
	require.Equal(t, 5, f.obs.App.Workers)
	require.Equal(t, 3, f.acted(intent.ScaleUp))
	last := f.log[len(f.log)-1]
	want(t, last, intent.OutcomeDeduplicated, 2)
	f.step(DefaultKeyTTL)
	want(t, f.fire(a), intent.OutcomeOutOfBounds, 11)
	require.Equal(t, 5, f.st.App("shop").Desired)
}

// D3: "too many workers" sustained: TTOU stops at min_workers, not at
// Gunicorn's floor of 1.
func TestSustainedScaleDownAtMin(t *testing.T) {
	f := newFeeder(t)
	f.rules.MinWorkers, f.rules.MaxWorkers = 3, 8
	f.obs.App.Workers = 7
	for f.now.Before(t0.Add(3 * time.Hour)) {
		f.fire(f.alert(intent.ScaleDown, 0))
		f.step(time.Minute)
	}
	require.Equal(t, 3, f.obs.App.Workers)
	require.Equal(t, 4, f.acted(intent.ScaleDown))
	want(t, f.log[len(f.log)-1], intent.OutcomeOutOfBounds, 11)
}

// D4: a restart storm (the alert keeps firing after each restart) stops at
// the budget with the circuit open, and nothing restarts until a person
// resets it.
func TestRestartStormOpensCircuit(t *testing.T) {
	f := newFeeder(t)
	for f.now.Before(t0.Add(6 * time.Hour)) {
		f.fire(f.alert(intent.Restart, 0)) // a new alert after each restart
		f.step(time.Minute)
	}
	require.Equal(t, 2, f.acted(intent.Restart))
	as := f.st.App("shop")
	require.True(t, as.CircuitOpen)
	exhausted := 0
	for _, d := range f.log {
		if d.Outcome == intent.OutcomeBudgetExhausted {
			exhausted++
		}
	}
	require.Equal(t, 1, exhausted, "the budget is exhausted once; then the circuit is open")
	want(t, f.log[len(f.log)-1], intent.OutcomeCircuitOpen, 5)

	ResetCircuit(&f.st, "shop")
	want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeActed, 16)
}

// D5: a HUP after two TTINs resets Gunicorn to --workers; the next
// scale-up counts from the observed count, and Reconcile re-applies the
// desired count one worker at a time.
func TestHUPAfterTTINs(t *testing.T) {
	f := newFeeder(t)
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeActed, 16)
	f.step(DefaultCooldown)
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeActed, 16)
	require.Equal(t, 4, f.obs.App.Workers)
	_, ok := f.reconcile()
	require.False(t, ok, "nothing to re-apply before a reset")

	// Someone (a deploy, logrotate) sends HUP.
	f.step(time.Minute)
	f.obs.App.Workers, f.obs.App.LastReload = 2, f.now

	d := Decide(f.now.Add(DefaultCooldown), f.alert(intent.ScaleUp, 0), f.rules, f.global, f.st, f.obs)
	require.Equal(t, 3, d.Target, "from the observed 2, not the desired 4")

	d, ok = f.reconcile()
	require.True(t, ok)
	want(t, d, intent.OutcomeActed, 16)
	require.Equal(t, intent.ScaleUp, d.Action)
	require.Equal(t, 3, d.Target)
	require.True(t, d.Reconcile)
	require.Empty(t, d.Key)
	d, ok = f.reconcile()
	require.True(t, ok)
	require.Equal(t, 4, d.Target)
	_, ok = f.reconcile()
	require.False(t, ok, "the desired count is back")
	require.Equal(t, 4, f.obs.App.Workers)

	// A new master (a restart) resets the count too.
	f.step(time.Hour)
	want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeActed, 16)
	require.Equal(t, 2, f.obs.App.Workers)
	d, ok = f.reconcile()
	require.True(t, ok)
	want(t, d, intent.OutcomeActed, 16)

	// Re-applying obeys the guard and the bounds of today's rules.
	f.obs.Refusal = intent.RefuseDBSaturated
	d, ok = f.reconcile()
	require.True(t, ok)
	want(t, d, intent.OutcomeRefused, 12)
	f.obs.Refusal = ""
	f.rules.MaxWorkers = 3
	d, ok = f.reconcile()
	require.True(t, ok)
	want(t, d, intent.OutcomeOutOfBounds, 11)
}

// D6: a scale-up and a restart for the same app at once: while the
// restart is queued or in flight the scale is superseded; a scale alert
// from before the restart is then in its grace; a restart asked for after
// a scale acted is not held back.
func TestConcurrentScaleAndRestart(t *testing.T) {
	f := newFeeder(t)
	up, restart := f.alert(intent.ScaleUp, time.Minute), f.alert(intent.Restart, time.Minute)

	f.obs.Pending = []intent.Action{intent.Restart}
	want(t, f.fire(up), intent.OutcomeSuperseded, 6)
	f.obs.Pending = []intent.Action{intent.ScaleUp}
	want(t, f.fire(restart), intent.OutcomeActed, 16)
	f.obs.Pending = nil

	up2 := up
	up2.Fingerprint += "-peer" // an HA peer's copy: another key
	want(t, f.fire(up2), intent.OutcomeGrace, 8)

	g := newFeeder(t)
	want(t, g.fire(g.alert(intent.ScaleUp, time.Minute)), intent.OutcomeActed, 16)
	want(t, g.fire(g.alert(intent.Restart, time.Minute)), intent.OutcomeActed, 16)
}

// D12: a TTIN that cannot take effect is an outcome, not a retry loop:
// the desired count falls back to what was observed, so Reconcile does not
// send it again after a reset, and the cooldown still holds.
func TestVerificationFailedIsNotRetried(t *testing.T) {
	f := newFeeder(t)
	f.verify = intent.OutcomeVerificationFailed
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeActed, 16)
	require.Equal(t, 2, f.obs.App.Workers)
	require.Equal(t, 2, f.st.App("shop").Desired)
	f.step(time.Minute)
	f.obs.App.LastReload = f.now
	_, ok := f.reconcile()
	require.False(t, ok)
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeCoolingDown, 7)

	f.verify = intent.OutcomeFailed // EPERM: workers unknown
	f.step(time.Hour)
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeActed, 16)
	f.obs.App.Workers = -1
	Settle(&f.st, f.log[len(f.log)-1], intent.OutcomeFailed, -1, f.now)
	require.Zero(t, f.st.App("shop").Desired)
}

// A HUP spawns the new generation before it stops the old one: a reset is
// never stepped down from while a worker boots, and, with --workers known,
// only from a count between it and the desired one, so the old and new
// generations together are never scaled down.
func TestReconcileWaitsForTheResetToSettle(t *testing.T) {
	for _, tc := range []struct {
		name                string
		configured, desired int
		workers, booting    int
		wantStep            bool
		wantAction          intent.Action
		wantTarget          int
	}{
		{"old and new generations together", 2, 3, 5, 0, false, "", 0},
		{"both generations, --workers unknown, new ones booting", 0, 3, 5, 2, false, "", 0},
		{"both generations, --workers unknown, all booted", 0, 3, 5, 0, true, intent.ScaleDown, 4},
		{"the new generation booting, below the desired count", 0, 3, 2, 2, true, intent.ScaleUp, 3},
		{"settled at --workers", 2, 3, 2, 0, true, intent.ScaleUp, 3},
		{"on the way to the desired count", 2, 4, 3, 0, true, intent.ScaleUp, 4},
		{"a reset down to the desired count, both generations", 4, 2, 6, 0, false, "", 0},
		{"a reset down, the new generation booting", 4, 2, 4, 4, false, "", 0},
		{"settled above the desired count", 4, 2, 4, 0, true, intent.ScaleDown, 3},
		{"--workers unknown", 0, 3, 2, 0, true, intent.ScaleUp, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t)
			f.rules.MaxWorkers, f.rules.MinWorkers = 6, 1
			a := f.st.App("shop")
			a.Desired, a.DesiredAt = tc.desired, f.now
			f.st.setApp("shop", a)
			f.step(time.Minute)
			f.obs.App.LastReload = f.now
			f.obs.App.ConfiguredWorkers, f.obs.App.Workers, f.obs.App.Booting = tc.configured, tc.workers, tc.booting
			d, ok := f.reconcile()
			require.Equal(t, tc.wantStep, ok, "%+v", d)
			if ok {
				want(t, d, intent.OutcomeActed, 16)
				require.Equal(t, tc.wantAction, d.Action)
				require.Equal(t, tc.wantTarget, d.Target)
			}
		})
	}
}
