package collector

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
)

// sampleIncidents: shop has an open lock incident and two closed ones,
// api none open.
type sampleIncidents struct{}

func (sampleIncidents) Stats() incident.Stats {
	return incident.Stats{
		Apps:   []string{"api", "shop"},
		Closed: map[string]map[incident.Cause]uint64{"shop": {incident.CauseCapacity: 1, incident.CauseDatabaseLock: 1}},
		Open:   map[string]incident.Cause{"shop": incident.CauseDatabaseLock},
	}
}

// Every cause of every app is a series from the first scrape; the open
// verdict is the only 1 of reflex_incident_cause.
func TestIncidentsSeries(t *testing.T) {
	out := string(expose(t, NewIncidents(sampleIncidents{})))
	require.Contains(t, out, `reflex_incidents_total{app="api",cause="unknown"} 0`)
	require.Contains(t, out, `reflex_incidents_total{app="shop",cause="capacity"} 1`)
	require.Contains(t, out, `reflex_incident_open{app="api"} 0`)
	require.Contains(t, out, `reflex_incident_open{app="shop"} 1`)
	require.Contains(t, out, `reflex_incident_cause{app="shop",cause="database_lock"} 1`)
	require.Contains(t, out, `reflex_incident_cause{app="shop",cause="capacity"} 0`)
}
