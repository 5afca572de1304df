package workerstate

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
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

// listenerRefresh is how long a master's listening sockets are cached
// (reading /proc/<pid>/net/tcp costs on a host with many connections).
const listenerRefresh = 30 * time.Second

// runningRetries is how often a worker seen running is read again, and
// runningPause how long apart, before it counts as busy/cpu.
const (
	runningRetries = 3
	runningPause   = 2 * time.Millisecond
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

// AppState is one sample of one Gunicorn master and its workers. Everything
// but PerWorker and Stuck is free of pids and meant for metrics.
type AppState struct {
	// Workers is the number of live workers. Each is counted in exactly one
	// of Busy, Idle, UnknownActivity and Booting.
	Workers int
	// Busy and Idle: sync workers inside a request, and waiting for one.
	Busy, Idle int
	// UnknownActivity: booted workers whose activity /proc cannot tell:
	// every worker of a threaded or async class, and workers whose syscall
	// could not be read (see PermissionDenied) or that are stopped.
	UnknownActivity int
	// Booting: workers that have not yet called notify() once (still
	// importing the app; see heartbeatNotified).
	Booting int
	// PastHalfTimeout and Past80Timeout count workers whose heartbeat age
	// exceeds 50% and 80% of the timeout, leaving out idle sync workers
	// (whose age legitimately reaches timeout/2). Zero when the timeout is
	// disabled.
	PastHalfTimeout, Past80Timeout int
	// RSS and CPU time (user+system) of the workers.
	RSSBytesSum, RSSBytesMax     uint64
	CPUSecondsSum, CPUSecondsMax float64
	MasterStartTime              time.Time
	// MaxHeartbeatAge is the largest heartbeat age among the HeartbeatsRead
	// workers whose heartbeat could be read.
	MaxHeartbeatAge time.Duration
	HeartbeatsRead  int
	// Upgrading is true while a USR2 re-exec master (a child of this
	// master) runs.
	Upgrading bool
	// WorkerClass is the class busy/idle was decided for: the one given to
	// Sample, or "sync" when ClassInferred (the given class was unknown and
	// a worker showed the sync worker's select(2) on the listener).
	WorkerClass   string
	ClassInferred bool
	// PermissionDenied is true when /proc refused something (the master's
	// files, a worker's fds, syscall or memory); UnreadableWorkers counts
	// the workers concerned (their activity is unknown; those without a
	// heartbeat are left out of the heartbeat aggregates).
	PermissionDenied  bool
	UnreadableWorkers int
	// PerWorker describes each worker, by pid: evidence for people (debug
	// pages, incident reports), never metric labels.
	PerWorker []WorkerSample
	// Stuck lists the workers stuck now, by pid.
	Stuck []StuckSnapshot
	// StuckNow counts Stuck by kind.
	StuckNow [NumStuckKinds]int
	// StuckEpisodesTotal counts, since the Sampler was created, the stuck
	// episodes of this app by the kind first diagnosed.
	StuckEpisodesTotal [NumStuckKinds]uint64
}

// Activity values of WorkerSample.
const (
	ActivityIdle    = "idle"
	ActivityBusy    = "busy"
	ActivityUnknown = "unknown"
	ActivityBooting = "booting"
)

// WorkerSample is one worker as one Sample saw it.
type WorkerSample struct {
	PID int
	// Activity is ActivityIdle, ActivityBusy, ActivityUnknown or
	// ActivityBooting, as counted in AppState.
	Activity string
	// HeartbeatAge is valid when HeartbeatRead.
	HeartbeatAge  time.Duration
	HeartbeatRead bool
	State         string // /proc/<pid>/stat state letter
	Wchan         string
	Syscall       string // syscall name, "running", "none", or "" when unreadable
	RSSBytes      uint64
	CPUSeconds    float64
	Unreadable    bool // /proc refused part of what this worker needed
	// Reason says how Activity was decided ("pselect6 on the listener",
	// "running, holds a client connection", ...).
	Reason string
}

// StuckSnapshot is what one stuck worker is doing.
type StuckSnapshot struct {
	PID  int
	Kind StuckKind
	// Since is the worker's last heartbeat (its ctime): for a sync worker,
	// when the current request started.
	Since        time.Time
	HeartbeatAge time.Duration
	// FirstSeen is when this episode was first diagnosed.
	FirstSeen time.Time
	Booting   bool // the worker never notified: stuck while importing the app
	Wchan     string
	State     string
	Syscall   string // syscall name, "running", or "" when unreadable
	// Peer is "host:port" of a TCP peer (or "unix:<path>" / "unix") for
	// socket_read; LocalPort is the worker's own TCP port on that
	// connection (pg_stat_activity.client_port for a PostgreSQL peer).
	Peer           string
	LocalPort      int
	PeerIsPostgres bool
	// CPUSecondsDelta is the CPU time the worker used over CPUInterval, the
	// time since its previous sample (both 0 on its first sample).
	CPUSecondsDelta float64
	CPUInterval     time.Duration
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

type listenerCache struct {
	master procKey
	at     time.Time
	inodes map[uint64]bool
	ports  map[int]bool
	tcp    []procinfo.Listener
	unix   map[string]bool // listening unix socket paths
	err    error
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

// child is one child of the master as first read.
type child struct {
	pid   int
	key   procKey
	stat  procinfo.Stat
	hbs   []procinfo.HeartbeatFD
	hbErr error
	// hbAt is when the heartbeat files were read: ages are measured from
	// it, not from the start of a Sample that may take a while.
	hbAt time.Time
}

// worker is what one sample saw of one worker.
type worker struct {
	child
	hb         procinfo.HeartbeatFD
	hbOK       bool
	booting    bool
	age        time.Duration
	obs        observation
	act        activity
	reason     string
	unreadable bool
	// CPU time used since the previous sample, over cpuInterval.
	cpuDelta    float64
	cpuInterval time.Duration
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

// verifyMaster checks that master still names the same process and is not
// a worker.
func (s *Sampler) verifyMaster(master procinfo.Identity, st *AppState) error {
	if err := s.fs.Verify(master); err != nil {
		if !errors.Is(err, procinfo.ErrPermission) {
			return err
		}
		// Another user's master: the start time (world-readable) still
		// tells a reused pid.
		cur, serr := s.fs.Stat(master.PID)
		switch {
		case serr != nil:
			return serr
		case cur.StartTicks != master.StartTicks:
			return fmt.Errorf("pid %d started at tick %d, expected %d: %w", master.PID, cur.StartTicks, master.StartTicks, procinfo.ErrPIDReused)
		case cur.Zombie():
			return fmt.Errorf("pid %d is a zombie: %w", master.PID, procinfo.ErrGone)
		}
		st.PermissionDenied = true
	}
	if len(master.Cmdline) > 0 && strings.HasPrefix(master.Cmdline[0], procinfo.TitlePrefix+"worker [") {
		return fmt.Errorf("pid %d is titled %q: %w", master.PID, master.Cmdline[0], ErrNotMaster)
	}
	return nil
}

// workerSet is the master's workers as first read.
type workerSet struct {
	list      []*worker
	masterSet map[uint64]bool // the master's heartbeat inodes
	held      map[uint64]int  // heartbeat inode -> workers holding only it
}

// readWorkers lists the master's children and tells its workers from a
// USR2 re-exec master (which sets st.Upgrading).
func (s *Sampler) readWorkers(master procinfo.Identity, st *AppState) (workerSet, error) {
	ws := workerSet{masterSet: map[uint64]bool{}, held: map[uint64]int{}}
	// Children first, then the master's heartbeat files: every child's own
	// file was created (by the master, before the fork) before the child
	// was listed, so the master's list read afterwards holds it unless the
	// child died meanwhile.
	kidPIDs, err := s.fs.Children(master.PID)
	if err != nil {
		if !errors.Is(err, procinfo.ErrPermission) {
			return ws, err
		}
		st.PermissionDenied = true
	}
	masterHB, err := s.heartbeats(master.PID)
	masterKnown := err == nil
	switch {
	case err == nil:
		for _, h := range masterHB {
			ws.masterSet[h.Inode] = true
		}
	case errors.Is(err, procinfo.ErrPermission):
		st.PermissionDenied = true
	default:
		return ws, err
	}
	if masterKnown && len(masterHB) == 1 && len(kidPIDs) == 0 {
		if err := s.checkNotWorker(master, masterHB[0]); err != nil {
			return ws, err
		}
	}
	kids := s.readChildren(kidPIDs)
	for i := range kids {
		k := &kids[i]
		switch s.role(master, k, masterHB, masterKnown) {
		case procinfo.RoleWorker:
			ws.list = append(ws.list, &worker{child: *k})
			if len(k.hbs) == 1 {
				ws.held[k.hbs[0].Inode]++
			}
		case procinfo.RoleUpgradeChild:
			st.Upgrading = true
		}
	}
	return ws, nil
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

// decideByConnections decides the sync workers that were running, or whose
// syscall could not be read: such a worker is inside a request exactly when
// it holds a connection accepted on a listener.
func (s *Sampler) decideByConnections(masterPID int, workers []*worker, lis listenerCache) {
	conns := &connTable{}
	for _, w := range workers {
		if w.booting || w.hbErr != nil || !needsConnCheck(w.obs) {
			continue
		}
		has, err := s.holdsClientConn(w.pid, masterPID, lis, conns)
		switch {
		case err == nil && has:
			w.act, w.reason = activityBusy, w.reason+", holds a client connection"
		case err == nil:
			w.act, w.reason = activityIdle, w.reason+", holds no client connection"
		default:
			w.act, w.reason = activityUnknown, fmt.Sprintf("%s, connections unreadable: %v", w.reason, err)
			if errors.Is(err, procinfo.ErrPermission) {
				w.unreadable = true
			}
		}
	}
}

// stuckCand is a worker diagnosed stuck in this sample.
type stuckCand struct {
	w    *worker
	kind StuckKind
	sock *waitFD
}

// aggregate fills st's counts and sums from the workers and returns those
// that are stuck.
func aggregate(st *AppState, workers []*worker, isSync bool, timeout time.Duration, fraction float64) []stuckCand {
	limit := func(f float64) time.Duration { return time.Duration(f * float64(timeout)) }
	var cands []stuckCand
	for _, w := range workers {
		st.Workers++
		rss := w.stat.RSSBytes
		cpu := w.stat.CPUSeconds()
		st.RSSBytesSum += rss
		st.RSSBytesMax = max(st.RSSBytesMax, rss)
		st.CPUSecondsSum += cpu
		st.CPUSecondsMax = max(st.CPUSecondsMax, cpu)
		if w.unreadable {
			st.UnreadableWorkers++
			st.PermissionDenied = true
		}
		ws := WorkerSample{
			PID: w.pid, HeartbeatAge: w.age, HeartbeatRead: w.hbOK,
			State: w.stat.StateString(), Wchan: w.obs.Wchan, Syscall: syscallLabel(w.obs),
			RSSBytes: rss, CPUSeconds: cpu, Unreadable: w.unreadable, Reason: w.reason,
		}
		if w.obs.State != 0 {
			ws.State = string(w.obs.State)
		}
		switch {
		case w.booting:
			st.Booting++
			ws.Activity = ActivityBooting
		case !isSync:
			st.UnknownActivity++
			ws.Activity = ActivityUnknown
		case w.act == activityIdle:
			st.Idle++
			ws.Activity = ActivityIdle
		case w.act == activityBusy:
			st.Busy++
			ws.Activity = ActivityBusy
		default:
			st.UnknownActivity++
			ws.Activity = ActivityUnknown
		}
		st.PerWorker = append(st.PerWorker, ws)
		if !w.hbOK {
			continue
		}
		st.HeartbeatsRead++
		st.MaxHeartbeatAge = max(st.MaxHeartbeatAge, w.age)
		// An idle sync worker's age legitimately reaches timeout/2.
		if timeout <= 0 || (isSync && ws.Activity == ActivityIdle) {
			continue
		}
		if w.age > limit(0.5) {
			st.PastHalfTimeout++
		}
		if w.age > limit(0.8) {
			st.Past80Timeout++
		}
		if w.age > limit(fraction) {
			kind, sock := classifyStuck(w.obs)
			cands = append(cands, stuckCand{w, kind, sock})
		}
	}
	return cands
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

// checkNotWorker refuses a "master" that holds one heartbeat file which its
// parent also holds: that is a worker.
func (s *Sampler) checkNotWorker(master procinfo.Identity, own procinfo.HeartbeatFD) error {
	if master.PPID <= 1 {
		return nil
	}
	parent, err := s.heartbeats(master.PPID)
	if err != nil {
		return nil // not readable: the title check and the caller's discovery stand
	}
	for _, h := range parent {
		if h.Inode == own.Inode && h.Dev == own.Dev {
			return fmt.Errorf("pid %d holds heartbeat inode %d of its parent %d: %w", master.PID, own.Inode, master.PPID, ErrNotMaster)
		}
	}
	return nil
}

// readChildren reads the stat and heartbeat files of each child, leaving
// out those that exited (or are zombies).
func (s *Sampler) readChildren(pids []int) []child {
	var out []child
	for _, pid := range pids {
		ps, err := s.fs.Stat(pid)
		if err != nil || ps.Zombie() {
			continue
		}
		c := child{pid: pid, key: procKey{pid, ps.StartTicks}, stat: ps}
		c.hbs, c.hbErr = s.heartbeats(pid)
		c.hbAt = s.now()
		if c.hbErr != nil && !errors.Is(c.hbErr, procinfo.ErrPermission) {
			continue // it exited while we read
		}
		out = append(out, c)
	}
	return out
}

// role decides what a child of the master is (procinfo.ChildRole: the
// one rule for discovery, this sampler and the receiver).
func (s *Sampler) role(master procinfo.Identity, k *child, masterHB []procinfo.HeartbeatFD, masterKnown bool) procinfo.Role {
	cmd, _ := s.fs.Cmdline(k.pid)
	return s.fs.ChildRole(procinfo.Child{
		PID: k.pid, ParentPID: master.PID, Cmdline: cmd, ParentCmdline: master.Cmdline,
		Heartbeats: k.hbs, HeartbeatsErr: k.hbErr,
		ParentHeartbeats: masterHB, ParentHeartbeatsKnown: masterKnown,
	})
}

// readWorker fills in the heartbeat and, for booted workers, the activity.
func (s *Sampler) readWorker(w *worker, masterSet map[uint64]bool, held map[uint64]int, lis listenerCache) {
	if w.hbErr != nil {
		w.unreadable = true
		w.obs.State = w.stat.State
		return
	}
	switch {
	case len(w.hbs) == 1:
		w.hb, w.hbOK = w.hbs[0], true
	case len(w.hbs) > 1:
		// Just forked: it still holds its siblings' files. Its own is the
		// one no other worker holds alone.
		var own []procinfo.HeartbeatFD
		for _, h := range w.hbs {
			if held[h.Inode] == 0 && (len(masterSet) == 0 || masterSet[h.Inode]) {
				own = append(own, h)
			}
		}
		if len(own) == 1 {
			w.hb, w.hbOK = own[0], true
		}
	}
	if !w.hbOK {
		w.booting = true // cannot be told apart yet: it is still starting
		return
	}
	w.booting = !heartbeatNotified(w.hb)
	w.age = max(w.hbAt.Sub(w.hb.Ctime), 0)
	if w.booting {
		w.obs.State = w.stat.State
		return
	}
	obs, perm := s.observe(w.pid, lis)
	w.obs = obs
	if perm {
		w.unreadable = true
	}
	w.act, w.reason = decideActivity(obs)
}

// refreshHeartbeat re-reads a booted worker's heartbeat after its activity
// was decided, so that its age agrees with it: a worker seen inside a
// request notified just before accepting it, and that notify may have come
// after the first read (on a loaded host, reading all the workers takes a
// while).
func (s *Sampler) refreshHeartbeat(w *worker) {
	if !w.hbOK || w.booting {
		return
	}
	hbs, err := s.heartbeats(w.pid)
	at := s.now()
	if err != nil {
		return // gone or refused since: keep the first read
	}
	for _, h := range hbs {
		if h.Inode == w.hb.Inode && h.Dev == w.hb.Dev {
			w.hb, w.hbAt = h, at
			w.age = max(at.Sub(h.Ctime), 0)
			return
		}
	}
}

// heartbeatNotified reports whether the worker has called notify() at least
// once: Gunicorn ≤ 21.2 fchmods the file (created 0o600) to 0o000/0o001,
// ≥ 22 utimes it to a CLOCK_MONOTONIC value far below any wall-clock
// creation time (gunicorn/workers/workertmp.py notify).
func heartbeatNotified(h procinfo.HeartbeatFD) bool {
	perm := h.Mode & 0o777
	if perm == 0 || perm == 1 {
		return true
	}
	return h.Mtime.Unix() < 1_000_000_000
}

// effectiveClass decides which class busy/idle is judged for; see the
// package doc.
func (s *Sampler) effectiveClass(app string, mkey procKey, given string, workers []*worker) (string, bool) {
	switch procinfo.NormalizeWorkerClass(given) {
	case "sync":
		return "sync", false
	case "":
	default:
		return given, false
	}
	evidence := false
	for _, w := range workers {
		if !w.booting && waitsOnListenerWithSelect(w.obs) {
			evidence = true
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mem := s.app(app)
	if evidence {
		mem.syncSeen = mkey
	}
	if mem.syncSeen == mkey {
		return "sync", true
	}
	return "", false
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

// listeners returns the master's listening socket inodes, cached for
// listenerRefresh (reading /proc/<pid>/net/tcp costs on a busy host).
func (s *Sampler) listeners(app string, master procinfo.Identity, now time.Time) listenerCache {
	mkey := procKey{master.PID, master.StartTicks}
	s.mu.Lock()
	c := s.app(app).lis
	s.mu.Unlock()
	if c.master == mkey && c.err == nil && now.Sub(c.at) < listenerRefresh && now.Sub(c.at) >= 0 {
		return c
	}
	c = listenerCache{master: mkey, at: now, inodes: map[uint64]bool{}, ports: map[int]bool{}, unix: map[string]bool{}}
	ls, err := s.fs.Listeners(master.PID)
	if err != nil {
		c.err = err
	}
	for _, l := range ls {
		c.inodes[l.Inode] = true
		switch {
		case l.Network == "tcp":
			c.ports[l.Port] = true
			c.tcp = append(c.tcp, l)
		case l.Network == "unix" && l.Addr != "":
			c.unix[l.Addr] = true
		}
	}
	s.mu.Lock()
	s.app(app).lis = c
	s.mu.Unlock()
	return c
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
			s.evictOldestCPU()
		}
		s.cpu[k] = cpuSample{at: w.hbAt, ticks: w.stat.CPUTicks()}
	}
}

func (s *Sampler) evictOldestCPU() {
	var (
		oldest trackKey
		at     time.Time
		found  bool
	)
	for k, c := range s.cpu {
		if !found || c.at.Before(at) {
			oldest, at, found = k, c.at, true
		}
	}
	delete(s.cpu, oldest)
}

// trackEpisode stores ep, evicting the oldest episode at the bound; s.mu
// must be held.
func (s *Sampler) trackEpisode(k trackKey, ep *episode) {
	if _, ok := s.episodes[k]; !ok && len(s.episodes) >= s.maxTrack {
		var (
			oldest trackKey
			at     time.Time
			found  bool
		)
		for kk, e := range s.episodes {
			if !found || e.firstSeen.Before(at) {
				oldest, at, found = kk, e.firstSeen, true
			}
		}
		delete(s.episodes, oldest)
	}
	s.episodes[k] = ep
}

// syscallLabel names what /proc/<pid>/syscall showed.
func syscallLabel(o observation) string {
	switch {
	case !o.SysOK:
		return ""
	case o.Sys.Running:
		return "running"
	case o.Sys.NotInSyscall:
		return "none"
	case o.SysName != "":
		return o.SysName
	}
	return "syscall_" + strconv.FormatInt(o.Sys.Nr, 10)
}

// snapshot builds the stuck snapshot of w, resolving a socket peer.
func (s *Sampler) snapshot(w *worker, kind StuckKind, sock *waitFD, lis listenerCache) StuckSnapshot {
	snap := StuckSnapshot{
		PID:             w.pid,
		Kind:            kind,
		Since:           w.hb.Ctime,
		HeartbeatAge:    w.age,
		Booting:         w.booting,
		Wchan:           w.obs.Wchan,
		State:           w.stat.StateString(),
		CPUSecondsDelta: w.cpuDelta,
		CPUInterval:     w.cpuInterval,
	}
	if w.obs.State != 0 {
		snap.State = string(w.obs.State)
	}
	snap.Syscall = syscallLabel(w.obs)
	if kind != KindSocketRead {
		return snap
	}
	var p peer
	var ok bool
	if sock != nil {
		p, ok = s.resolveSocket(w.pid, sock.Inode)
	} else {
		p, ok = s.guessBackendSocket(w.pid, lis)
	}
	if ok {
		snap.Peer, snap.LocalPort = p.addr, p.localPort
		snap.PeerIsPostgres = p.postgres || (p.remotePort > 0 && s.pgPorts[p.remotePort])
	}
	return snap
}

type peer struct {
	addr       string
	localPort  int
	remotePort int
	postgres   bool
}

// resolveSocket finds a socket inode in /proc/<pid>/net/{tcp,tcp6,unix}
// (the worker's own network namespace).
func (s *Sampler) resolveSocket(pid int, inode uint64) (peer, bool) {
	if conns, err := s.fs.NetTCP(pid); err == nil {
		for _, c := range conns {
			if c.Inode == inode {
				return tcpPeer(c), true
			}
		}
	}
	if socks, err := s.fs.NetUnix(pid); err == nil {
		for _, u := range socks {
			if u.Inode == inode {
				return unixPeer(u.Path), true
			}
		}
	}
	return peer{}, false
}

func tcpPeer(c procinfo.TCPConn) peer {
	return peer{
		addr:       net.JoinHostPort(c.Remote.String(), strconv.Itoa(c.RemotePort)),
		localPort:  c.LocalPort,
		remotePort: c.RemotePort,
	}
}

// unixPeer describes a unix socket; PostgreSQL's are named .s.PGSQL.<port>.
func unixPeer(path string) peer {
	if path == "" {
		return peer{addr: "unix"}
	}
	return peer{addr: "unix:" + path, postgres: strings.Contains(path, ".s.PGSQL.")}
}

// guessBackendSocket is for a worker known (from wchan alone) to wait on a
// socket without knowing which: if it holds exactly one established TCP
// connection that is neither a listener nor a client connection accepted on
// one, that is it.
func (s *Sampler) guessBackendSocket(pid int, lis listenerCache) (peer, bool) {
	fds, err := s.socketFDs(pid)
	if err != nil || len(fds) == 0 {
		return peer{}, false
	}
	conns, err := s.fs.NetTCP(pid)
	if err != nil {
		return peer{}, false
	}
	var found []procinfo.TCPConn
	for _, c := range conns {
		if fds[c.Inode] && c.State == procinfo.TCPEstablished && !lis.inodes[c.Inode] && !lis.ports[c.LocalPort] {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		return peer{}, false
	}
	return tcpPeer(found[0]), true
}

// socketFDs returns the socket inodes pid holds.
func (s *Sampler) socketFDs(pid int) (map[uint64]bool, error) {
	files, err := s.fs.OpenFiles(pid)
	if err != nil {
		return nil, err
	}
	out := map[uint64]bool{}
	for _, f := range files {
		if f.Socket {
			out[f.Inode] = true
		}
	}
	return out, nil
}

// stuckEvent is the timeline event of a new stuck episode.
func stuckEvent(app string, snap StuckSnapshot, timeout time.Duration, now time.Time) timeline.Event {
	attrs := map[string]string{
		"kind":                  snap.Kind.String(),
		"state":                 snap.State,
		"heartbeat_age_seconds": strconv.FormatFloat(snap.HeartbeatAge.Seconds(), 'f', 3, 64),
		"timeout_seconds":       strconv.FormatFloat(timeout.Seconds(), 'f', 0, 64),
	}
	if snap.Wchan != "" {
		attrs["wchan"] = snap.Wchan
	}
	if snap.Syscall != "" {
		attrs["syscall"] = snap.Syscall
	}
	if snap.Booting {
		attrs["booting"] = "true"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "worker %d stuck for %.1fs of a %gs timeout: %s", snap.PID, snap.HeartbeatAge.Seconds(), timeout.Seconds(), snap.Kind)
	if snap.Peer != "" {
		attrs["peer"] = snap.Peer
		fmt.Fprintf(&b, " from %s", snap.Peer)
		if snap.LocalPort > 0 {
			attrs["local_port"] = strconv.Itoa(snap.LocalPort)
			fmt.Fprintf(&b, " (local port %d)", snap.LocalPort)
		}
		if snap.PeerIsPostgres {
			attrs["peer_is_postgres"] = "true"
			b.WriteString(", PostgreSQL")
		}
	}
	fmt.Fprintf(&b, "; state %s", snap.State)
	if snap.Wchan != "" {
		fmt.Fprintf(&b, ", wchan %s", snap.Wchan)
	}
	if snap.Syscall != "" {
		fmt.Fprintf(&b, ", syscall %s", snap.Syscall)
	}
	return timeline.Event{
		Time:   now,
		App:    app,
		Source: EventSource,
		Kind:   EventKindStuck,
		PID:    snap.PID,
		Cause:  snap.Kind.String(),
		Detail: b.String(),
		Attrs:  attrs,
	}
}
