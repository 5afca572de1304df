package collector

import "github.com/prometheus/client_golang/prometheus"

// Access exports each app's request statistics from its access log.
type Access struct{ apps AppSource }

// NewAccess returns the access-log collector.
func NewAccess(apps AppSource) *Access { return &Access{apps: apps} }

// Update implements Collector.
func (c *Access) Update(ch chan<- prometheus.Metric) error {
	for _, s := range c.apps.Snapshot() {
		if s.Access != nil {
			s.Access.Collect(ch)
		}
	}
	return nil
}
