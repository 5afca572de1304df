package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// Rule 1.
func TestIgnored(t *testing.T) {
	f := newFeeder(t)
	resolved := f.alert(intent.ScaleUp, 0)
	resolved.Status = "resolved"
	want(t, f.fire(resolved), intent.OutcomeIgnored, 1)

	bogus := f.alert("rm -rf", 0)
	want(t, f.fire(bogus), intent.OutcomeIgnored, 1)

	other := f.alert(intent.ScaleUp, 0)
	other.App = "blog"
	want(t, f.fire(other), intent.OutcomeIgnored, 1)

	require.Empty(t, f.st.Keys, "an ignored alert records nothing")
	require.Empty(t, f.st.Apps)
	// A resolved alert did not count as a wanted scale-up: scale-down is
	// not held back by it.
	want(t, f.fire(f.alert(intent.ScaleDown, 0)), intent.OutcomeOutOfBounds, 11)
}

// Rule 2.
func TestDeduplicated(t *testing.T) {
	f := newFeeder(t)
	a := f.alert(intent.ScaleUp, time.Minute)
	want(t, f.fire(a), intent.OutcomeActed, 16)
	for range 3 { // retries and an HA peer
		f.step(10 * time.Second)
		want(t, f.fire(a), intent.OutcomeDeduplicated, 2)
	}
	require.Equal(t, 1, f.acted(intent.ScaleUp))
	require.True(t, f.st.Seen(a.Key(), f.now))

	// A refused alert is remembered too: its retries are one decision.
	f.obs.Refusal, f.obs.Evidence = intent.RefuseCPUSaturated, "cpu 100%"
	f.step(DefaultCooldown)
	b := f.alert(intent.ScaleUp, 0)
	want(t, f.fire(b), intent.OutcomeRefused, 12)
	want(t, f.fire(b), intent.OutcomeDeduplicated, 2)
	f.obs.Refusal, f.obs.Evidence = "", ""

	// After the key's TTL a repeat_interval re-send (same key) is decided
	// afresh, and acts since the cooldown is over (C3).
	f.step(DefaultKeyTTL)
	require.False(t, f.st.Seen(a.Key(), f.now))
	want(t, f.fire(a), intent.OutcomeActed, 16)
	require.Equal(t, 4, f.obs.App.Workers)
}

// Rule 3.
func TestNotAllowed(t *testing.T) {
	f := newFeeder(t)
	f.rules.Allow = nil // DefaultAllow: scaling only
	want(t, f.fire(f.alert(intent.Reload, 0)), intent.OutcomeNotAllowed, 3)
	want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeNotAllowed, 3)
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeActed, 16)
	f.rules.Allow = []intent.Action{intent.Restart}
	f.step(time.Hour)
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeNotAllowed, 3)
}

// Rule 4.
func TestPaused(t *testing.T) {
	f := newFeeder(t)
	Pause(&f.st, "shop")
	for _, act := range intent.Actions {
		want(t, f.fire(f.alert(act, 0)), intent.OutcomePaused, 4)
	}
	Resume(&f.st, "shop")
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeActed, 16)
}

// Rules 13 and 5: the budget opens the circuit; only a person closes it.
func TestBudgetOpensCircuit(t *testing.T) {
	f := newFeeder(t)
	want(t, f.fire(f.alert(intent.Reload, 0)), intent.OutcomeActed, 16)
	f.step(6 * time.Minute)
	want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeActed, 16)
	f.step(6 * time.Minute)
	d := f.fire(f.alert(intent.Reload, 0))
	want(t, d, intent.OutcomeBudgetExhausted, 13)
	require.True(t, f.st.App("shop").CircuitOpen)
	require.Equal(t, f.now, f.st.App("shop").CircuitSince)

	// Open for every action, long after the budget window.
	f.step(24 * time.Hour)
	for _, act := range intent.Actions {
		want(t, f.fire(f.alert(act, 0)), intent.OutcomeCircuitOpen, 5)
	}
	ResetCircuit(&f.st, "shop")
	want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeActed, 16)
}

// The budget counts within its window only: reloads 16 minutes apart never
// have more than 2 in any 30 minutes, so they never open the circuit.
func TestBudgetWindowSlides(t *testing.T) {
	f := newFeeder(t)
	for range 6 {
		want(t, f.fire(f.alert(intent.Reload, 0)), intent.OutcomeActed, 16)
		f.step(16 * time.Minute)
	}
	require.False(t, f.st.App("shop").CircuitOpen)
	require.LessOrEqual(t, len(f.st.App("shop").Spent), 2, "spent budget is pruned to the window")
}

// Rule 6 (D6 in part): a restart in flight supersedes scaling and
// reloading; the restart itself is not held back by a pending scale.
func TestSuperseded(t *testing.T) {
	f := newFeeder(t)
	f.obs.Pending = []intent.Action{intent.Restart}
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeSuperseded, 6)
	want(t, f.fire(f.alert(intent.Reload, 0)), intent.OutcomeSuperseded, 6)
	f.obs.Pending = []intent.Action{intent.ScaleUp, intent.Reload}
	want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeActed, 16)
}

// Rule 7: the cooldown is per (action, app) and backs the key, so an HA
// peer with another startsAt (another key) does not act twice (C4).
func TestCoolingDown(t *testing.T) {
	f := newFeeder(t)
	a := f.alert(intent.ScaleUp, time.Minute)
	want(t, f.fire(a), intent.OutcomeActed, 16)
	peer := a
	peer.StartsAt = a.StartsAt.Add(-15 * time.Second)
	f.step(15 * time.Second)
	want(t, f.fire(peer), intent.OutcomeCoolingDown, 7)
	f.step(DefaultCooldown - 15*time.Second - time.Nanosecond)
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeCoolingDown, 7)
	f.step(time.Nanosecond)
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeActed, 16)

	// Another action has a cooldown of its own.
	want(t, f.fire(f.alert(intent.Reload, 0)), intent.OutcomeActed, 16)
}

// Rule 7: a corrupt state file means every action cools down: scaling for
// one cooldown, reloads and restarts for one budget window.
func TestFailSafeCoolsDown(t *testing.T) {
	f := newFeeder(t)
	f.st = State{FailSafeSince: f.now}
	for _, act := range intent.Actions {
		want(t, f.fire(f.alert(act, 0)), intent.OutcomeCoolingDown, 7)
	}
	f.step(DefaultCooldown)
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeActed, 16)
	want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeCoolingDown, 7)
	f.step(DefaultBudgetWindow - DefaultCooldown)
	want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeActed, 16)
}

// Rule 8: after an action, alerts that started before it are ignored for
// the grace period, unless they ask for an action of a higher rank.
func TestGrace(t *testing.T) {
	f := newFeeder(t)
	f.rules.Cooldown = time.Minute // shorter than the grace, to see it
	want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeActed, 16)
	f.step(2 * time.Minute)

	stale := f.alert(intent.ScaleUp, 3*time.Minute) // started before the restart
	want(t, f.fire(stale), intent.OutcomeGrace, 8)
	staleRestart := f.alert(intent.Restart, 3*time.Minute)
	want(t, f.fire(staleRestart), intent.OutcomeGrace, 8)
	fresh := f.alert(intent.ScaleUp, time.Minute) // started after it
	want(t, f.fire(fresh), intent.OutcomeActed, 16)

	// The grace ends: an old alert may act again.
	f.step(DefaultGrace)
	want(t, f.fire(f.alert(intent.ScaleUp, time.Hour)), intent.OutcomeActed, 16)

	// A scale's grace does not hold back a reload or restart (D6: the
	// restart wins).
	want(t, f.fire(f.alert(intent.Restart, time.Hour)), intent.OutcomeActed, 16)
}

// Rule 9: no scale-down while a scale-up was wanted (even refused) in the
// stabilisation window.
func TestStabilizing(t *testing.T) {
	f := newFeeder(t)
	f.obs.App.Workers = 4 // at max: the scale-up is out of bounds, yet wanted
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeOutOfBounds, 11)
	f.step(DefaultStabilization - time.Second)
	want(t, f.fire(f.alert(intent.ScaleDown, 0)), intent.OutcomeStabilizing, 9)
	f.step(time.Second)
	d := f.fire(f.alert(intent.ScaleDown, 0))
	want(t, d, intent.OutcomeActed, 16)
	require.Equal(t, 3, d.Target)
}

// Rule 10: no data, no action, HPA style; a signal needs a verified master,
// a restart (through systemd) does not.
func TestNoData(t *testing.T) {
	tests := []struct {
		name   string
		view   func(v *intent.AppView)
		act    intent.Action
		reason intent.Refusal
	}{
		{"stale data", func(v *intent.AppView) { v.DataFresh = false }, intent.ScaleUp, intent.RefuseNoData},
		{"stale data, restart", func(v *intent.AppView) { v.DataFresh = false }, intent.Restart, intent.RefuseNoData},
		{"workers unknown", func(v *intent.AppView) { v.Workers = -1 }, intent.ScaleDown, intent.RefuseNoData},
		{"no master", func(v *intent.AppView) { v.Master = procinfo.Identity{} }, intent.ScaleUp, intent.RefuseMasterUnverified},
		{"pid 1", func(v *intent.AppView) { v.Master.PID = 1 }, intent.Reload, intent.RefuseMasterUnverified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFeeder(t)
			f.obs.App.Workers = 3
			tt.view(&f.obs.App)
			d := f.fire(f.alert(tt.act, 0))
			want(t, d, intent.OutcomeRefused, 10)
			require.Equal(t, tt.reason, d.Refusal)
			require.Zero(t, d.Target)
		})
	}
	f := newFeeder(t)
	f.obs.App.Master = procinfo.Identity{}
	want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeActed, 16)
}

// Rule 10: a live count that kept moving decides nothing. Nothing is
// remembered of it but the wanted scale-up: no key (the same alert re-sent
// is decided again), no cooldown, no desired count.
func TestUnsettled(t *testing.T) {
	for _, act := range []intent.Action{intent.ScaleUp, intent.ScaleDown} {
		t.Run(string(act), func(t *testing.T) {
			f := newFeeder(t)
			f.rules.Stabilization = time.Nanosecond
			f.obs.App.Workers, f.obs.App.Unsettled = -1, "3, 2 (1 exiting)"
			a := f.alert(act, 0)
			d := f.fire(a)
			want(t, d, intent.OutcomeUnsettled, 10)
			require.Equal(t, "3, 2 (1 exiting)", d.Evidence)
			require.Zero(t, d.Target)
			require.False(t, f.st.Seen(a.Key(), f.now), "no key kept")
			require.Empty(t, f.st.App("shop").LastActed)
			require.Empty(t, f.st.Acted)

			f.step(time.Second)
			f.obs.App.Workers, f.obs.App.Unsettled = 3, ""
			want(t, f.fire(a), intent.OutcomeActed, 16)
		})
	}
}

// Withdraw takes back exactly what Apply recorded for an acted decision
// that was not sent: the state is the one before it, but for the wanted
// scale-up (and a pause set meanwhile).
func TestWithdraw(t *testing.T) {
	f := newFeeder(t)
	f.rules.Cooldown = time.Minute
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeActed, 16) // 2 -> 3
	// Past the cooldown; the first decision's key and rate-limit entry
	// are kept.
	f.step(2 * time.Minute)
	before := cloneState(f.st)
	a := f.alert(intent.ScaleUp, 0)
	d := Decide(f.now, a, f.rules, f.global, f.st, f.obs)
	want(t, d, intent.OutcomeActed, 16)
	prev := f.st.App("shop").Clone()
	Apply(&f.st, d, f.rules, f.global)
	require.NotEqual(t, before, f.st)
	Pause(&f.st, "shop")
	Withdraw(&f.st, d, prev)

	expect := before
	s := expect.Apps["shop"]
	s.ScaleUpWanted, s.Paused = f.now, true
	expect.Apps["shop"] = s
	require.Equal(t, expect, f.st)
	Resume(&f.st, "shop")
	require.Equal(t, intent.OutcomeActed, Decide(f.now, a, f.rules, f.global, f.st, f.obs).Outcome, "decided again: no key, no cooldown")
}

// Rule 11, counted from the observed count.
func TestOutOfBounds(t *testing.T) {
	tests := []struct {
		name     string
		min, max int
		workers  int
		act      intent.Action
		target   int // 0: out of bounds
	}{
		{"up below max", 2, 4, 3, intent.ScaleUp, 4},
		{"up at max", 2, 4, 4, intent.ScaleUp, 0},
		{"up above max (someone sent TTIN)", 2, 4, 6, intent.ScaleUp, 0},
		{"down above min", 2, 4, 3, intent.ScaleDown, 2},
		{"down at min", 2, 4, 2, intent.ScaleDown, 0},
		{"down below min", 2, 4, 1, intent.ScaleDown, 0},
		{"down from above max", 2, 4, 6, intent.ScaleDown, 5},
		{"down at Gunicorn's floor", 1, 4, 1, intent.ScaleDown, 0},
		{"down to min 1", 1, 4, 2, intent.ScaleDown, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFeeder(t)
			f.rules.MinWorkers, f.rules.MaxWorkers = tt.min, tt.max
			f.obs.App.Workers = tt.workers
			d := Decide(f.now, f.alert(tt.act, 0), f.rules, f.global, f.st, f.obs)
			if tt.target == 0 {
				want(t, d, intent.OutcomeOutOfBounds, 11)
				require.Zero(t, d.Target)
				return
			}
			want(t, d, intent.OutcomeActed, 16)
			require.Equal(t, tt.target, d.Target)
			require.Equal(t, tt.workers, d.Workers)
		})
	}
}

// Rule 12: every reason the guard may give is a refusal with its evidence,
// and nothing is remembered but the key.
func TestGuardRefusals(t *testing.T) {
	for _, why := range []intent.Refusal{
		intent.RefuseNoData, intent.RefuseDBSaturated, intent.RefusePoolWaiting,
		intent.RefuseStuckOnDatabase, intent.RefuseCPUSaturated, intent.RefuseMemoryLow,
		intent.RefuseMasterUnverified,
	} {
		t.Run(string(why), func(t *testing.T) {
			f := newFeeder(t)
			f.obs.Refusal, f.obs.Evidence = why, "evidence for "+string(why)
			d := f.fire(f.alert(intent.ScaleUp, 0))
			want(t, d, intent.OutcomeRefused, 12)
			require.Equal(t, why, d.Refusal)
			require.Equal(t, "evidence for "+string(why), d.Evidence)
			require.Zero(t, d.Target)
			require.Empty(t, f.st.App("shop").LastActed)
			require.Empty(t, f.st.Acted)
			require.Zero(t, f.st.App("shop").Desired)
			require.Equal(t, 2, f.obs.App.Workers)
		})
	}
}

// Rule 14: the global rate limit counts actions on every app.
func TestRateLimited(t *testing.T) {
	g := Global{RateLimit: 2, RateWindow: time.Hour}
	r := Rules{MinWorkers: 1, MaxWorkers: 8}
	var st State
	now := t0
	decide := func(app string) Decision {
		obs := Observed{App: intent.AppView{Name: app, Master: procinfo.Identity{PID: 100}, Workers: 2, DataFresh: true}}
		a := intent.Alert{Fingerprint: app + now.String(), Status: "firing", StartsAt: now, Action: intent.ScaleUp, App: app}
		d := Decide(now, a, r, g, st, obs)
		Apply(&st, d, r, g)
		return d
	}
	want(t, decide("a"), intent.OutcomeActed, 16)
	want(t, decide("b"), intent.OutcomeActed, 16)
	want(t, decide("c"), intent.OutcomeRateLimited, 14)
	now = now.Add(59 * time.Minute)
	want(t, decide("c"), intent.OutcomeRateLimited, 14)
	now = now.Add(time.Minute)
	want(t, decide("c"), intent.OutcomeActed, 16)
}

// Rule 15: dry-run decides everything and remembers only the key, so
// turning it off inherits no cooldown or circuit.
func TestDryRun(t *testing.T) {
	f := newFeeder(t)
	f.global.DryRun = true
	a := f.alert(intent.ScaleUp, 0)
	d := f.fire(a)
	want(t, d, intent.OutcomeDryRun, 15)
	require.Equal(t, 3, d.Target, "a dry run shows what would be done")
	require.False(t, d.Perform())
	want(t, f.fire(a), intent.OutcomeDeduplicated, 2)
	for range 5 {
		want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeDryRun, 15)
	}
	require.Equal(t, 2, f.obs.App.Workers)
	require.False(t, f.st.App("shop").CircuitOpen)
	require.Empty(t, f.st.App("shop").LastActed)

	f.global.DryRun = false
	want(t, f.fire(f.alert(intent.Restart, 0)), intent.OutcomeActed, 16)
	// A refusal still wins over dry-run: the dry run shows the real answer.
	f.global.DryRun = true
	f.obs.Refusal = intent.RefuseMemoryLow
	f.step(time.Hour)
	want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeRefused, 12)
}

// Rule 16.
func TestActed(t *testing.T) {
	f := newFeeder(t)
	d := f.fire(f.alert(intent.ScaleUp, 0))
	want(t, d, intent.OutcomeActed, 16)
	require.True(t, d.Perform())
	require.Equal(t, Decision{At: t0, App: "shop", Action: intent.ScaleUp, Key: d.Key, Outcome: intent.OutcomeActed,
		Rule: 16, Reason: "every rule allows it", Workers: 2, Target: 3}, d)
	as := f.st.App("shop")
	require.Equal(t, 3, as.Desired)
	require.Equal(t, t0, as.DesiredAt)
	require.Equal(t, t0, as.LastActed[intent.ScaleUp])
	require.Equal(t, []time.Time{t0}, f.st.Acted)

	r := f.fire(f.alert(intent.Reload, 0))
	want(t, r, intent.OutcomeActed, 16)
	require.Zero(t, r.Target)
	require.Equal(t, []time.Time{t0}, f.st.App("shop").Spent)
}

// Each rule wins over the ones after it: a state where every rule matches
// is decided by rule 2, and removing the cause of each rule in turn hands
// the decision to the next.
func TestPrecedence(t *testing.T) {
	f := newFeeder(t)
	a := f.alert(intent.ScaleDown, time.Hour)
	st := State{
		Keys:          map[string]time.Time{a.Key(): t0.Add(time.Minute)},
		Acted:         []time.Time{t0.Add(-time.Minute)},
		FailSafeSince: t0,
		Apps: map[string]AppState{"shop": {
			Paused: true, CircuitOpen: true,
			LastActed:     map[intent.Action]time.Time{intent.ScaleDown: t0.Add(-time.Minute), intent.Reload: t0.Add(-time.Minute)},
			ScaleUpWanted: t0.Add(-time.Minute),
		}},
	}
	r := Rules{MinWorkers: 2, MaxWorkers: 4, Allow: []intent.Action{intent.ScaleUp}}
	g := Global{RateLimit: 1}
	obs := Observed{App: f.obs.App, Pending: []intent.Action{intent.Restart}, Refusal: intent.RefuseCPUSaturated}
	obs.App.Workers, obs.App.DataFresh = 2, false
	obs.App.Unsettled = "3, 2 (1 exiting)"
	steps := []struct {
		rule int
		o    intent.Outcome
		fix  func()
	}{
		{2, intent.OutcomeDeduplicated, func() { delete(st.Keys, a.Key()) }},
		{3, intent.OutcomeNotAllowed, func() { r.Allow = nil }},
		{4, intent.OutcomePaused, func() { Resume(&st, "shop") }},
		{5, intent.OutcomeCircuitOpen, func() { ResetCircuit(&st, "shop") }},
		{6, intent.OutcomeSuperseded, func() { obs.Pending = nil }},
		{7, intent.OutcomeCoolingDown, func() { st.FailSafeSince = time.Time{} }},
		{7, intent.OutcomeCoolingDown, func() { delete(st.Apps["shop"].LastActed, intent.ScaleDown) }},
		{8, intent.OutcomeGrace, func() { delete(st.Apps["shop"].LastActed, intent.Reload) }},
		{9, intent.OutcomeStabilizing, func() { s := st.Apps["shop"]; s.ScaleUpWanted = time.Time{}; st.Apps["shop"] = s }},
		{10, intent.OutcomeUnsettled, func() { obs.App.Unsettled = "" }},
		{10, intent.OutcomeRefused, func() { obs.App.DataFresh = true }},
		{11, intent.OutcomeOutOfBounds, func() { obs.App.Workers = 3 }},
		{12, intent.OutcomeRefused, func() { obs.Refusal = "" }},
		{14, intent.OutcomeRateLimited, func() { g.DryRun = true; st.Acted = nil }},
		{15, intent.OutcomeDryRun, func() { g.DryRun = false }},
		{16, intent.OutcomeActed, func() {}},
	}
	for _, s := range steps {
		d := Decide(t0, a, r, g, st, obs)
		want(t, d, s.o, s.rule)
		s.fix()
	}
	// Rule 13 sits between 12 and 14 for reloads and restarts.
	rl := f.alert(intent.Reload, 0)
	r.Allow = []intent.Action{intent.Reload}
	s := st.Apps["shop"]
	s.Spent = []time.Time{t0.Add(-time.Minute), t0.Add(-2 * time.Minute)}
	st.Apps["shop"] = s
	st.Acted = []time.Time{t0}
	want(t, Decide(t0, rl, r, g, st, obs), intent.OutcomeBudgetExhausted, 13)
}

func TestDecideDoesNotChangeState(t *testing.T) {
	f := newFeeder(t)
	f.fire(f.alert(intent.ScaleUp, 0))
	before := cloneState(f.st)
	for _, act := range intent.Actions {
		Decide(f.now.Add(time.Hour), f.alert(act, 0), f.rules, f.global, f.st, f.obs)
	}
	require.Equal(t, before, f.st)
}

func cloneState(s State) State {
	out := s
	out.Keys = map[string]time.Time{}
	for k, v := range s.Keys {
		out.Keys[k] = v
	}
	out.Acted = append([]time.Time(nil), s.Acted...)
	out.Apps = map[string]AppState{}
	for k, a := range s.Apps {
		c := a
		c.LastActed = map[intent.Action]time.Time{}
		for x, y := range a.LastActed {
			c.LastActed[x] = y
		}
		c.Spent = append([]time.Time(nil), a.Spent...)
		out.Apps[k] = c
	}
	return out
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		r    Rules
		err  error
	}{
		{"defaults need bounds", Rules{}, ErrBoundsMissing},
		{"max only", Rules{MaxWorkers: 4}, ErrBoundsMissing},
		{"min above max", Rules{MinWorkers: 5, MaxWorkers: 4}, ErrBounds},
		{"negative min", Rules{MinWorkers: -1, MaxWorkers: 4}, ErrBounds},
		{"unknown action", Rules{Allow: []intent.Action{"kill"}}, ErrUnknownAction},
		{"negative cooldown", Rules{MinWorkers: 1, MaxWorkers: 2, Cooldown: -time.Second}, ErrNegative},
		{"negative budget", Rules{MinWorkers: 1, MaxWorkers: 2, Budget: -1}, ErrNegative},
		{"restart only needs no bounds", Rules{Allow: []intent.Action{intent.Restart}}, nil},
		{"ok", Rules{MinWorkers: 2, MaxWorkers: 2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			if tt.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.err)
		})
	}
	require.ErrorIs(t, Global{KeyTTL: -1}.Validate(), ErrNegative)
	require.NoError(t, Global{}.Validate())

	d := Rules{}.WithDefaults()
	require.Equal(t, Rules{Allow: DefaultAllow, Cooldown: DefaultCooldown, Stabilization: DefaultStabilization,
		Grace: DefaultGrace, Budget: DefaultBudget, BudgetWindow: DefaultBudgetWindow}, d)
	require.ErrorIs(t, Global{MaxKeys: -1}.Validate(), ErrNegative)
	require.Equal(t, Global{RateLimit: DefaultRateLimit, RateWindow: DefaultRateWindow, KeyTTL: DefaultKeyTTL, MaxKeys: DefaultMaxKeys},
		Global{}.WithDefaults())
}

// Each app's budget is counted in its own window: deciding for an app with
// a short window must not prune another app's spent budget.
func TestBudgetPerApp(t *testing.T) {
	g := Global{RateLimit: 100}
	long := Rules{Allow: []intent.Action{intent.Restart}, BudgetWindow: 2 * time.Hour, Budget: 1}
	short := Rules{Allow: []intent.Action{intent.Restart}, BudgetWindow: 10 * time.Minute, Budget: 1}
	var st State
	now := t0
	decide := func(app string, r Rules) Decision {
		obs := Observed{App: intent.AppView{Name: app, Workers: 2, DataFresh: true}}
		a := intent.Alert{Fingerprint: app + now.String(), Status: "firing", StartsAt: now, Action: intent.Restart, App: app}
		d := Decide(now, a, r, g, st, obs)
		Apply(&st, d, r, g)
		return d
	}
	want(t, decide("batch", long), intent.OutcomeActed, 16)
	now = now.Add(30 * time.Minute)
	want(t, decide("web", short), intent.OutcomeActed, 16)
	now = now.Add(30 * time.Minute)
	want(t, decide("batch", long), intent.OutcomeBudgetExhausted, 13)
	now = now.Add(30 * time.Minute)
	want(t, decide("web", short), intent.OutcomeActed, 16)

	Prune(&st, g, func(app string) Rules {
		if app == "batch" {
			return long
		}
		return short
	}, now)
	require.Len(t, st.App("batch").Spent, 1)
	require.Len(t, st.App("web").Spent, 1)
	require.Len(t, st.Keys, 1, "the keys older than 15 minutes expired")
}

// A flood of distinct alerts keeps at most MaxKeys keys, forgetting the
// oldest first, and the cooldown still stops a forgotten one from acting
// twice.
func TestMaxKeys(t *testing.T) {
	f := newFeeder(t)
	f.global.MaxKeys = 100
	first := f.alert(intent.ScaleUp, 0)
	want(t, f.fire(first), intent.OutcomeActed, 16)
	for range 1000 {
		f.step(time.Millisecond)
		want(t, f.fire(f.alert(intent.ScaleUp, 0)), intent.OutcomeCoolingDown, 7)
		require.LessOrEqual(t, len(f.st.Keys), 100)
	}
	require.GreaterOrEqual(t, len(f.st.Keys), 90)
	require.False(t, f.st.Seen(first.Key(), f.now), "the oldest key was forgotten")
	want(t, f.fire(first), intent.OutcomeCoolingDown, 7)
	require.Equal(t, 1, f.acted(intent.ScaleUp))
}
