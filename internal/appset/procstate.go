package appset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
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
	Err     string
	// OOM verdicts for worker deaths by SIGKILL without a timeout.
	OOMConfirmed, OOMSuspected uint64
}

// procTracker owns the masters known per app and their latest samples.
type procTracker struct {
	sampler *workerstate.Sampler
	oom     *workerstate.OOMWatcher
	logger  *slog.Logger

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
	}
}

// setMaster records the running master of an app (from discovery or its
// pidfile); timeout, when non-zero, is the configured --timeout and wins
// over what discovery read (setproctitle can hide the arguments).
func (p *procTracker) setMaster(app string, ms discovery.Master, timeout time.Duration) {
	if timeout > 0 {
		ms.Timeout = timeout
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.masters[app] = ms
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
		next := ProcState{Known: true, Sampled: err == nil, State: st, Timeout: ms.Timeout,
			OOMConfirmed: prev.OOMConfirmed, OOMSuspected: prev.OOMSuspected}
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

// judgeOOM settles a worker death by SIGKILL without a timeout: confirmed
// when the kernel or the cgroup says the OOM killer did it, suspected
// otherwise. The verdict goes to the timeline as evidence.
func (p *procTracker) judgeOOM(app string, f lifecycle.Fact, tl *timeline.Timeline) {
	p.mu.Lock()
	ms, ok := p.masters[app]
	p.mu.Unlock()
	q := workerstate.OOMQuery{WorkerPID: f.PID, Since: f.Time.Add(-time.Minute)}
	if ok {
		q.MasterPID = ms.Identity.PID
	}
	confirmed, evidence, err := p.oom.ConfirmOOM(q)
	p.mu.Lock()
	st := p.states[app]
	if confirmed {
		st.OOMConfirmed++
	} else {
		st.OOMSuspected++
	}
	p.states[app] = st
	p.mu.Unlock()
	kind := "oom_suspected"
	if confirmed {
		kind = "oom_confirmed"
	}
	if err != nil && evidence == "" {
		evidence = fmt.Sprintf("no OOM evidence readable: %v", err)
	}
	tl.Append(timeline.Event{Time: f.Time, App: app, Source: "proc", Kind: kind, PID: f.PID, Detail: evidence})
}

// runProcSampler samples live worker state until ctx is done.
func (m *Manager) runProcSampler(ctx context.Context) {
	t := time.NewTicker(ProcInterval)
	defer t.Stop()
	for {
		m.proc.sampleAll()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
