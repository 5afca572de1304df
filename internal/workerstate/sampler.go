package workerstate

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// ErrNotMaster means the identity given to Sample names a Gunicorn worker
// (it holds one heartbeat file that its parent also holds), not a master.
var ErrNotMaster = errors.New("process is a gunicorn worker, not a master")

// DefaultStuckFraction is the share of the timeout after which a worker
// whose heartbeat has not moved is diagnosed as stuck.
const DefaultStuckFraction = 0.5

// PostgresPort is PostgreSQL's default port, always recognised as a
// PostgreSQL peer.
const PostgresPort = 5432

// DefaultMaxTracked bounds the per-worker state a Sampler keeps (previous
// CPU samples and open stuck episodes, each).
const DefaultMaxTracked = 4096

// Timeline event identity of a new stuck episode.
const (
	EventSource    = timeline.SourceProc
	EventKindStuck = timeline.KindWorkerStuck
)

// Options configures a Sampler. The zero value is valid.
type Options struct {
	// Now is the wall clock heartbeat ages are measured with; default
	// time.Now.
	Now func() time.Time
	// StuckFraction of the timeout after which a worker whose heartbeat has
	// not moved is stuck; default 0.5. Values outside (0, 1] mean the
	// default.
	StuckFraction float64
	// PostgresPorts are peer ports to mark as PostgreSQL besides 5432 (a
	// PgBouncer, a non-default port).
	PostgresPorts []int
	// Timeline receives one "worker_stuck" event per stuck episode; nil =
	// none.
	Timeline *timeline.Timeline
	// OOM, when set, is told the cgroups of every process sampled, so a
	// worker's cgroup is known after it died.
	OOM *OOMWatcher
	// MaxTracked bounds the previous-CPU samples and open stuck episodes
	// kept; default DefaultMaxTracked.
	MaxTracked int
}

// Sampler reads worker state from /proc. One per host; safe for concurrent
// use by several apps' collectors.
type Sampler struct {
	fs       procinfo.FS
	now      func() time.Time
	fraction float64
	pgPorts  map[int]bool
	tl       *timeline.Timeline
	oom      *OOMWatcher
	maxTrack int

	// Seams for fixture tests.
	arch       string
	readMem    func(pid int, addr uint64, n int) ([]byte, error)
	heartbeats func(pid int) ([]procinfo.HeartbeatFD, error)
	pause      func(time.Duration)

	mu       sync.Mutex
	cpu      map[trackKey]cpuSample
	episodes map[trackKey]*episode
	apps     map[string]*appMemory
}

// NewSampler returns a Sampler reading fs.
func NewSampler(fs procinfo.FS, opts Options) *Sampler {
	s := &Sampler{
		fs:       fs,
		now:      opts.Now,
		fraction: opts.StuckFraction,
		pgPorts:  map[int]bool{PostgresPort: true},
		tl:       opts.Timeline,
		oom:      opts.OOM,
		maxTrack: opts.MaxTracked,
		arch:     runtime.GOARCH,
		pause:    time.Sleep,
		cpu:      map[trackKey]cpuSample{},
		episodes: map[trackKey]*episode{},
		apps:     map[string]*appMemory{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if !(s.fraction > 0 && s.fraction <= 1) {
		s.fraction = DefaultStuckFraction
	}
	for _, p := range opts.PostgresPorts {
		s.pgPorts[p] = true
	}
	if s.maxTrack <= 0 {
		s.maxTrack = DefaultMaxTracked
	}
	s.readMem = fs.ReadMem
	s.heartbeats = fs.HeartbeatFDs
	return s
}

// Forget drops what the Sampler remembers about app (an app that went
// away).
func (s *Sampler) Forget(app string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.apps, app)
	for k := range s.cpu {
		if k.app == app {
			delete(s.cpu, k)
		}
	}
	for k := range s.episodes {
		if k.app == app {
			delete(s.episodes, k)
		}
	}
}

// Sample reads master (which must be a Gunicorn master: Verify'd first, so
// a reused pid is an error) and its workers. timeout is the app's worker
// timeout (0 = disabled: no stuck diagnosis, no past-timeout counts);
// workerClass is discovery's ("sync", "gthread", "" when unknown).
//
// Errors: procinfo.ErrGone or procinfo.ErrPIDReused for a master that is
// no longer the one named, ErrNotMaster for a worker. A permission refusal
// is not an error: it sets AppState.PermissionDenied.
func (s *Sampler) Sample(app string, master procinfo.Identity, timeout time.Duration, workerClass string) (AppState, error) {
	now := s.now()
	var st AppState
	st.MasterStartTime = master.StartTime
	if err := s.verifyMaster(master, &st); err != nil {
		return AppState{}, fmt.Errorf("sample %s: %w", app, err)
	}
	workers, err := s.readWorkers(master, &st)
	if err != nil {
		return AppState{}, fmt.Errorf("sample %s: %w", app, err)
	}
	lis := s.listeners(app, master, now)
	if lis.err != nil && errors.Is(lis.err, procinfo.ErrPermission) {
		st.PermissionDenied = true
	}
	for _, w := range workers.list {
		s.readWorker(w, workers.masterSet, workers.held, lis)
	}
	s.cpuDeltas(app, workers.list)

	class, inferred := s.effectiveClass(app, procKey{master.PID, master.StartTicks}, workerClass, workers.list)
	st.WorkerClass, st.ClassInferred = class, inferred
	isSync := class == "sync"
	if isSync {
		s.decideByConnections(master.PID, workers.list, lis)
	}
	for _, w := range workers.list {
		s.refreshHeartbeat(w)
	}

	st.scrape = &heartbeatRefs{fs: s.fs, now: s.now, timeout: timeout}
	cands := aggregate(&st, workers.list, isSync, timeout, s.fraction)
	// Peers are resolved outside the lock: it reads /proc/<pid>/net/*.
	snaps := make([]StuckSnapshot, len(cands))
	for i, c := range cands {
		snaps[i] = s.snapshot(c.w, c.kind, c.sock, lis)
	}
	events := s.recordEpisodes(app, workers.list, cands, snaps, &st, timeout, now)
	for i := range snaps {
		st.StuckNow[snaps[i].Kind]++
	}
	st.Stuck = snaps
	if s.tl != nil {
		for _, e := range events {
			s.tl.Append(e)
		}
	}
	if s.oom != nil {
		pids := []int{master.PID}
		for _, w := range workers.list {
			pids = append(pids, w.pid)
		}
		s.oom.Observe(pids...)
	}
	return st, nil
}
