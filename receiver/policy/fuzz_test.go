package policy

import (
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// FuzzSafety drives the policy with an arbitrary sequence of alerts,
// duplicates, clock steps, HUPs, guard refusals, pauses and reconcile
// steps, and checks the promises that hold whatever happens:
//   - a scale's target is one worker from the observed count and inside
//     [min_workers, max_workers] (or moves toward them);
//   - two acted decisions of one action are at least a cooldown apart;
//   - reloads and restarts acted in any budget window never exceed the
//     budget, and nothing acts once the circuit is open;
//   - actions on the host in any rate window never exceed the rate limit;
//   - nothing acts while paused, in dry-run, or refused.
func FuzzSafety(f *testing.F) {
	f.Add([]byte{0, 5, 0, 5, 4, 5, 1, 5, 2, 2, 3, 3, 7, 6, 7})
	f.Add([]byte{3, 200, 3, 200, 3, 200, 3, 200, 2, 100, 2, 100})
	f.Add([]byte{0, 40, 0, 40, 0, 40, 6, 9, 7, 1, 7, 1, 7, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		fd := newFeeder(t)
		fd.rules.MinWorkers, fd.rules.MaxWorkers = 2, 6
		var last intent.Alert
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			before := len(fd.log)
			workers := fd.obs.App.Workers
			switch op % 10 {
			case 0, 1, 2, 3:
				last = fd.alert(intent.Actions[op%4], time.Duration(arg%20)*time.Minute)
				fd.fire(last)
			case 4:
				if last.App != "" {
					fd.fire(last)
				}
			case 5:
				fd.step(time.Duration(arg) * 10 * time.Second)
			case 6:
				if arg%2 == 0 {
					fd.obs.App.Workers, fd.obs.App.LastReload = fd.obs.App.ConfiguredWorkers, fd.now
				} else {
					fd.obs.App.Workers = int(arg % 9)
				}
			case 7:
				fd.reconcile()
			case 8:
				fd.obs.Refusal = []intent.Refusal{"", intent.RefuseCPUSaturated, intent.RefuseNoData}[arg%3]
			case 9:
				switch arg % 4 {
				case 0:
					Pause(&fd.st, "shop")
				case 1:
					Resume(&fd.st, "shop")
				case 2:
					fd.global.DryRun = !fd.global.DryRun
				case 3:
					fd.obs.App.DataFresh = !fd.obs.App.DataFresh
				}
			}
			if len(fd.log) > before {
				checkStep(t, fd, fd.log[len(fd.log)-1], workers)
			}
		}
		checkHistory(t, fd)
	})
}

// checkStep checks one decision against the state just before it.
func checkStep(t *testing.T, f *feeder, d Decision, workers int) {
	t.Helper()
	if !d.Perform() {
		return
	}
	if f.obs.Refusal != "" || f.global.DryRun || f.st.App("shop").Paused || !f.obs.App.DataFresh {
		t.Fatalf("acted while refused, in dry-run, paused or without data: %+v", d)
	}
	switch d.Action {
	case intent.ScaleUp:
		if d.Target != workers+1 || d.Target > f.rules.MaxWorkers {
			t.Fatalf("scale-up from %d to %d (max %d)", workers, d.Target, f.rules.MaxWorkers)
		}
	case intent.ScaleDown:
		if d.Target != workers-1 || d.Target < f.rules.MinWorkers {
			t.Fatalf("scale-down from %d to %d (min %d)", workers, d.Target, f.rules.MinWorkers)
		}
	}
}

// checkHistory checks the windows over the whole log.
func checkHistory(t *testing.T, f *feeder) {
	t.Helper()
	r, g := f.rules.WithDefaults(), f.global.WithDefaults()
	lastBy := map[intent.Action]time.Time{}
	var acted, spent []time.Time
	open := false
	for _, d := range f.log {
		if d.Outcome == intent.OutcomeBudgetExhausted {
			open = true
		}
		if !d.Perform() {
			continue
		}
		if open {
			t.Fatalf("acted with the circuit open: %+v", d)
		}
		if at, ok := lastBy[d.Action]; ok && !d.Reconcile && d.At.Sub(at) < r.Cooldown {
			t.Fatalf("%s acted at %s and again at %s, inside the cooldown", d.Action, at, d.At)
		}
		if !d.Reconcile {
			lastBy[d.Action] = d.At
		}
		acted = append(acted, d.At)
		if count(acted, d.At.Add(time.Nanosecond), g.RateWindow) > g.RateLimit {
			t.Fatalf("more than %d actions in %s at %s", g.RateLimit, g.RateWindow, d.At)
		}
		if d.Action == intent.Reload || d.Action == intent.Restart {
			spent = append(spent, d.At)
			if count(spent, d.At.Add(time.Nanosecond), r.BudgetWindow) > r.Budget {
				t.Fatalf("more than %d reloads/restarts in %s at %s", r.Budget, r.BudgetWindow, d.At)
			}
		}
	}
}
