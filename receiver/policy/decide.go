package policy

import (
	"fmt"
	"slices"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// Observed is what the host shows the engine just before a decision.
type Observed struct {
	// App is the host's view of the app (intent.Host.Lookup).
	App intent.AppView
	// Refusal and Evidence are the guard's answer for the alert's action
	// (intent.Guard.Check); "" when it has no objection.
	Refusal  intent.Refusal
	Evidence string
	// Pending are the actions queued or in flight for the same app, other
	// than the alert being decided (rule 6).
	Pending []intent.Action
}

// Decision is the outcome of one alert (or one Reconcile step) and what to
// perform. It is plain data: the audit log writes it as it is, one line per
// decision and one more for what became of an acted one (its
// verification), which repeats the decision's action, key, rule, reason,
// target and reconcile, names it in Verifies, and has its own time,
// outcome, refusal, evidence and worker count.
type Decision struct {
	// ID names this line of the audit log; the engine sets it (Decide and
	// Reconcile leave it empty).
	ID string `json:"id,omitempty"`
	// Verifies is, on a verification line, the ID of the acted decision
	// whose effect it records; empty on a decision.
	Verifies string         `json:"verifies,omitempty"`
	At       time.Time      `json:"at"`
	App      string         `json:"app"`
	Action   intent.Action  `json:"action"`
	Key      string         `json:"key,omitempty"` // "" for a Reconcile step
	Outcome  intent.Outcome `json:"outcome"`
	// Rule is the number of the rule in the package doc that decided.
	Rule int `json:"rule"`
	// Refusal is set for OutcomeRefused.
	Refusal intent.Refusal `json:"refusal,omitempty"`
	// Reason says why, for people (the audit log, the timeline).
	Reason string `json:"reason"`
	// Evidence is the guard's evidence for a refusal, or on a verification
	// line what the verification saw.
	Evidence string `json:"evidence,omitempty"`
	// Workers is the worker count observed when deciding (-1 unknown), or
	// on a verification line the count seen last by the verification.
	// Target is the count a scale must reach (the decision's Workers ± 1;
	// a dry_run keeps the one it would have reached), 0 for reload and
	// restart and for a scale that does not act.
	Workers int `json:"workers"`
	Target  int `json:"target,omitempty"`
	// Reconcile is set for a step of Reconcile (re-applying the desired
	// count after a HUP or a new master).
	Reconcile bool `json:"reconcile,omitempty"`
}

// Perform reports whether the actuator should act on d.
func (d Decision) Perform() bool { return d.Outcome == intent.OutcomeActed }

// Decide applies the precedence documented on the package to alert a of
// the app the rules r are for, at now. It reads st and never changes it:
// record the decision with Apply.
func Decide(now time.Time, a intent.Alert, r Rules, g Global, st State, obs Observed) Decision {
	r, g = r.WithDefaults(), g.WithDefaults()
	d := Decision{At: now, App: a.App, Action: a.Action, Key: a.Key(), Workers: obs.App.Workers}
	if obs.App.Name != "" && obs.App.Name != a.App {
		return d.out(1, intent.OutcomeIgnored, fmt.Sprintf("the host's view is of app %q", obs.App.Name))
	}
	if !a.Firing() {
		return d.out(1, intent.OutcomeIgnored, "the alert is "+a.Status+", only firing alerts act")
	}
	if rank(a.Action) == 0 {
		return d.out(1, intent.OutcomeIgnored, fmt.Sprintf("no such action %q", a.Action))
	}
	if exp, ok := st.Keys[d.Key]; ok && now.Before(exp) {
		return d.out(2, intent.OutcomeDeduplicated, "this alert was decided before (key kept until "+stamp(exp)+")")
	}
	if !r.Allows(a.Action) {
		return d.out(3, intent.OutcomeNotAllowed, fmt.Sprintf("the app allows only %v", r.Allow))
	}
	as := st.App(a.App)
	if as.Paused {
		return d.out(4, intent.OutcomePaused, "remediation of the app is paused")
	}
	if as.CircuitOpen {
		return d.out(5, intent.OutcomeCircuitOpen, "the circuit opened at "+stamp(as.CircuitSince)+" and stays open until reset")
	}
	if rank(a.Action) < rank(intent.Restart) && slices.Contains(obs.Pending, intent.Restart) {
		return d.out(6, intent.OutcomeSuperseded, "a restart of the app is queued or in flight")
	}
	if w := failSafeWindow(a.Action, r); !st.FailSafeSince.IsZero() && now.Sub(st.FailSafeSince) < w {
		return d.out(7, intent.OutcomeCoolingDown, "the saved state was corrupt at "+stamp(st.FailSafeSince)+
			": cooling down until "+stamp(st.FailSafeSince.Add(w)))
	}
	if last, ok := as.LastActed[a.Action]; ok && now.Sub(last) < r.Cooldown {
		return d.out(7, intent.OutcomeCoolingDown, fmt.Sprintf("%s acted at %s: cooling down until %s",
			a.Action, stamp(last), stamp(last.Add(r.Cooldown))))
	}
	if by, at, ok := inGrace(as, a, r, now); ok {
		return d.out(8, intent.OutcomeGrace, fmt.Sprintf("the alert started at %s, before %s acted at %s (grace until %s)",
			stamp(a.StartsAt), by, stamp(at), stamp(at.Add(r.Grace))))
	}
	if a.Action == intent.ScaleDown {
		last := later(as.ScaleUpWanted, as.LastActed[intent.ScaleUp])
		if !last.IsZero() && now.Sub(last) < r.Stabilization {
			return d.out(9, intent.OutcomeStabilizing, "a scale-up was wanted at "+stamp(last)+
				": no scale-down until "+stamp(last.Add(r.Stabilization)))
		}
	}
	return d.gate(a.Action, r, g, st, as, obs, now)
}

// gate applies rules 10 to 16, which Decide and Reconcile share.
func (d Decision) gate(act intent.Action, r Rules, g Global, st State, as AppState, obs Observed, now time.Time) Decision {
	v := obs.App
	if v.Unsettled != "" {
		d.Evidence = v.Unsettled
		return d.out(10, intent.OutcomeUnsettled, "the live worker count did not settle in any of its reads: nothing decided, the next notification decides again")
	}
	if !v.DataFresh || v.Workers < 0 {
		return d.refuse(10, intent.RefuseNoData, "the app's logs or /proc are not being read")
	}
	if act != intent.Restart && v.Master.PID <= 1 {
		return d.refuse(10, intent.RefuseMasterUnverified, "no verified master is known")
	}
	switch act {
	case intent.ScaleUp:
		if v.Workers >= r.MaxWorkers {
			return d.out(11, intent.OutcomeOutOfBounds, fmt.Sprintf("%d workers, max_workers is %d", v.Workers, r.MaxWorkers))
		}
		d.Target = v.Workers + 1
	case intent.ScaleDown:
		if v.Workers <= r.MinWorkers || v.Workers <= 1 {
			return d.out(11, intent.OutcomeOutOfBounds, fmt.Sprintf("%d workers, min_workers is %d", v.Workers, r.MinWorkers))
		}
		d.Target = v.Workers - 1
	}
	if obs.Refusal != "" {
		d.Target = 0
		d.Evidence = obs.Evidence
		return d.refuse(12, obs.Refusal, "the host's state says it would not help or would hurt")
	}
	if act == intent.Reload || act == intent.Restart {
		if n := count(as.Spent, now, r.BudgetWindow); n >= r.Budget {
			d.Target = 0
			return d.out(13, intent.OutcomeBudgetExhausted, fmt.Sprintf("%d reloads/restarts in the last %s (budget %d): the circuit opens",
				n, r.BudgetWindow, r.Budget))
		}
	}
	if n := count(st.Acted, now, g.RateWindow); n >= g.RateLimit {
		d.Target = 0
		return d.out(14, intent.OutcomeRateLimited, fmt.Sprintf("%d actions on this host in the last %s (limit %d)", n, g.RateWindow, g.RateLimit))
	}
	if g.DryRun {
		return d.out(15, intent.OutcomeDryRun, "dry-run: would have acted")
	}
	return d.out(16, intent.OutcomeActed, "every rule allows it")
}

// Apply records d in st, as the package doc says under "What is
// remembered". Call it once per decision, before the actuator runs, and
// save st durably.
func Apply(st *State, d Decision, r Rules, g Global) {
	r, g = r.WithDefaults(), g.WithDefaults()
	if d.Outcome == intent.OutcomeIgnored {
		return
	}
	pruneKeys(st, g, d.At)
	// An unsettled decision decided nothing: its key is not kept, so the
	// same alert re-sent is decided again.
	if d.Key != "" && d.Outcome != intent.OutcomeDeduplicated && d.Outcome != intent.OutcomeUnsettled {
		if st.Keys == nil {
			st.Keys = make(map[string]time.Time)
		}
		st.Keys[d.Key] = d.At.Add(g.KeyTTL)
		capKeys(st, g.MaxKeys)
	}
	a := st.App(d.App)
	// Only this app's spent budget is pruned, with its own window: another
	// app's may be longer.
	a.Spent = within(a.Spent, d.At, r.BudgetWindow)
	if d.Action == intent.ScaleUp && !d.Reconcile {
		a.ScaleUpWanted = later(a.ScaleUpWanted, d.At)
	}
	switch d.Outcome {
	case intent.OutcomeBudgetExhausted:
		a.CircuitOpen, a.CircuitSince = true, d.At
	case intent.OutcomeActed:
		st.Acted = append(st.Acted, d.At)
		if !d.Reconcile {
			if a.LastActed == nil {
				a.LastActed = make(map[intent.Action]time.Time)
			}
			a.LastActed[d.Action] = d.At
		}
		if d.Action == intent.Reload || d.Action == intent.Restart {
			a.Spent = append(a.Spent, d.At)
		}
		switch {
		case d.Target > 0 && !d.Reconcile:
			a.Desired, a.DesiredAt = d.Target, d.At
		case d.Target > 0 && d.Target == a.Desired:
			// The last step back to the desired count: the reset is
			// handled, and a later change that is not a reset (a
			// person's TTOU) is not undone.
			a.DesiredAt = d.At
		}
	}
	st.setApp(d.App, a)
}

// Settle records what verification found for an acted decision d:
// outcome is intent.OutcomeVerified, OutcomeVerificationFailed or
// OutcomeFailed, and workers the worker count observed then (-1 unknown).
// A scale that did not take effect sets the desired count to what was
// observed, so nothing retries it; a verified one keeps d.Target.
func Settle(st *State, d Decision, outcome intent.Outcome, workers int, now time.Time) {
	if d.Target == 0 || outcome == intent.OutcomeVerified {
		return
	}
	a := st.App(d.App)
	if workers > 0 {
		a.Desired = workers
	} else {
		a.Desired = 0
	}
	a.DesiredAt = now
	st.setApp(d.App, a)
}

// Withdraw takes back what Apply recorded for the acted decision d when
// nothing was sent after all (intent.OutcomeUnsettled: the count it
// stepped from could not be confirmed just before the signal). It starts
// no cooldown or grace, spends no budget or rate limit, sets no desired
// count, and its key is forgotten, so the same alert re-sent is decided
// again. before is d's app as it was before Apply (AppState.Clone); only
// what Apply changed is restored, so a pause a person set meanwhile
// stays. The wanted scale-up stays too: it was wanted.
func Withdraw(st *State, d Decision, before AppState) {
	if d.Outcome != intent.OutcomeActed {
		return
	}
	if d.Key != "" {
		delete(st.Keys, d.Key)
	}
	st.Acted = dropOne(st.Acted, d.At)
	a := st.App(d.App)
	a.Spent = dropOne(a.Spent, d.At)
	if last, ok := before.LastActed[d.Action]; ok {
		if a.LastActed == nil {
			a.LastActed = make(map[intent.Action]time.Time)
		}
		a.LastActed[d.Action] = last
	} else {
		delete(a.LastActed, d.Action)
	}
	a.Desired, a.DesiredAt = before.Desired, before.DesiredAt
	st.setApp(d.App, a)
}

// dropOne removes one occurrence of t from ts.
func dropOne(ts []time.Time, t time.Time) []time.Time {
	if i := slices.IndexFunc(ts, t.Equal); i >= 0 {
		return slices.Delete(ts, i, i+1)
	}
	return ts
}

// Reconcile returns the next step back to the desired worker count of app
// after a HUP or a new master reset Gunicorn to its --workers, and false
// when there is nothing to do: the receiver never scaled the app, no reset
// happened since, the count is unknown (unreadable, or the live count
// unsettled: the next call looks again) or already the desired one, or it
// has not settled yet (a reload's two generations together). A step obeys
// rules 4, 5 and 10 to 16 (not cooldown or grace: it restores a count that
// was decided already). Record it with Apply.
func Reconcile(now time.Time, app string, r Rules, g Global, st State, obs Observed) (Decision, bool) {
	r, g = r.WithDefaults(), g.WithDefaults()
	as := st.App(app)
	v := obs.App
	if as.Desired == 0 || v.Workers < 0 || v.Workers == as.Desired {
		return Decision{}, false
	}
	// Gunicorn's log times have whole seconds: a HUP in the same second as
	// the scale that set DesiredAt is logged before it and must count. An
	// earlier HUP of that second cannot fake a reset, because the count is
	// then compared with the desired one (Workers == Desired above).
	since := as.DesiredAt.Truncate(time.Second)
	reset := !v.LastReload.Before(since) && !v.LastReload.IsZero() || v.Master.StartTime.After(as.DesiredAt)
	if !reset {
		return Decision{}, false
	}
	if !settled(v, as.Desired) {
		return Decision{}, false
	}
	act := intent.ScaleUp
	if v.Workers > as.Desired {
		act = intent.ScaleDown
	}
	d := Decision{At: now, App: app, Action: act, Workers: v.Workers, Reconcile: true}
	switch {
	case as.Paused:
		return d.out(4, intent.OutcomePaused, "remediation of the app is paused"), true
	case as.CircuitOpen:
		return d.out(5, intent.OutcomeCircuitOpen, "the circuit opened at "+stamp(as.CircuitSince)+" and stays open until reset"), true
	}
	d = d.gate(act, r, g, st, as, obs, now)
	if d.Outcome == intent.OutcomeActed || d.Outcome == intent.OutcomeDryRun {
		d.Reason = fmt.Sprintf("a reset to %d workers since %s: re-applying %d", v.Workers, stamp(as.DesiredAt), as.Desired)
	}
	return d, true
}

// settled reports whether v's worker count is one a reset's re-apply may
// step from. A HUP spawns the new generation before it stops the old one,
// so for a while the count is both together, the new workers booting, and
// a scale-down from it would take Gunicorn below its --workers. So no step
// down is taken while a worker boots, and when the --workers a reset goes
// back to is known, only a count on the way from it to desired is stepped
// from. Any other count is looked at again at the next step, not acted
// on. A step up from a count a booting worker is part of may go ahead:
// a lingering old worker can only make it too high, and then the step
// fails its verification rather than overshooting.
func settled(v intent.AppView, desired int) bool {
	if v.Workers > desired && v.Booting > 0 {
		return false
	}
	if v.ConfiguredWorkers <= 0 {
		return true
	}
	lo, hi := min(v.ConfiguredWorkers, desired), max(v.ConfiguredWorkers, desired)
	return v.Workers >= lo && v.Workers <= hi
}

func (d Decision) out(rule int, o intent.Outcome, reason string) Decision {
	d.Rule, d.Outcome, d.Reason = rule, o, reason
	if o != intent.OutcomeActed && o != intent.OutcomeDryRun {
		d.Target = 0
	}
	return d
}

func (d Decision) refuse(rule int, why intent.Refusal, reason string) Decision {
	d = d.out(rule, intent.OutcomeRefused, reason)
	d.Refusal = why
	return d
}

// failSafeWindow is how long action a cools down after a corrupt state was
// found: one budget window for reloads and restarts, whose spent budget
// was lost, one cooldown for scaling.
func failSafeWindow(a intent.Action, r Rules) time.Duration {
	if a == intent.Reload || a == intent.Restart {
		return max(r.Cooldown, r.BudgetWindow)
	}
	return r.Cooldown
}

// inGrace reports the action of rank at least a's that acted less than the
// grace period ago, after the alert started.
func inGrace(as AppState, a intent.Alert, r Rules, now time.Time) (intent.Action, time.Time, bool) {
	for _, by := range intent.Actions {
		at, ok := as.LastActed[by]
		if !ok || rank(by) < rank(a.Action) {
			continue
		}
		if now.Sub(at) < r.Grace && a.StartsAt.Before(at) {
			return by, at, true
		}
	}
	return "", time.Time{}, false
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
