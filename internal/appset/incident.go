package appset

import (
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
)

// IncidentSnapshot is what the incident engine samples of one app
// (incident.EngineOptions.Snapshot): the latest /proc sample reduced to
// plain numbers. ok is false for an app this manager does not follow.
func (m *Manager) IncidentSnapshot(app string) (incident.Snapshot, bool) {
	m.mu.Lock()
	_, ok := m.apps[app]
	m.mu.Unlock()
	if !ok || m.proc == nil {
		return incident.Snapshot{}, ok
	}
	st := m.proc.state(app)
	if !st.Sampled {
		return incident.Snapshot{Timeout: st.Timeout}, true
	}
	s := st.State
	return incident.Snapshot{
		Sampled: true, Timeout: st.Timeout,
		Workers: s.Workers, Busy: s.Busy, Stuck: len(s.Stuck), Past80Timeout: s.Past80Timeout,
		BacklogKnown: s.Backlog.Readable(), BacklogQueued: s.Backlog.Queued, BacklogPeak: s.Backlog.Peak,
		WorkerRSSMax: s.RSSBytesMax,
	}, true
}
