package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// Timeline exports the size of the in-memory event timeline, so a person
// can see that it is bounded and how much history incidents can read.
type Timeline struct {
	tl             *timeline.Timeline
	events, evicts *prometheus.Desc
}

// NewTimeline returns the timeline collector.
func NewTimeline(tl *timeline.Timeline) *Timeline {
	return &Timeline{
		tl:     tl,
		events: newDesc(reflexNS, "timeline", "events", "Events held in the in-memory timeline (bounded by timeline.max_events and timeline.max_age)."),
		evicts: newDesc(reflexNS, "timeline", "evicted_events_total", "Events dropped from the timeline because it was full or they were older than timeline.max_age."),
	}
}

// Update implements Collector.
func (c *Timeline) Update(ch chan<- prometheus.Metric) error {
	e := &emitter{ch: ch}
	n, evicted := c.tl.Stats()
	e.gauge(c.events, float64(n))
	e.counter(c.evicts, evicted)
	return e.err
}
