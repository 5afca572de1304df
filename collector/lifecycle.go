package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/appset"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/errorlog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/lifecycle"
)

// AppSource gives the state of every followed app.
type AppSource interface {
	Snapshot() []appset.Snapshot
}

// Lifecycle exports Gunicorn's worker and master lifecycle as counted from
// each app's error log. Every series known in advance is exported from the
// first scrape, at 0, so increase() sees the first event.
type Lifecycle struct {
	apps AppSource

	timeouts, boots, exits, signalDeaths        *prometheus.Desc
	masterStarts, reloads, promotions, shutdown *prometheus.Desc
	masterSignals, bootFailures, maxRequests    *prometheus.Desc
	unreplacedDeaths                            *prometheus.Desc
	requestErrors, invalidRequests, messages    *prometheus.Desc
	lastTimeout, parseFailures                  *prometheus.Desc
}

// NewLifecycle returns the lifecycle collector.
func NewLifecycle(apps AppSource) *Lifecycle {
	const fromLog = " Counted from the app's Gunicorn error log since gunicorn-reflex started."
	return &Lifecycle{
		apps:          apps,
		timeouts:      newDesc(gunicornNS, "worker", "timeouts_total", "WORKER TIMEOUT events: the master aborted a worker whose heartbeat was older than --timeout."+fromLog, "app"),
		boots:         newDesc(gunicornNS, "worker", "boots_total", "Workers booted (\"Booting worker with pid\")."+fromLog, "app"),
		exits:         newDesc(gunicornNS, "worker", "exits_total", "Worker exits by cause, each worker counted once however many lines mention it (see docs/metrics.md for the causes)."+fromLog, "app", "cause"),
		signalDeaths:  newDesc(gunicornNS, "worker", "signal_deaths_total", "Worker exits with cause sigkill or signal, by the signal that killed them (a timeout's SIGKILL escalation and the spurious SIGTERMs of HUP/TTOU are not here); Gunicorn 19.9 does not log these."+fromLog, "app", "signal"),
		masterStarts:  newDesc(gunicornNS, "master", "starts_total", "Masters started (\"Starting gunicorn\"), including the new master of a USR2 upgrade."+fromLog, "app"),
		reloads:       newDesc(gunicornNS, "master", "reloads_total", "Master reloads on SIGHUP (\"Hang up\"): every worker is replaced and the worker count resets to the configured value."+fromLog, "app"),
		promotions:    newDesc(gunicornNS, "master", "promotions_total", "USR2 upgrades completed (\"Master has been promoted\")."+fromLog, "app"),
		shutdown:      newDesc(gunicornNS, "master", "shutdowns_total", "Masters shut down (\"Shutting down\")."+fromLog, "app"),
		masterSignals: newDesc(gunicornNS, "master", "signals_total", "Signals the master handled (\"Handling signal\"), by lower-case name."+fromLog, "app", "signal"),
		unreplacedDeaths: newDesc(gunicornNS, "master", "unreplaced_worker_deaths_total",
			"Worker deaths the master neither reaped nor replaced: it logged \"Unhandled signal: cld\", Gunicorn 24.0.0's bug (fixed in 24.1.0); the app runs with fewer workers until the master restarts. Upgrade Gunicorn when this is above 0."+fromLog, "app"),
		bootFailures:  newDesc(gunicornNS, "", "boot_failures_total", "Master halts because workers could not boot (reason worker_boot, exit 3) or the app could not load (reason app_load, exit 4)."+fromLog, "app", "reason"),
		maxRequests:   newDesc(gunicornNS, "worker", "max_requests_restarts_total", "Workers restarted after reaching --max-requests (\"Autorestarting worker\")."+fromLog, "app"),
		requestErrors: newDesc(gunicornNS, "", "request_errors_total", "Unhandled exceptions while handling a request (\"Error handling request\"); the client got a 500 or a closed connection."+fromLog, "app"),
		invalidRequests: newDesc(gunicornNS, "", "invalid_requests_total",
			"Requests Gunicorn's HTTP parser rejected (\"Invalid request from ip=\"); logged at DEBUG before 21.0, so 0 at the default log level there."+fromLog, "app"),
		messages:      newDesc(gunicornNS, "", "log_messages_total", "Error-log records by level; a multi-line record (traceback) counts once."+fromLog, "app", "level"),
		lastTimeout:   newDesc(gunicornNS, "worker", "last_timeout_timestamp_seconds", "Log time of the last WORKER TIMEOUT, as a Unix timestamp; 0 if none was seen since gunicorn-reflex started.", "app"),
		parseFailures: logParseFailures,
	}
}

// Update implements Collector.
func (c *Lifecycle) Update(ch chan<- prometheus.Metric) error {
	e := &emitter{ch: ch}
	for _, s := range c.apps.Snapshot() {
		app, n := s.App, s.Lifecycle
		e.counter(c.timeouts, n.Timeouts, app)
		e.counter(c.boots, n.Boots, app)
		for _, cause := range lifecycle.AllExitCauses {
			e.counter(c.exits, n.Exits[cause], app, cause.String())
		}
		for _, sig := range lifecycle.AllSignals {
			e.counter(c.signalDeaths, n.WorkerSignals[sig], app, sig.String())
		}
		e.counter(c.masterStarts, n.MasterStarts, app)
		e.counter(c.reloads, n.Reloads, app)
		e.counter(c.promotions, n.Promotions, app)
		e.counter(c.shutdown, n.Shutdowns, app)
		e.counter(c.unreplacedDeaths, n.UnreplacedWorkerDeaths, app)
		for _, sig := range lifecycle.AllMasterSignals {
			e.counter(c.masterSignals, n.MasterSignals[sig], app, sig.String())
		}
		for _, r := range lifecycle.AllBootFailureReasons {
			e.counter(c.bootFailures, n.BootFailures[r], app, r.String())
		}
		e.counter(c.maxRequests, n.MaxRequestsRestarts, app)
		e.counter(c.requestErrors, n.RequestErrors, app)
		e.counter(c.invalidRequests, n.InvalidRequests, app)
		for _, l := range errorlog.AllLevels {
			e.counter(c.messages, n.Messages[l], app, l.Label())
		}
		last := 0.0
		if !n.LastTimeout.IsZero() {
			last = float64(n.LastTimeout.UnixNano()) / 1e9
		}
		e.gauge(c.lastTimeout, last, app)
		if s.HasErrorLog {
			e.counter(c.parseFailures, n.ParseFailures, app, "error")
		}
	}
	return e.err
}
