package receiver

import (
	"context"
	"errors"
	"fmt"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/actuator"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/verify"
)

// Live is the Effector of a running receiver: receiver/actuator performs
// the action on the master the host verified, and receiver/verify waits
// for its effect in /proc.
type Live struct {
	Actuator *actuator.Actuator
	// FS is the /proc the effect is read from.
	FS procinfo.FS
	// Host finds the new master after a restart.
	Host   intent.Host
	Verify verify.Options
	// Settle is how the count a scale steps from is read, at decision
	// time and again just before the signal (verify.Settle; the zero
	// value reads every 50ms for at most 1s).
	Settle verify.SettleOptions
	// Probe, when set, replaces the /proc reads of app's master (a
	// scale's count and verification, a reload's); tests feed a sequence
	// of reads through it. nil reads FS.
	Probe func(app intent.AppView) verify.Probe
}

var _ Effector = Live{}

// Perform implements Effector.
func (l Live) Perform(ctx context.Context, d policy.Decision, app intent.AppView, unit string) Effect {
	probe := l.probe(app)
	scale := d.Action == intent.ScaleUp || d.Action == intent.ScaleDown
	// A failed probe leaves before with the master only: a reload then
	// needs all-new workers anyway, and the count seen is unknown.
	var before verify.Sample
	var berr error
	if scale {
		// The count is settled again, as at decision time: a single read
		// while a worker is being replaced is one short of what runs.
		var c verify.Settled
		c, berr = verify.Settle(ctx, probe, l.Settle)
		if errors.Is(berr, verify.ErrUnsettled) {
			return Effect{Outcome: intent.OutcomeUnsettled, Workers: -1, Evidence: fmt.Sprintf(
				"just before the signal: %v: nothing was sent", berr)}
		}
		before = c.Sample
	} else {
		before, berr = probe(ctx)
	}
	seen := before.Workers
	if berr != nil {
		seen = -1
	}
	if scale && berr == nil && before.Workers != d.Workers {
		// The settled count changed since the decision (someone else
		// signalled): d.Target is no longer one step from what runs, and
		// the workers already running could "verify" it.
		return Effect{Outcome: intent.OutcomeFailed, Workers: seen, Evidence: fmt.Sprintf(
			"/proc shows %d workers just before the signal, the decision stepped from %d: nothing was sent", before.Workers, d.Workers)}
	}
	res, err := l.Actuator.Perform(ctx, d.Action, actuator.Target{App: d.App, Master: app.Master, Unit: unit})
	if err != nil {
		o, why := actuator.Outcome(err)
		if o == intent.OutcomeActed {
			o = intent.OutcomeFailed
		}
		return Effect{Outcome: o, Refusal: why, Evidence: err.Error(), Workers: seen}
	}
	switch {
	case res.KillSwitch:
		return Effect{Outcome: intent.OutcomeDryRun, Evidence: "the kill-switch file exists: nothing was sent", Workers: seen}
	case res.DryRun:
		return Effect{Outcome: intent.OutcomeDryRun, Evidence: "dry-run: nothing was sent", Workers: seen}
	}
	var vr verify.Result
	switch d.Action {
	case intent.ScaleUp, intent.ScaleDown:
		vr, err = verify.WorkerCount(ctx, probe, d.Target, l.Verify)
	case intent.Reload:
		vr, err = verify.NewGeneration(ctx, probe, before, l.Verify)
	case intent.Restart:
		current := verify.ProcProbe(l.FS, func(context.Context) (procinfo.Identity, error) {
			v, ok := l.Host.Lookup(d.App)
			if !ok || v.Master.PID <= 1 {
				return procinfo.Identity{}, fmt.Errorf("no master of %s known yet", d.App)
			}
			return v.Master, nil
		})
		vr, err = verify.NewMaster(ctx, current, before, l.Verify)
	default:
		return Effect{Outcome: intent.OutcomeFailed, Evidence: fmt.Sprintf("no verification for %q", d.Action), Workers: -1}
	}
	if err != nil {
		return Effect{Outcome: intent.OutcomeVerificationFailed, Evidence: err.Error(), Workers: -1}
	}
	workers := -1
	if vr.LastErr == nil && vr.Polls > 0 {
		workers = vr.Last.Workers
	}
	return Effect{Outcome: vr.Outcome, Evidence: vr.Evidence, Workers: workers}
}

// Workers implements Effector: the live worker count of app's master in
// /proc, read as Perform's verification reads it, until it settled
// (verify.Settle); an error wraps verify.ErrUnsettled when it did not.
func (l Live) Workers(ctx context.Context, app intent.AppView) (verify.Settled, error) {
	return verify.Settle(ctx, l.probe(app), l.Settle)
}

func (l Live) probe(app intent.AppView) verify.Probe {
	if l.Probe != nil {
		return l.Probe(app)
	}
	return verify.ProcProbe(l.FS, verify.Fixed(app.Master))
}
