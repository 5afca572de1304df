package incident

import (
	"context"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

var _ intent.Guard = (*Engine)(nil)

// refusalOf maps the verdicts that refuse a scale-up onto their refusal.
var refusalOf = map[Cause]intent.Refusal{
	CauseDatabaseSlowQuery:     intent.RefuseVerdictDatabaseSlowQuery,
	CauseDatabaseLock:          intent.RefuseVerdictDatabaseLock,
	CauseDatabasePoolExhausted: intent.RefuseVerdictDatabasePoolExhausted,
	CauseMemoryOOM:             intent.RefuseVerdictMemoryOOM,
	CauseDeployRegression:      intent.RefuseVerdictDeployRegression,
}

// Check implements intent.Guard: the receiver asks it before acting. It
// steps the engine first, so the alert's own evidence is in. Its rules,
// first match wins:
//
//  1. Any action but scale_up, or no open incident for the app: the
//     Fallback's answer (today's Guard: data freshness, database, CPU and
//     memory checks).
//  2. The open incident's verdict is a database one, memory_oom or
//     deploy_regression: refused with the verdict-named refusal and the
//     incident's summary and advice as evidence.
//  3. cpu_bound on a saturated host: refused as verdict_cpu_bound.
//  4. Any other verdict (capacity, external_call, cpu_bound with CPU to
//     spare, unknown): the Fallback's answer, which checks the headroom
//     (CPU and memory); the policy checks the bounds.
func (e *Engine) Check(ctx context.Context, app string, a intent.Action) (intent.Refusal, string) {
	return e.check(ctx, app, a, e.opts.Fallback)
}

func (e *Engine) check(ctx context.Context, app string, a intent.Action, fallback intent.Guard) (intent.Refusal, string) {
	if a == intent.ScaleUp {
		e.Step(ctx)
		if v, ok := e.Verdict(app); ok {
			if r, ok := refusalForVerdict(v); ok {
				return r, refusalEvidence(e, app, v)
			}
		}
	}
	if fallback == nil {
		return "", ""
	}
	return fallback.Check(ctx, app, a)
}

// refusalForVerdict applies rules 2 and 3.
func refusalForVerdict(v Verdict) (intent.Refusal, bool) {
	if r, ok := refusalOf[v.Cause]; ok {
		return r, true
	}
	if v.Cause == CauseCPUBound && v.HostSaturated {
		return intent.RefuseVerdictCPUBound, true
	}
	return "", false
}

func refusalEvidence(e *Engine, app string, v Verdict) string {
	id := ""
	if inc, ok := e.Latest(app); ok {
		id = "incident " + inc.ID + ": "
	}
	s := id + string(v.Cause) + ": " + v.Summary
	if v.Advice != "" {
		s += " " + v.Advice
	}
	return s
}

// Guard returns the engine as an intent.Guard whose fallback is fallback
// instead of EngineOptions.Fallback: the receiver is built after the
// engine, with today's Guard as the fallback.
func (e *Engine) Guard(fallback intent.Guard) intent.Guard {
	return engineGuard{e: e, fallback: fallback}
}

type engineGuard struct {
	e        *Engine
	fallback intent.Guard
}

func (g engineGuard) Check(ctx context.Context, app string, a intent.Action) (intent.Refusal, string) {
	return g.e.check(ctx, app, a, g.fallback)
}
