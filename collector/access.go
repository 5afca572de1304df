package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/appset"
)

// StaticApps is an AppSource over fixed snapshots: the one-shot mode,
// which reads one access log without an app set.
type StaticApps []appset.Snapshot

// Snapshot implements AppSource.
func (s StaticApps) Snapshot() []appset.Snapshot { return s }

// Access exports each app's request statistics from its access log.
type Access struct{ apps AppSource }

// NewAccess returns the access-log collector.
func NewAccess(apps AppSource) *Access { return &Access{apps: apps} }

// Update implements Collector. The access stats send their own
// request counters and histograms (single-writer, see accessstats); the
// parse-failure count is the collector's, named once for both logs.
func (c *Access) Update(ch chan<- prometheus.Metric) error {
	e := &emitter{ch: ch}
	for _, s := range c.apps.Snapshot() {
		if s.Access != nil {
			s.Access.Collect(ch)
			e.counter(logParseFailures, s.Access.ParseFailures(), s.App, "access")
		}
	}
	return e.err
}
