package collector

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// RemediationSource is what the receiver collector snapshots
// (*receiver.Engine).
type RemediationSource interface {
	Stats() receiver.Stats
}

// Receiver exports the remediation receiver's decisions and state. Every
// (app, action, outcome) series exists from the first scrape at 0, so an
// alert on increase() sees the first decision.
type Receiver struct {
	src RemediationSource

	decisions, circuit, paused, desired, lastAction, queued    *prometheus.Desc
	requests, alerts, queueFull, truncated, corrupt, auditErrs *prometheus.Desc
	journalLost                                                *prometheus.Desc
}

// NewReceiver returns the receiver collector.
func NewReceiver(src RemediationSource) *Receiver {
	return &Receiver{
		src:         src,
		decisions:   newDesc(reflexNS, "remediation", "decisions_total", "Remediation decisions by app, action and outcome (acted, verified, verification_failed, deduplicated, cooling_down, out_of_bounds, refused, ...); each but a duplicate answered at intake is a line in the audit log.", "app", "action", "outcome"),
		circuit:     newDesc(reflexNS, "remediation", "circuit_open", "1 while the app's reload/restart budget is exhausted: nothing acts on the app until a person runs `gunicorn-reflex remediation reset-circuit APP`.", "app"),
		paused:      newDesc(reflexNS, "remediation", "paused", "1 while a person paused remediation of the app.", "app"),
		desired:     newDesc(reflexNS, "remediation", "desired_workers", "The worker count the receiver last scaled the app to; 0 if it never scaled it. Re-applied after a HUP resets Gunicorn to --workers.", "app"),
		lastAction:  newDesc(reflexNS, "remediation", "last_action_timestamp_seconds", "Unix time the receiver last performed the action on the app (what its cooldown counts from); 0 if never.", "app", "action"),
		queued:      newDesc(reflexNS, "remediation", "queued_alerts", "Alerts recorded and waiting for their app's worker (bounded by receiver.queue_size)."),
		requests:    newDesc(reflexNS, "receiver", "requests_total", "Alertmanager webhook requests by the HTTP status code answered (5xx makes Alertmanager retry).", "code"),
		alerts:      newDesc(reflexNS, "receiver", "alerts_total", "Alerts received by status and what intake did with them: queued, deduplicated, queue_full, or the reason the webhook ignored them (resolved, no_action, unknown_app, other_host, ...).", "status", "result"),
		queueFull:   newDesc(reflexNS, "receiver", "queue_full_total", "Requests answered 503 because their new alerts did not fit in the queue (nothing of them was recorded; Alertmanager retries)."),
		truncated:   newDesc(reflexNS, "receiver", "truncated_alerts_total", "Alerts Alertmanager left out of notifications (truncatedAlerts, its max_alerts): never seen here."),
		corrupt:     newDesc(reflexNS, "receiver", "state_corrupt", "1 if the saved state was corrupt at start: it was moved aside and every action cools down (one cooldown, or one budget window for reload/restart) instead of starting from a clean slate."),
		auditErrs:   newDesc(reflexNS, "receiver", "audit_errors_total", "Decisions that could not be written to the audit log."),
		journalLost: newDesc(reflexNS, "receiver", "journal_lost", "1 if the alerts queued by the last run could not be read at start (the file was moved aside); they were not acted on."),
	}
}

// Update implements Collector.
func (c *Receiver) Update(ch chan<- prometheus.Metric) error {
	e := &emitter{ch: ch}
	st := c.src.Stats()
	for k, v := range st.Decisions {
		e.counter(c.decisions, v, k.App, string(k.Action), string(k.Outcome))
	}
	for _, a := range st.Apps {
		e.gauge(c.circuit, boolFloat(a.CircuitOpen), a.App)
		e.gauge(c.paused, boolFloat(a.Paused), a.App)
		e.gauge(c.desired, float64(a.Desired), a.App)
		for _, act := range intent.Actions {
			ts := 0.0
			if t, ok := st.LastAction[receiver.DecisionKey{App: a.App, Action: act}]; ok {
				ts = float64(t.UnixNano()) / 1e9
			}
			e.gauge(c.lastAction, ts, a.App, string(act))
		}
	}
	e.gauge(c.queued, float64(st.Queued))
	for code, v := range st.Requests {
		e.counter(c.requests, v, strconv.Itoa(code))
	}
	for k, v := range st.Alerts {
		e.counter(c.alerts, v, k.Status, k.Result)
	}
	e.counter(c.queueFull, st.QueueFull)
	e.counter(c.truncated, st.Truncated)
	e.gauge(c.corrupt, boolFloat(st.StateCorrupt))
	e.counter(c.auditErrs, st.AuditErrors)
	e.gauge(c.journalLost, boolFloat(st.JournalLost > 0))
	return e.err
}
