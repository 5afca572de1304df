// Package policy owns the remediation receiver's decision: given one
// validated alert, the app's rules, the policy state remembered so far and
// what the host observes now, may the receiver act, and to what worker
// count? Decide is a pure function over plain data: no I/O, no clock (the
// time is passed in), no syscalls. The package that performs the action
// (receiver/actuator) never decides, and this one never performs.
//
// The flow around it is: the engine looks the app up on the host
// (intent.Host), asks the guard whether the action would help
// (intent.Guard), calls Decide, records the decision with Apply and saves
// the state durably (receiver/state) before the actuator runs, then records
// the verification with Settle. Apply, Settle, Reconcile, Pause, Resume and
// ResetCircuit are as pure as Decide: they only edit a State.
//
// # How a decision is made
//
// The first rule that matches gives the outcome (Decision.Rule is its
// number):
//
//  1. ignored: the alert is not firing, names no action, or names another
//     app than the host's view (Observed.App) is of. Resolved alerts never act and change no
//     state.
//  2. deduplicated: the alert's idempotency key (action, app, fingerprint,
//     startsAt) was decided before and has not expired (Global.KeyTTL).
//     Alertmanager retries, HA peers and re-sends inside the TTL land here.
//  3. not_allowed: the app's Rules.Allow does not list the action.
//  4. paused: a person paused remediation of the app.
//  5. circuit_open: the reload/restart budget of the app was exhausted
//     before; nothing acts on the app until a person resets the circuit.
//  6. superseded: a scale or reload while a restart of the same app is
//     queued or in flight (Observed.Pending); the restart replaces the
//     master, so signalling the old one is at best wasted.
//  7. cooling_down: the state was found corrupt less than one cooldown
//     (scale) or one budget window (reload, restart) ago, so what was done
//     before is unknown; or the same (action, app) acted less than
//     Rules.Cooldown ago. The cooldown backs the idempotency key, because
//     HA peers may disagree on startsAt.
//  8. grace: an action of the same or a higher rank (scale < reload <
//     restart) acted less than Rules.Grace ago and the alert started before
//     it: its evidence predates the action's effect.
//  9. stabilizing: a scale-down while a scale-up was asked for (whatever
//     became of it) or performed less than Rules.Stabilization ago, so a
//     flapping need never ping-pongs the worker count.
//  10. unsettled: the live worker count a scale steps from kept moving
//     while it was read (workers exiting and being replaced, as when they
//     are killed for the timeout; Observed.App.Unsettled, set by the
//     engine after its bounded re-reads, Options.UnsettledRetries): nothing
//     is decided, and the next notification of the alert decides again.
//     refused (no_data, master_unverified): the host's data for the app is
//     stale or its worker count unknown (do nothing, as an autoscaler does
//     on missing metrics), or, for a signal, no master is known.
//  11. out_of_bounds: a scale-up at or above Rules.MaxWorkers, or a
//     scale-down at or below Rules.MinWorkers (never Gunicorn's own floor
//     of 1), counted from the observed worker count, never from the
//     receiver's own counter (a HUP resets Gunicorn to its --workers).
//  12. refused (the guard's reason): the host's own state says the action
//     would not help or would hurt (intent.Guard).
//  13. budget_exhausted: a reload or restart when Rules.Budget of them
//     already acted in the last Rules.BudgetWindow; Apply opens the
//     circuit.
//  14. rate_limited: Global.RateLimit actions (all apps) already acted in
//     the last Global.RateWindow.
//  15. dry_run: everything allowed it, but Global.DryRun is set.
//  16. acted: perform it. A scale moves one worker (the step is always 1)
//     to Decision.Target.
//
// # What is remembered
//
// Apply records the key of every decision but an ignored or unsettled one
// (so a flood of duplicates of a refused alert is one decision, not
// thousands, and an unsettled one is decided again when re-sent), until
// Global.KeyTTL, and at most Global.MaxKeys of them. Only
// acted decisions start a cooldown, a grace period, count against the
// budget and the rate limit, and set the desired worker count; a dry-run
// decision records only its key, so turning dry-run off does not inherit
// cooldowns or an open circuit from actions that never happened. A
// budget_exhausted decision opens the circuit. An acted decision that was
// not sent after all because the count could not be confirmed just before
// the signal (its verification unsettled) is taken back with Withdraw: it
// starts no cooldown and its key is forgotten.
//
// After a HUP (from anyone) or a new master, Gunicorn runs its configured
// --workers again; Reconcile steps the count back to the desired one, one
// worker per call, under rules 4, 5 and 10 to 16, never from the old and
// new generations of a reload together: no step down while a worker
// boots, and, when --workers is known, only from a count between it and
// the desired one. A verification that failed sets the
// desired count to what was observed (Settle), so a TTIN that cannot take
// effect is an outcome, never a retry loop.
package policy
