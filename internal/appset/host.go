package appset

import (
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/workerstate"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

var _ intent.Host = (*Manager)(nil)

// Lookup implements intent.Host: the remediation receiver's view of one
// app, from the app's pipeline, its known master and its latest /proc
// sample. ok is false for an app this manager does not follow.
func (m *Manager) Lookup(app string) (intent.AppView, bool) {
	m.mu.Lock()
	p, ok := m.apps[app]
	m.mu.Unlock()
	if !ok {
		return intent.AppView{}, false
	}
	v := intent.AppView{Name: app, Workers: -1}
	snap := p.snapshot()
	logFresh := snap.HasErrorLog && snap.ErrorLog.Open && snap.ErrorLog.LastError == ""
	procFresh := false
	if m.proc != nil {
		ms, known := m.proc.master(app)
		st := m.proc.state(app)
		if known {
			v.Master = ms.Identity
			v.ConfiguredWorkers = ms.ConfiguredWorkers
		}
		if st.Sampled {
			v.Workers, v.Booting = st.State.Workers, st.State.Booting
			v.SampledAt = st.SampledAt
			procFresh = known && !st.SampledAt.IsZero() && time.Since(st.SampledAt) <= staleAfter
		}
	}
	v.DataFresh = logFresh && procFresh
	v.LastReload = m.lastReload(app)
	return v, true
}

// staleAfter is how old a /proc sample may be before the app's data counts
// as not fresh: a few sampling intervals, so one slow pass is not "no data".
const staleAfter = 3 * ProcInterval

// lastReload is the time of the app's last "Hang up: Master" in the
// timeline, zero when none is there.
func (m *Manager) lastReload(app string) time.Time {
	if m.timeline == nil {
		return time.Time{}
	}
	evs := m.timeline.Select(timeline.Query{App: app, Kinds: []string{timeline.KindMasterReload}, Limit: 1})
	if len(evs) == 0 {
		return time.Time{}
	}
	return evs[len(evs)-1].Time
}

// master is the app's known master.
func (p *procTracker) master(app string) (discovery.Master, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ms, ok := p.masters[app]
	return ms, ok
}

// GuardApp is what incident.Guard needs of one app (its
// GuardOptions.App): data freshness as Lookup judges it, the largest
// worker's RSS, and the workers stuck reading from PostgreSQL or
// PgBouncer with what their backend links found.
func (m *Manager) GuardApp(app string) (incident.GuardApp, bool) {
	v, ok := m.Lookup(app)
	if !ok {
		return incident.GuardApp{}, false
	}
	g := incident.GuardApp{DataFresh: v.DataFresh, Workers: v.Workers}
	if m.proc == nil {
		return g, true
	}
	st := m.proc.state(app)
	if !st.Sampled {
		return g, true
	}
	g.WorkerRSSMax = st.State.RSSBytesMax
	var since time.Time
	for _, s := range st.State.Stuck {
		if s.Kind == workerstate.KindSocketRead && s.PeerIsPostgres {
			g.StuckOnDatabase = append(g.StuckOnDatabase, s.PID)
			if since.IsZero() || s.FirstSeen.Before(since) {
				since = s.FirstSeen
			}
		}
	}
	if len(g.StuckOnDatabase) > 0 && m.timeline != nil {
		evs := m.timeline.Select(timeline.Query{App: app, From: since, Kinds: []string{timeline.KindWorkerWaitsOnBackend}, Limit: 1})
		if len(evs) > 0 {
			g.StuckEvidence = evs[0].Detail
		}
	}
	return g, true
}
