// Package intent holds the plain data that flows through the remediation
// receiver, from the webhook to the audit log: the closed set of actions,
// one validated alert, and the closed set of decision outcomes. It has no
// dependencies so every stage (webhook → policy → actuator → verify →
// audit) can share it without importing another stage.
package intent

import (
	"strconv"
	"strings"
	"time"
)

// Action is what an alert may ask for, through its reflex_action label.
// Nothing else an alert carries (annotations, other labels) chooses what is
// done or to what.
type Action string

// The closed set of actions.
const (
	ScaleUp   Action = "scale_up"   // one more worker (TTIN to the verified master)
	ScaleDown Action = "scale_down" // one fewer worker (TTOU)
	Reload    Action = "reload"     // HUP: a new generation of workers
	Restart   Action = "restart"    // restart the configured systemd unit
)

// Actions lists every action, in a fixed order (metrics initialise a series
// per action).
var Actions = []Action{ScaleUp, ScaleDown, Reload, Restart}

// ParseAction maps a label value onto the closed set; ok is false for
// anything else.
func ParseAction(s string) (a Action, ok bool) {
	for _, a := range Actions {
		if string(a) == s {
			return a, true
		}
	}
	return "", false
}

// Alert is one alert of a webhook notification after validation: only what
// a decision may use. App names an app this host knows; Instance is the
// alert's instance (or configured host) label, "" when it carried none.
type Alert struct {
	Fingerprint string    `json:"fingerprint"`
	Alertname   string    `json:"alertname"`
	Status      string    `json:"status"` // "firing" or "resolved"
	StartsAt    time.Time `json:"starts_at"`
	Action      Action    `json:"action"`
	App         string    `json:"app"`
	Instance    string    `json:"instance,omitempty"`
}

// Firing reports whether the alert is firing; only firing alerts act.
func (a Alert) Firing() bool { return a.Status == "firing" }

// Key is the idempotency key of the alert's request: the same alert
// delivered again (Alertmanager retries, HA peers, repeat_interval re-sends)
// has the same key. It is recorded durably before anything is done.
func (a Alert) Key() string {
	var b strings.Builder
	b.WriteString(string(a.Action))
	b.WriteByte('|')
	b.WriteString(a.App)
	b.WriteByte('|')
	b.WriteString(a.Fingerprint)
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(a.StartsAt.UTC().UnixNano(), 10))
	return b.String()
}

// Outcome is what became of one alert: the closed set used in the audit
// log, the timeline and reflex_remediation_decisions_total{outcome}.
type Outcome string

// The closed set of outcomes.
const (
	OutcomeActed              Outcome = "acted"               // the action was performed (verification follows)
	OutcomeVerified           Outcome = "verified"            // its effect was seen
	OutcomeVerificationFailed Outcome = "verification_failed" // no effect before the deadline: an outcome, never a retry loop
	OutcomeDryRun             Outcome = "dry_run"             // would have acted; dry-run or kill switch
	OutcomeDeduplicated       Outcome = "deduplicated"        // same idempotency key seen before
	OutcomeCoolingDown        Outcome = "cooling_down"        // same (action, app) acted on too recently
	OutcomeOutOfBounds        Outcome = "out_of_bounds"       // at max_workers (scale up) or min_workers (scale down)
	OutcomeRefused            Outcome = "refused"             // the host's state says it would not help or would hurt
	OutcomeBudgetExhausted    Outcome = "budget_exhausted"    // reload/restart budget used up: the circuit opens
	OutcomeCircuitOpen        Outcome = "circuit_open"        // open until a person resets it
	OutcomeNotAllowed         Outcome = "not_allowed"         // the app's allow: list does not permit the action
	OutcomePaused             Outcome = "paused"              // a person paused remediation of the app
	OutcomeRateLimited        Outcome = "rate_limited"        // the global rate limit
	OutcomeGrace              Outcome = "grace"               // the alert started before the last action's grace ended
	OutcomeStabilizing        Outcome = "stabilizing"         // scale-down inside the window after a scale-up
	OutcomeIgnored            Outcome = "ignored"             // resolved, unknown app, another host, no action label
	OutcomeFailed             Outcome = "failed"              // the action could not be performed (EPERM, gone master)
	OutcomeSuperseded         Outcome = "superseded"          // a restart of the same app is queued or in flight: it wins
	OutcomeUnsettled          Outcome = "unsettled"           // the live worker count kept moving: nothing decided or sent, a re-send decides again
)

// Outcomes lists every outcome, in a fixed order.
var Outcomes = []Outcome{
	OutcomeActed, OutcomeVerified, OutcomeVerificationFailed, OutcomeDryRun, OutcomeDeduplicated,
	OutcomeCoolingDown, OutcomeOutOfBounds, OutcomeRefused, OutcomeBudgetExhausted, OutcomeCircuitOpen,
	OutcomeNotAllowed, OutcomePaused, OutcomeRateLimited, OutcomeGrace, OutcomeStabilizing, OutcomeIgnored,
	OutcomeFailed, OutcomeSuperseded, OutcomeUnsettled,
}

// Refusal names why the host's own state says an action would not help or
// would hurt ("never make it worse"). "" means no objection.
type Refusal string

// The closed set of refusal reasons.
const (
	RefuseNoData           Refusal = "no_data"           // the app's logs or /proc are not being read: do nothing
	RefuseDBSaturated      Refusal = "db_saturated"      // the app's PostgreSQL is near max_connections
	RefusePoolWaiting      Refusal = "pool_waiting"      // its PgBouncer pool has clients waiting
	RefuseStuckOnDatabase  Refusal = "stuck_on_database" // workers wait on PostgreSQL (a slow query, a lock)
	RefuseCPUSaturated     Refusal = "cpu_saturated"     // every core busy: more sync workers only queue
	RefuseMemoryLow        Refusal = "memory_low"        // less memory available than one more worker needs
	RefuseMasterUnverified Refusal = "master_unverified" // the master's identity could not be verified
)
