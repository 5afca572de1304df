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
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
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
}

// procTracker owns the masters known per app and their latest samples.
type procTracker struct {
	sampler *workerstate.Sampler
	oom     *workerstate.OOMWatcher
	logger  *slog.Logger

	mu      sync.Mutex
	masters map[string]discovery.Master
	states  map[string]ProcState
	linker  BackendLinker
	linked  map[string]bool
	tl      *timeline.Timeline
}

func newProcTracker(fs procinfo.FS, tl *timeline.Timeline, logger *slog.Logger) *procTracker {
	oom := workerstate.NewOOMWatcher(fs, workerstate.OOMOptions{})
	return &procTracker{
		logger:  logger,
		sampler: workerstate.NewSampler(fs, workerstate.Options{Timeline: tl, OOM: oom}),
		oom:     oom,
		masters: map[string]discovery.Master{},
		states:  map[string]ProcState{},
		linked:  map[string]bool{},
		tl:      tl,
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
		if err == nil {
			p.linkStuck(app, st)
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

// judgeOOM settles a worker death by SIGKILL without a timeout: confirmed
// when the kernel or the cgroup says the OOM killer did it, suspected
// otherwise. The verdict goes to the timeline as evidence.
func (p *procTracker) judgeOOM(app string, f lifecycle.Fact) {
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
	kind := timeline.KindOOMSuspected
	if confirmed {
		kind = timeline.KindOOMConfirmed
	}
	if err != nil && evidence == "" {
		evidence = fmt.Sprintf("no OOM evidence readable: %v", err)
	}
	p.tl.Append(timeline.Event{Time: f.Time, App: app, Source: timeline.SourceProc, Kind: kind, PID: f.PID, Detail: evidence})
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

// BackendLinker finds the PostgreSQL backend of a client connection by its
// local port (pgmon through the collector's targets).
type BackendLinker func(ctx context.Context, clientAddr string, clientPort int) (target string, info pgmon.BackendInfo, ok bool)

// SetBackendLinker makes stuck workers blocked on a socket to PostgreSQL
// name the backend they wait on, in the timeline.
func (m *Manager) SetBackendLinker(l BackendLinker) {
	if m.proc == nil {
		return
	}
	m.proc.mu.Lock()
	m.proc.linker = l
	m.proc.mu.Unlock()
}

// maxLinked bounds the stuck episodes remembered as already linked.
const maxLinked = 1024

// linkStuck adds, once per stuck episode of a worker waiting on
// PostgreSQL, what its backend is doing: state, wait event, query age,
// whether it is blocked and by whom (and the query text, literals
// stripped, only when the target enables it). Evidence for the timeline,
// never labels.
func (p *procTracker) linkStuck(app string, st workerstate.AppState) {
	p.mu.Lock()
	linker := p.linker
	p.mu.Unlock()
	if linker == nil {
		return
	}
	for _, s := range st.Stuck {
		// Any TCP socket read may be PostgreSQL on a port other than 5432
		// (or behind a proxy); asking costs one query per new episode, and
		// a port no backend uses simply matches nothing.
		if s.LocalPort == 0 || (s.Kind != workerstate.KindSocketRead && !s.PeerIsPostgres) {
			continue
		}
		key := fmt.Sprintf("%s/%d/%d", app, s.PID, s.Since.UnixNano())
		p.mu.Lock()
		done := p.linked[key]
		if !done {
			if len(p.linked) >= maxLinked {
				p.linked = map[string]bool{}
			}
			p.linked[key] = true
		}
		p.mu.Unlock()
		if done {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		target, info, ok := linker(ctx, "", s.LocalPort)
		cancel()
		if !ok {
			continue
		}
		attrs := map[string]string{
			"target": target, "backend_pid": fmt.Sprint(info.PID), "state": info.State,
			"wait_event_type": info.WaitEventType, "wait_event": info.WaitEvent,
			"query_age_seconds": fmt.Sprintf("%.1f", info.QueryAge.Seconds()),
			"blocked":           fmt.Sprint(info.Blocked), "local_port": fmt.Sprint(s.LocalPort),
		}
		for i, b := range info.BlockedBy {
			attrs[fmt.Sprintf("blocked_by_%d", i)] = fmt.Sprintf("pid %d (%s, transaction %.1fs)", b.PID, b.State, b.TransactionAge.Seconds())
		}
		if info.Query != "" {
			attrs["query"] = info.Query
		}
		p.tl.Append(timeline.Event{App: app, Source: timeline.SourcePostgres, Kind: timeline.KindWorkerWaitsOnBackend, PID: s.PID,
			Detail: fmt.Sprintf("worker %d waits on backend %d (%s, %s)", s.PID, info.PID, info.State, info.WaitEvent), Attrs: attrs})
	}
}
