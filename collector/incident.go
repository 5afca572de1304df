package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
)

// IncidentSource is what the incidents collector snapshots
// (*incident.Engine).
type IncidentSource interface {
	Stats() incident.Stats
}

// Incidents exports the incident engine's counts and open verdicts. Every
// (app, cause) series of a followed app exists from the first scrape at
// 0, so increase() sees the first incident and an alert or a dashboard
// annotation can key on the cause.
type Incidents struct {
	src                IncidentSource
	total, open, cause *prometheus.Desc
}

// NewIncidents returns the incidents collector.
func NewIncidents(src IncidentSource) *Incidents {
	return &Incidents{
		src:   src,
		total: newDesc(reflexNS, "", "incidents_total", "Incidents of the app closed (after their quiet period), by their final verdict: database_slow_query, database_lock, database_pool_exhausted, external_call, cpu_bound, deadlock, memory_oom, deploy_regression, capacity or unknown.", "app", "cause"),
		open:  newDesc(reflexNS, "incident", "open", "1 while the app has an open incident (opened by a WORKER TIMEOUT, a receiver alert, an OOM kill, a worker past 0.8 of the timeout or a listen-backlog episode).", "app"),
		cause: newDesc(reflexNS, "incident", "cause", "1 for the current verdict of the app's open incident, 0 for the other causes (all 0 when none is open); the verdict is recomputed as evidence arrives.", "app", "cause"),
	}
}

// Update implements Collector.
func (c *Incidents) Update(ch chan<- prometheus.Metric) error {
	e := &emitter{ch: ch}
	st := c.src.Stats()
	for _, app := range st.Apps {
		cur, open := st.Open[app]
		e.gauge(c.open, boolFloat(open), app)
		for _, cause := range incident.Causes {
			e.counter(c.total, st.Closed[app][cause], app, string(cause))
			e.gauge(c.cause, boolFloat(open && cur == cause), app, string(cause))
		}
	}
	return e.err
}
