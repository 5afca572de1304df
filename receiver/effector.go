package receiver

import (
	"context"
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
}

var _ Effector = Live{}

// Perform implements Effector.
func (l Live) Perform(ctx context.Context, d policy.Decision, app intent.AppView, unit string) Effect {
	probe := verify.ProcProbe(l.FS, verify.Fixed(app.Master))
	before, _ := probe(ctx) // a failed probe leaves before empty: a reload then needs all-new workers anyway
	res, err := l.Actuator.Perform(ctx, d.Action, actuator.Target{App: d.App, Master: app.Master, Unit: unit})
	if err != nil {
		o, why := actuator.Outcome(err)
		if o == intent.OutcomeActed {
			o = intent.OutcomeFailed
		}
		return Effect{Outcome: o, Refusal: why, Evidence: err.Error(), Workers: before.Workers}
	}
	switch {
	case res.KillSwitch:
		return Effect{Outcome: intent.OutcomeDryRun, Evidence: "the kill-switch file exists: nothing was sent", Workers: before.Workers}
	case res.DryRun:
		return Effect{Outcome: intent.OutcomeDryRun, Evidence: "dry-run: nothing was sent", Workers: before.Workers}
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
