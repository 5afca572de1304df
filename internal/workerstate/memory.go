package workerstate

import (
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// procKey names one process for its whole life.
type procKey struct {
	pid   int
	start uint64
}

// trackKey names one process of one app in the Sampler's memory.
type trackKey struct {
	app  string
	proc procKey
}

type cpuSample struct {
	at    time.Time
	ticks uint64
}

type episode struct {
	since     time.Time // the heartbeat ctime that went stale
	firstSeen time.Time
	kind      StuckKind
}

type appMemory struct {
	totals [NumStuckKinds]uint64
	// syncSeen: the master (by identity) whose worker showed the sync
	// signature; class inference is per master.
	syncSeen procKey
	lis      listenerCache
}

// app returns the memory of app; s.mu must be held.
func (s *Sampler) app(name string) *appMemory {
	m, ok := s.apps[name]
	if !ok {
		m = &appMemory{}
		s.apps[name] = m
	}
	return m
}

// cpuDeltas computes each worker's CPU use since its previous sample.
func (s *Sampler) cpuDeltas(app string, workers []*worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range workers {
		ticks := w.stat.CPUTicks()
		if prev, ok := s.cpu[trackKey{app, w.key}]; ok && ticks >= prev.ticks && w.hbAt.After(prev.at) {
			w.cpuDelta = float64(ticks-prev.ticks) / procinfo.UserHZ
			w.cpuInterval = w.hbAt.Sub(prev.at)
			w.obs.CPURatio = w.cpuDelta / w.cpuInterval.Seconds()
		}
	}
}

// recordEpisodes stores the CPU samples, opens and closes app's stuck
// episodes, and returns the timeline events of the new ones.
func (s *Sampler) recordEpisodes(app string, workers []*worker, cands []stuckCand, snaps []StuckSnapshot, st *AppState, timeout time.Duration, now time.Time) []timeline.Event {
	var events []timeline.Event
	s.mu.Lock()
	defer s.mu.Unlock()
	mem := s.app(app)
	s.recordCPU(app, workers)
	stuck := map[trackKey]bool{}
	for i, c := range cands {
		tk := trackKey{app, c.w.key}
		stuck[tk] = true
		ep, ok := s.episodes[tk]
		if ok && !ep.since.Equal(c.w.hb.Ctime) {
			ok = false // it notified since: that episode ended, this is a new one
		}
		if !ok {
			ep = &episode{since: c.w.hb.Ctime, firstSeen: now, kind: c.kind}
			s.trackEpisode(tk, ep)
			mem.totals[c.kind]++
			events = append(events, stuckEvent(app, snaps[i], timeout, now))
		} else {
			ep.kind = c.kind
		}
		snaps[i].FirstSeen = ep.firstSeen
	}
	for k := range s.episodes {
		if k.app == app && !stuck[k] {
			delete(s.episodes, k)
		}
	}
	st.StuckEpisodesTotal = mem.totals
	return events
}

// recordCPU stores the current CPU samples of app's workers and drops
// those of its workers that are gone; s.mu must be held.
func (s *Sampler) recordCPU(app string, workers []*worker) {
	seen := map[trackKey]bool{}
	for _, w := range workers {
		seen[trackKey{app, w.key}] = true
	}
	for k := range s.cpu {
		if k.app == app && !seen[k] {
			delete(s.cpu, k)
		}
	}
	for _, w := range workers {
		k := trackKey{app, w.key}
		if _, ok := s.cpu[k]; !ok && len(s.cpu) >= s.maxTrack {
			evictOldest(s.cpu, func(c cpuSample) time.Time { return c.at })
		}
		s.cpu[k] = cpuSample{at: w.hbAt, ticks: w.stat.CPUTicks()}
	}
}

// evictOldest deletes the entry of m whose time is the earliest: the
// bound on what the Sampler remembers drops the stalest first.
func evictOldest[V any](m map[trackKey]V, at func(V) time.Time) {
	var (
		oldest trackKey
		first  time.Time
		found  bool
	)
	for k, v := range m {
		if t := at(v); !found || t.Before(first) {
			oldest, first, found = k, t, true
		}
	}
	delete(m, oldest)
}

// trackEpisode stores ep, evicting the oldest episode at the bound; s.mu
// must be held.
func (s *Sampler) trackEpisode(k trackKey, ep *episode) {
	if _, ok := s.episodes[k]; !ok && len(s.episodes) >= s.maxTrack {
		evictOldest(s.episodes, func(e *episode) time.Time { return e.firstSeen })
	}
	s.episodes[k] = ep
}
