package appset

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/lifecycle"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/workerstate"
)

// ProcInterval is how often live worker state is sampled from /proc. It is
// sampled in the background, not at scrape time, so a slow /proc read never
// delays a scrape and stuck workers are seen between scrapes.
const ProcInterval = 2 * time.Second

// ProcState is the latest /proc sample of one app.
type ProcState struct {
	Known   bool // a master is known for the app
	Sampled bool // the last sample succeeded
	State   workerstate.AppState
	Timeout time.Duration
	// TimeoutSource says where Timeout came from (discovery.TimeoutSources).
	TimeoutSource string
	Err           string
	// OOM verdicts for worker deaths by SIGKILL without a timeout.
	OOMConfirmed, OOMSuspected uint64

	// SampledAt is when the last successful sample was taken.
	SampledAt time.Time
}

// procTracker owns the masters known per app and their latest samples.
type procTracker struct {
	sampler *workerstate.Sampler
	oom     *workerstate.OOMWatcher
	logger  *slog.Logger

	links *incident.BackendLinks
	tl    *timeline.Timeline

	// sampleNow asks the sampler goroutine for a pass now; it closes the
	// channel it receives when the pass is done.
	sampleNow chan chan struct{}

	mu      sync.Mutex
	masters map[string]discovery.Master
	states  map[string]ProcState
}

func newProcTracker(fs procinfo.FS, tl *timeline.Timeline, logger *slog.Logger) *procTracker {
	oom := workerstate.NewOOMWatcher(fs, workerstate.OOMOptions{})
	return &procTracker{
		logger:  logger,
		sampler: workerstate.NewSampler(fs, workerstate.Options{Timeline: tl, OOM: oom}),
		oom:     oom,
		masters: map[string]discovery.Master{},
		states:  map[string]ProcState{},
		links:   incident.NewBackendLinks(tl, incident.BackendLinksOptions{}),
		tl:      tl,

		sampleNow: make(chan chan struct{}),
	}
}

// setMaster records the running master of an app (from discovery or its
// pidfile); timeout, when non-zero, is the configured --timeout and wins
// over what discovery read (setproctitle can hide the arguments).
func (p *procTracker) setMaster(app string, ms discovery.Master, timeout time.Duration) {
	if timeout > 0 {
		ms.Timeout, ms.TimeoutSource = timeout, discovery.FromConfigured
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.masters[app] = ms
}

// setTimeout applies a configured timeout to an app's known master at once,
// not at the next discovery pass.
func (p *procTracker) setTimeout(app string, timeout time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ms, ok := p.masters[app]; ok && timeout > 0 {
		ms.Timeout, ms.TimeoutSource = timeout, discovery.FromConfigured
		p.masters[app] = ms
	}
}

func (p *procTracker) state(app string) ProcState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.states[app]
}

// sampleAll samples every app with a known master once.
func (p *procTracker) sampleAll() {
	p.mu.Lock()
	masters := make(map[string]discovery.Master, len(p.masters))
	for k, v := range p.masters {
		masters[k] = v
	}
	p.mu.Unlock()
	for app, ms := range masters {
		st, err := p.sampler.Sample(app, ms.Identity, ms.Timeout, ms.WorkerClass)
		p.mu.Lock()
		prev := p.states[app]
		next := ProcState{Known: true, Sampled: err == nil, State: st, Timeout: ms.Timeout, TimeoutSource: ms.TimeoutSource,
			OOMConfirmed: prev.OOMConfirmed, OOMSuspected: prev.OOMSuspected}
		if err == nil {
			next.SampledAt = time.Now()
		}
		if err != nil {
			next.Err = err.Error()
			if errors.Is(err, procinfo.ErrGone) || errors.Is(err, procinfo.ErrPIDReused) {
				// The master is gone: the next discovery pass finds its
				// successor; until then there is nothing to sample.
				delete(p.masters, app)
				p.sampler.Forget(app)
			}
		}
		p.states[app] = next
		p.mu.Unlock()
		p.logChange(app, prev, next)
		if err == nil && len(st.Stuck) > 0 {
			p.links.Observe(app, stuckWorkers(st))
		}
	}
}

// logChange says once, when it changes, that an app's workers cannot be
// (or can again be) read: a metric alone is easy to miss.
func (p *procTracker) logChange(app string, prev, next ProcState) {
	switch {
	case next.State.PermissionDenied && !prev.State.PermissionDenied:
		p.logger.Warn("cannot fully read /proc of this app's workers: busy/idle and heartbeat ages are incomplete; run as root, as the Gunicorn user, or with CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE",
			"app", app, "unreadable_workers", next.State.UnreadableWorkers)
	case !next.State.PermissionDenied && prev.State.PermissionDenied:
		p.logger.Info("/proc of this app's workers is readable again", "app", app)
	}
	if next.Err != "" && next.Err != prev.Err {
		p.logger.Warn("cannot sample this app's master from /proc", "app", app, "err", next.Err)
	}
}

// judgeOOM has a worker death by SIGKILL without a timeout judged
// (incident.JudgeOOM appends the verdict to the timeline as evidence) and
// counts the verdict for the app's metrics.
func (p *procTracker) judgeOOM(app string, f lifecycle.Fact) {
	p.mu.Lock()
	ms, ok := p.masters[app]
	p.mu.Unlock()
	k := incident.WorkerKill{App: app, PID: f.PID, Time: f.Time}
	if ok {
		k.MasterPID = ms.Identity.PID
	}
	ev := incident.JudgeOOM(p.readOOM, p.tl, k)
	p.mu.Lock()
	st := p.states[app]
	if ev.Kind == timeline.KindOOMConfirmed {
		st.OOMConfirmed++
	} else {
		st.OOMSuspected++
	}
	p.states[app] = st
	p.mu.Unlock()
}

// readOOM reads the OOM evidence of one death from /proc, the cgroups and
// the kernel log.
func (p *procTracker) readOOM(q incident.OOMQuery) (bool, string, error) {
	return p.oom.ConfirmOOM(workerstate.OOMQuery{WorkerPID: q.WorkerPID, MasterPID: q.MasterPID, Since: q.Since})
}

// runProcSampler samples live worker state every ProcInterval, and at
// once when sampleProcNow asks, until ctx is done. Every pass runs on this
// goroutine, so passes never overlap.
func (m *Manager) runProcSampler(ctx context.Context) {
	t := time.NewTicker(ProcInterval)
	defer t.Stop()
	var done chan struct{}
	for {
		m.proc.sampleAll()
		if done != nil {
			close(done)
			done = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case done = <-m.proc.sampleNow:
		}
	}
}

// runBacklogSampler reads every known master's listen queue every
// workerstate.BacklogInterval, on its own goroutine so that a slow /proc
// pass does not leave gaps, until ctx is done: a burst of waiting clients
// shorter than the scrape interval then shows in the peak.
func (m *Manager) runBacklogSampler(ctx context.Context) {
	t := time.NewTicker(workerstate.BacklogInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.proc.mu.Lock()
		masters := make(map[string]procinfo.Identity, len(m.proc.masters))
		for app, ms := range m.proc.masters {
			masters[app] = ms.Identity
		}
		m.proc.mu.Unlock()
		m.proc.sampler.ObserveBacklog(masters)
	}
}

// sampleProcNow runs one /proc pass over every known master and returns
// when it is done (or ctx is). Without live worker state it does nothing.
func (m *Manager) sampleProcNow(ctx context.Context) {
	if m.proc == nil {
		return
	}
	done := make(chan struct{})
	select {
	case m.proc.sampleNow <- done:
	case <-ctx.Done():
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// BackendLinker finds the PostgreSQL backend of a client connection by its
// local port (pgmon.Set.LinkBackend).
type BackendLinker = incident.BackendLinker

// SetBackendLinker makes stuck workers blocked on a socket to PostgreSQL
// name the backend they wait on, in the timeline.
func (m *Manager) SetBackendLinker(l BackendLinker) {
	if m.proc == nil {
		return
	}
	m.proc.links.SetLinker(l)
}

// stuckWorkers is what backend linking needs of a sample's stuck workers.
func stuckWorkers(st workerstate.AppState) []incident.StuckWorker {
	out := make([]incident.StuckWorker, 0, len(st.Stuck))
	for _, s := range st.Stuck {
		out = append(out, incident.StuckWorker{PID: s.PID, Since: s.Since, SocketRead: s.Kind == workerstate.KindSocketRead && !s.PeerIsClient,
			LocalPort: s.LocalPort, PeerIsPostgres: s.PeerIsPostgres})
	}
	return out
}
