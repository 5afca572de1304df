package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// feeder drives the policy the way the engine does (Decide, Apply, perform,
// Settle) on a fake clock and a simulated Gunicorn that obeys the
// receiver's actions: a scale moves to the decision's target, a reload
// (HUP) resets the count to --workers, a restart starts a new master with
// --workers.
type feeder struct {
	t      *testing.T
	now    time.Time
	rules  Rules
	global Global
	st     State
	obs    Observed
	// verify is what verification finds for an acted decision; "" means
	// the simulated Gunicorn obeys and verification succeeds.
	verify intent.Outcome
	seq    int
	log    []Decision
}

func newFeeder(t *testing.T) *feeder {
	return &feeder{
		t:   t,
		now: t0,
		rules: Rules{MinWorkers: 2, MaxWorkers: 4,
			Allow: []intent.Action{intent.ScaleUp, intent.ScaleDown, intent.Reload, intent.Restart}},
		obs: Observed{App: intent.AppView{
			Name:              "shop",
			Master:            procinfo.Identity{PID: 100, StartTime: t0.Add(-24 * time.Hour)},
			Workers:           2,
			SampledAt:         t0,
			ConfiguredWorkers: 2,
			DataFresh:         true,
		}},
	}
}

// alert returns a new firing alert (a fingerprint of its own) for act that
// started ago before now.
func (f *feeder) alert(act intent.Action, ago time.Duration) intent.Alert {
	f.seq++
	return intent.Alert{
		Fingerprint: fmt.Sprintf("%016x", f.seq),
		Alertname:   "GunicornWorkerTimeouts",
		Status:      "firing",
		StartsAt:    f.now.Add(-ago),
		Action:      act,
		App:         "shop",
	}
}

// fire decides a at now, records it, and performs it when it acts.
func (f *feeder) fire(a intent.Alert) Decision {
	f.t.Helper()
	d := Decide(f.now, a, f.rules, f.global, f.st, f.obs)
	f.record(d)
	return d
}

// reconcile runs one Reconcile step, if any.
func (f *feeder) reconcile() (Decision, bool) {
	d, ok := Reconcile(f.now, "shop", f.rules, f.global, f.st, f.obs)
	if ok {
		f.record(d)
	}
	return d, ok
}

func (f *feeder) record(d Decision) {
	f.t.Helper()
	if d.Outcome == "" || d.Rule == 0 || d.Reason == "" {
		f.t.Fatalf("decision without outcome, rule or reason: %+v", d)
	}
	if (d.Action == intent.ScaleUp && d.Target > f.rules.MaxWorkers) || (d.Action == intent.ScaleDown && d.Target != 0 && d.Target < f.rules.MinWorkers) {
		f.t.Fatalf("target %d beyond [%d, %d]: %+v", d.Target, f.rules.MinWorkers, f.rules.MaxWorkers, d)
	}
	Apply(&f.st, d, f.rules, f.global)
	f.log = append(f.log, d)
	if !d.Perform() {
		return
	}
	if f.verify != "" && f.verify != intent.OutcomeVerified {
		Settle(&f.st, d, f.verify, f.obs.App.Workers, f.now)
		return
	}
	v := &f.obs.App
	switch d.Action {
	case intent.ScaleUp, intent.ScaleDown:
		v.Workers = d.Target
	case intent.Reload:
		v.Workers, v.LastReload = v.ConfiguredWorkers, f.now
	case intent.Restart:
		v.Master = procinfo.Identity{PID: v.Master.PID + 1000, StartTime: f.now}
		v.Workers = v.ConfiguredWorkers
	}
	Settle(&f.st, d, intent.OutcomeVerified, v.Workers, f.now)
}

func (f *feeder) step(d time.Duration) { f.now = f.now.Add(d) }

// acted counts the acted decisions for act in the log.
func (f *feeder) acted(act intent.Action) int {
	n := 0
	for _, d := range f.log {
		if d.Action == act && d.Outcome == intent.OutcomeActed {
			n++
		}
	}
	return n
}

// want fails unless d has outcome o by rule.
func want(t *testing.T, d Decision, o intent.Outcome, rule int) {
	t.Helper()
	if d.Outcome != o || d.Rule != rule {
		t.Fatalf("got %s by rule %d (%s), want %s by rule %d", d.Outcome, d.Rule, d.Reason, o, rule)
	}
}
