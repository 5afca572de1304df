// Package lifecycle owns the per-app state machine that turns Gunicorn
// error-log lines into correct counts: every worker exit counted exactly once
// with its most specific cause, master starts, reloads, signals, shutdowns
// and boot failures, and the facts behind them for the event timeline.
//
// It reads lines through errorlog and never touches Prometheus; a collector
// snapshots Counts at scrape time.
//
// # How an exit's cause is decided
//
// The lines about one worker's death arrive one by one and in any mix:
// "Worker exiting" from the worker, then from the master 20.1's "terminated
// due to signal N" or 21+'s "was sent SIGX!" / "exited with code N" (twice,
// with and without a full stop), possibly after a "WORKER TIMEOUT" and
// before the master's "Shutting down" and "Reason". The first line about a
// pid opens a pending exit; later lines add evidence; the exit is committed
// after Options.PendingWindow (see there for the clocks) or by Flush. A
// committed pid ignores further lines, so no exit counts twice.
//
// At commit, the first rule that matches gives the cause:
//
//  1. boot_failure: exit code 3 or 4, or the master halted with "Reason:
//     Worker failed to boot."/"App failed to load." and this was the worker
//     that failed (the one with an exit code 3/4, else one that logged
//     "Exception in worker process", else the earliest pending exit of that
//     master).
//  2. timeout: a "WORKER TIMEOUT" for this pid was seen, whatever followed
//     (Worker exiting, SIGKILL, exit code 1, SystemExit).
//  3. reload / scale_down / shutdown: a master action retired the worker and
//     nothing contradicts it. HUP retires every worker alive at the "Hang
//     up"; TTOU retires one, the first worker of that master to report an
//     exit within Options.ActionWindow; TERM/INT/QUIT, a halt ("Shutting
//     down" with no signal before it), a daemon-mode WINCH ("graceful stop
//     of workers") and "Parent changed" retire all. SIGTERM, SIGINT and
//     SIGQUIT lines are then the known spurious race (issues #2908, #3050,
//     #3312), SIGKILL is the graceful-timeout kill during a shutdown; any
//     other signal or a non-zero exit code is not explained by the action.
//  4. max_requests: "Autorestarting worker after current request." with no
//     fatal signal and no exit code.
//  5. sigkill: killed by SIGKILL (possible OOM kill; /proc work confirms).
//  6. signal: killed by any other signal.
//  7. error: a non-zero exit code, or "Exception in worker process".
//  8. terminated: only "Worker exiting" (e.g. kill -TERM sent to one worker;
//     before 21.0 also kill -ABRT on an idle worker, which exits 1 silently).
//  9. unknown: see below.
//
// # Deaths no line reports
//
// Gunicorn 19.9 logs nothing when a signal kills a worker, and every version
// can lose one (os._exit, a reentrant-logging crash). The master only spawns
// when it has fewer workers than its target, so a "Booting worker" while the
// master already has its full complement proves an unseen death. The tracker
// infers one unknown exit (pid 0, since the dead pid is not known) when all
// of these hold:
//
//   - the master's target worker count is known: from the DEBUG "N workers"
//     line, or from the burst of boots after "Starting gunicorn" or "Hang
//     up" once that burst ends (its next "Handling signal" or "WORKER
//     TIMEOUT", or 10 s without a boot), adjusted by TTIN and TTOU;
//   - the boot is not part of such a burst;
//   - only one master is running (not between a USR2's "Starting gunicorn"
//     and the promotion or the old master's shutdown, where boots cannot be
//     told apart);
//   - live workers of that master (booted, not reported exiting, not
//     retired by a master action, not already inferred dead, less one for
//     each outstanding TTOU) are at least the target.
//
// Each inference remembers one "ghost" so the dead worker does not count as
// live later. When a master shuts down (with one master running), workers
// that never reported an exit are committed as shutdown exits, less the
// ghosts. A boot that reuses the pid of a worker never reported dead commits
// that worker as unknown first (or retires a ghost).
//
// # Concurrency
//
// All methods are safe for concurrent use: lines are meant to be fed from
// one goroutine, in log order, while Snapshot is called from scrapes.
package lifecycle

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/errorlog"
)

// phaseQuiet ends a burst of boots after a start or a HUP: Gunicorn spawns
// missing workers at most 0.1 s apart, so a 10 s gap means the burst is over.
const phaseQuiet = 10 * time.Second

// maxMasters bounds the masters remembered (a USR2 upgrade or restart adds
// one each time).
const maxMasters = 16

// stamp is a point on both clocks the tracker uses: the log's own time
// (when the line had one) and the wall clock when the line was seen.
type stamp struct {
	log    time.Time
	hasLog bool
	wall   time.Time
}

// elapsed reports whether d has passed between s and now on either clock.
func (s stamp) elapsed(now stamp, d time.Duration) bool {
	if s.hasLog && now.hasLog && now.log.Sub(s.log) >= d {
		return true
	}
	return !s.wall.IsZero() && !now.wall.IsZero() && now.wall.Sub(s.wall) >= d
}

func (s stamp) when() time.Time {
	if s.hasLog {
		return s.log
	}
	return s.wall
}

type worker struct {
	pid    int
	master int
	seq    uint64

	// Evidence.
	timedOut    bool
	autorestart bool
	exiting     bool
	exception   bool
	excText     string
	signal      syscall.Signal // -1: a signal Gunicorn named but we cannot
	core        bool
	exitCode    int
	bootFailure bool
	silent      bool // committed at its master's shutdown without a line
	reused      bool // its pid booted again with no exit line

	hasExpect bool
	expect    ExitCause
	expectBy  string

	pending bool
	opened  stamp
	done    bool
}

type master struct {
	pid int
	seq uint64

	// A burst of boots after start or HUP that sets the target.
	phase      bool
	phaseCount int
	phaseLast  stamp

	target      int
	targetKnown bool
	ghosts      int
	leaving     int // outstanding TTOUs
	leavingAt   stamp

	// The last action that retired every worker, for workers first seen
	// after it (a log followed from the middle).
	hasLate bool
	late    ExitCause
	lateBy  string
	lateAt  stamp

	usr2     bool // handled USR2, a new master may start
	usr2At   stamp
	stopping bool // handled TERM, INT or QUIT
	gone     bool

	lastException string
}

// Tracker is the lifecycle state of one app's error log.
type Tracker struct {
	mu   sync.Mutex
	opts Options

	folder  errorlog.Folder
	counts  Counts
	workers map[int]*worker
	masters map[int]*master
	pending []*worker
	seq     uint64

	lastMaster  int
	multiMaster bool
	openExc     int // pid of the open "Exception in worker process" record

	facts []Fact
}

// NewTracker returns a Tracker with opts (zero fields take the defaults).
func NewTracker(opts Options) *Tracker {
	opts = opts.withDefaults()
	t := &Tracker{
		opts:    opts,
		workers: make(map[int]*worker),
		masters: make(map[int]*master),
	}
	t.folder.Location = opts.Location
	return t
}

// ObserveLine parses one physical line of the error log (a trailing newline
// is ignored) and updates the state. It returns the facts concluded by this
// line, or nil; exits whose window elapsed are among them.
func (t *Tracker) ObserveLine(line []byte) []Fact {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.facts = nil
	now := stamp{wall: t.opts.Now()}
	l := t.folder.Feed(line)
	if l.Closed.Block != errorlog.BlockNone {
		t.recordClosed(l.Closed)
	}
	switch l.Kind {
	case errorlog.LineHeader:
		h := l.Header
		if h.HasTime {
			now.log, now.hasLog = h.Time, true
		}
		t.commitDue(now)
		t.counts.Messages[h.Level]++
		ev := errorlog.Classify(h.Message)
		if ev.Kind == errorlog.EventExceptionInWorker || ev.Kind == errorlog.EventAppLoadException {
			t.openExc = h.PID
		}
		t.handle(ev, h.PID, now)
		return t.facts
	case errorlog.LineRaw:
		t.counts.RawLines++
	case errorlog.LineLoggingError:
		t.counts.LoggingErrors++
	case errorlog.LineMalformed:
		t.counts.ParseFailures++
	case errorlog.LineContinuation:
		if l.Recovered != nil {
			// A logging-error report lost a record. Only the reap lines
			// come from the SIGCHLD handler, where the reentrant write
			// fails, so only those are taken back.
			ev := errorlog.Classify(l.Recovered)
			if ev.Kind == errorlog.EventWorkerSignaled || ev.Kind == errorlog.EventWorkerExitCode {
				t.handle(ev, 0, now)
			}
		}
	}
	t.commitDue(now)
	return t.facts
}

// Flush commits pending exits whose window has elapsed at now (wall time)
// and returns their facts. Call it on every poll, even when no line arrived.
func (t *Tracker) Flush(now time.Time) []Fact {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.facts = nil
	t.commitDue(stamp{wall: now})
	return t.facts
}

// Snapshot returns a copy of the counts.
func (t *Tracker) Snapshot() Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts
}

// Pending returns how many exits are waiting for their window.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

func (t *Tracker) recordClosed(r errorlog.Record) {
	if r.Block == errorlog.BlockRecord && t.openExc != 0 && r.PID == t.openExc && len(r.Exception) > 0 {
		if w := t.workers[r.PID]; w != nil {
			w.excText = string(r.Exception)
			if m := t.masters[w.master]; m != nil {
				m.lastException = w.excText
			}
		}
	}
	t.openExc = 0
}

func (t *Tracker) handle(ev errorlog.Event, hp int, now stamp) {
	switch ev.Kind {
	case errorlog.EventMasterStarting:
		t.counts.MasterStarts++
		t.counts.Version = string(ev.Arg)
		for _, m := range t.masters {
			if m.pid != hp && !m.gone && m.usr2 && !m.usr2At.elapsed(now, t.opts.ActionWindow) {
				t.multiMaster = true
				m.usr2 = false
			}
		}
		m := t.newMaster(hp)
		m.phase = true
		m.phaseLast = now
		t.fact(now, FactMasterStart, hp, "", string(ev.Arg))

	case errorlog.EventListening, errorlog.EventUsingWorker, errorlog.EventArbiterBooted,
		errorlog.EventConfigDump, errorlog.EventWinchIgnored, errorlog.EventMainLoopException,
		errorlog.EventIgnoringUnknownSignal, errorlog.EventUnhandledSignal:
		t.masterFor(hp)

	case errorlog.EventGracefulStop:
		if m := t.masterFor(hp); m != nil {
			t.endPhase(m)
			t.retireAll(m, ExitScaleDown, "winch", false, now)
			m.target, m.targetKnown = 0, true
		}

	case errorlog.EventHandlingSignal:
		m := t.masterFor(hp)
		t.endPhase(m)
		sig, ok := masterSignalFromName(ev.Arg)
		if !ok {
			t.fact(now, FactMasterSignal, hp, "other", string(ev.Arg))
			return
		}
		t.counts.MasterSignals[sig]++
		t.fact(now, FactMasterSignal, hp, sig.String(), "")
		if m == nil {
			return
		}
		switch sig {
		case MasterTTIN:
			if m.targetKnown {
				m.target++
			}
		case MasterTTOU:
			// Gunicorn ignores TTOU at one worker.
			if m.targetKnown && m.target <= 1 {
				return
			}
			if m.targetKnown {
				m.target--
			}
			if m.leaving > 0 && m.leavingAt.elapsed(now, t.opts.ActionWindow) {
				m.leaving = 0
			}
			m.leaving++
			m.leavingAt = now
		case MasterTERM, MasterINT, MasterQUIT:
			m.stopping = true
			t.retireAll(m, ExitShutdown, sig.String(), false, now)
		case MasterUSR2:
			m.usr2 = true
			m.usr2At = now
		}

	case errorlog.EventHangUp:
		t.counts.Reloads++
		t.fact(now, FactMasterReload, hp, "", "")
		if m := t.masterFor(hp); m != nil {
			t.endPhase(m)
			t.retireAll(m, ExitReload, "hup", false, now)
			// HUP may have changed the worker count: learn it again from
			// the burst of new workers.
			m.phase, m.phaseCount, m.phaseLast = true, 0, now
			m.targetKnown = false
			m.leaving = 0
		}

	case errorlog.EventMasterPromoted:
		t.counts.Promotions++
		t.multiMaster = false
		t.masterFor(hp)
		t.fact(now, FactMasterPromoted, hp, "", "")

	case errorlog.EventUSR2Ignored:
		if m := t.masterFor(hp); m != nil {
			m.usr2 = false
		}

	case errorlog.EventShuttingDown:
		t.counts.Shutdowns++
		t.fact(now, FactMasterShutdown, hp, "", string(ev.Arg))
		if m := t.masterFor(hp); m != nil {
			t.shutdownMaster(m, now)
		}

	case errorlog.EventReason:
		var r BootFailureReason
		switch ev.Num {
		case errorlog.ExitWorkerBootError:
			r = BootWorker
		case errorlog.ExitAppLoadError:
			r = BootAppLoad
		default:
			return
		}
		t.counts.BootFailures[r]++
		detail := ""
		if m := t.masterFor(hp); m != nil {
			t.assignBootFailure(m)
			detail = m.lastException
		}
		t.fact(now, FactBootFailure, hp, r.String(), detail)

	case errorlog.EventWorkersCount:
		if m := t.masterFor(hp); m != nil {
			m.phase = false
			m.target, m.targetKnown = ev.Num, true
		}

	case errorlog.EventWorkerTimeout:
		m := t.masterFor(hp)
		t.endPhase(m)
		w := t.workerFor(ev.PID, hp, now)
		if !w.timedOut {
			w.timedOut = true
			t.counts.Timeouts++
			t.counts.LastTimeout = now.when()
			t.fact(now, FactWorkerTimeout, ev.PID, "", "")
		}
		if w.done {
			return
		}
		// A timed-out worker always dies (SIGABRT, then SIGKILL), even
		// when nothing more is logged (19.9 after SIGKILL).
		t.openExit(w, now)

	case errorlog.EventWorkerSignaled, errorlog.EventWorkerExitCode:
		w := t.workerFor(ev.PID, hp, now)
		if hp != 0 {
			// Reap lines come from the worker's own master.
			w.master = hp
			t.lastMaster = hp
		}
		if w.done {
			return
		}
		if ev.Kind == errorlog.EventWorkerSignaled {
			w.signal = syscall.Signal(ev.Num)
			if w.signal == 0 {
				w.signal = -1 // a signal we cannot name
			}
			w.core = ev.Has(errorlog.FlagCoreDump)
		} else {
			w.exitCode = ev.Num
			if ev.Num == errorlog.ExitWorkerBootError || ev.Num == errorlog.ExitAppLoadError {
				w.bootFailure = true
			}
		}
		t.evidence(w, now)

	case errorlog.EventWorkerExiting:
		w := t.workerFor(ev.PID, 0, now)
		if w.master != 0 {
			t.lastMaster = w.master
		}
		if w.done {
			return
		}
		w.exiting = true
		t.evidence(w, now)

	case errorlog.EventWorkerBoot:
		t.boot(ev.PID, now)

	case errorlog.EventExceptionInWorker, errorlog.EventAppLoadException:
		if hp != 0 {
			w := t.workerFor(hp, 0, now)
			if !w.done {
				w.exception = true
			}
		}

	case errorlog.EventAutorestarting:
		t.counts.MaxRequestsRestarts++
		if hp != 0 {
			t.workerFor(hp, 0, now).autorestart = true
		}

	case errorlog.EventParentChanged:
		if hp != 0 {
			w := t.workerFor(hp, 0, now)
			if !w.done {
				setExpect(w, ExitShutdown, "parent changed")
			}
		}

	case errorlog.EventErrorHandlingRequest:
		if w := t.workers[hp]; w != nil && !w.done && (w.timedOut || (w.hasExpect && w.expect == ExitShutdown)) {
			return
		}
		t.counts.RequestErrors++

	case errorlog.EventInvalidRequest:
		t.counts.InvalidRequests++
	}
}

func (t *Tracker) fact(now stamp, kind string, pid int, cause, detail string) {
	t.facts = append(t.facts, Fact{Time: now.when(), Kind: kind, PID: pid, Cause: cause, Detail: detail})
}

// newMaster starts fresh state for a master pid.
func (t *Tracker) newMaster(pid int) *master {
	t.lastMaster = pid
	if pid == 0 {
		return &master{}
	}
	t.seq++
	m := &master{pid: pid, seq: t.seq}
	alone := true
	for _, o := range t.masters {
		if !o.gone && o.pid != pid {
			alone = false
		}
	}
	t.masters[pid] = m
	if alone {
		// Following a log from the middle: workers seen before any line
		// of their master belong to the only master there is.
		for _, w := range t.workers {
			if w.master == 0 {
				w.master = pid
			}
		}
	}
	if len(t.masters) > maxMasters {
		t.pruneMasters()
	}
	return m
}

// masterFor returns the state of a master-emitted line's pid, creating it
// for a log followed from the middle, and makes it the last active master.
func (t *Tracker) masterFor(pid int) *master {
	if pid == 0 {
		return nil
	}
	t.lastMaster = pid
	if m := t.masters[pid]; m != nil {
		return m
	}
	return t.newMaster(pid)
}

func (t *Tracker) pruneMasters() {
	ms := make([]*master, 0, len(t.masters))
	for _, m := range t.masters {
		ms = append(ms, m)
	}
	// Forget stopped masters first, then the oldest.
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].gone != ms[j].gone {
			return ms[i].gone
		}
		return ms[i].seq < ms[j].seq
	})
	for _, m := range ms[:len(ms)-maxMasters] {
		delete(t.masters, m.pid)
	}
}

// bootMaster guesses the master of a "Booting worker" line, which the
// worker writes: the master of the last line that had one, or, when that
// master has stopped, the only master still running.
func (t *Tracker) bootMaster() *master {
	if m := t.masters[t.lastMaster]; m != nil && !m.gone {
		return m
	}
	var only *master
	for _, m := range t.masters {
		if !m.gone {
			if only != nil {
				return t.masters[t.lastMaster]
			}
			only = m
		}
	}
	if only != nil {
		return only
	}
	return t.masters[t.lastMaster]
}

// workerFor returns the worker with pid, creating it (attributed to master,
// or to the last active master when 0) for a pid not seen booting. Such a
// worker was alive before the line; if its master retired every worker
// within ActionWindow before now, that covers it too.
func (t *Tracker) workerFor(pid, master int, now stamp) *worker {
	if w := t.workers[pid]; w != nil {
		return w
	}
	if master == 0 {
		master = t.lastMaster
	}
	w := t.addWorker(pid, master)
	if m := t.masters[master]; m != nil && m.hasLate && !m.lateAt.elapsed(now, t.opts.ActionWindow) {
		setExpect(w, m.late, m.lateBy)
	}
	return w
}

func (t *Tracker) addWorker(pid, master int) *worker {
	t.seq++
	w := &worker{pid: pid, master: master, seq: t.seq}
	t.workers[pid] = w
	if len(t.workers) > t.opts.MaxTrackedPIDs {
		t.prune()
	}
	return w
}

func (t *Tracker) endPhase(m *master) {
	if m == nil || !m.phase {
		return
	}
	m.phase = false
	m.target = m.phaseCount
	m.targetKnown = m.phaseCount > 0
}

func setExpect(w *worker, c ExitCause, by string) {
	if w.hasExpect {
		return
	}
	w.hasExpect, w.expect, w.expectBy = true, c, by
}

// retireAll marks the workers of m alive now (and, with pending, those
// whose exit is still open) as retired by a master action.
func (t *Tracker) retireAll(m *master, c ExitCause, by string, pending bool, now stamp) {
	m.hasLate, m.late, m.lateBy, m.lateAt = true, c, by, now
	for _, w := range t.workers {
		if w.master == m.pid && !w.done && (!w.pending || pending) {
			setExpect(w, c, by)
		}
	}
}

// evidence records that a line reported w's exit.
func (t *Tracker) evidence(w *worker, now stamp) {
	if w.pending {
		return
	}
	if m := t.masters[w.master]; m != nil && !w.hasExpect && m.leaving > 0 {
		soft := w.exiting || w.signal == unix.SIGTERM || w.signal == unix.SIGINT || w.signal == unix.SIGQUIT
		switch {
		case m.leavingAt.elapsed(now, t.opts.ActionWindow):
			m.leaving = 0
		case soft && w.exitCode == 0:
			m.leaving--
			setExpect(w, ExitScaleDown, "ttou")
		}
	}
	t.openExit(w, now)
}

func (t *Tracker) openExit(w *worker, now stamp) {
	if w.pending || w.done {
		return
	}
	w.pending = true
	w.opened = now
	t.pending = append(t.pending, w)
}

// commitDue commits the pending exits whose window elapsed at now.
func (t *Tracker) commitDue(now stamp) {
	if len(t.pending) == 0 {
		return
	}
	keep := t.pending[:0]
	for _, w := range t.pending {
		if w.pending && w.opened.elapsed(now, t.opts.PendingWindow) {
			t.commit(w)
			continue
		}
		if w.pending {
			keep = append(keep, w)
		}
	}
	for i := len(keep); i < len(t.pending); i++ {
		t.pending[i] = nil
	}
	t.pending = keep
}

// commit counts w's exit once. The caller removes it from t.pending (or it
// is skipped there because pending is false).
func (t *Tracker) commit(w *worker) {
	if w.done {
		return
	}
	cause := decide(w)
	w.done, w.pending = true, false
	t.counts.Exits[cause]++
	if (cause == ExitSIGKILL || cause == ExitSignal) && w.signal != 0 {
		t.counts.WorkerSignals[SignalFromNumber(int(w.signal))]++
	}
	when := w.opened
	if when.wall.IsZero() && !when.hasLog {
		when.wall = t.opts.Now()
	}
	t.facts = append(t.facts, Fact{Time: when.when(), Kind: FactWorkerExit, PID: w.pid, Cause: cause.String(), Detail: describe(w)})
}

// decide applies the precedence documented on the package.
func decide(w *worker) ExitCause {
	if w.bootFailure {
		return ExitBootFailure
	}
	if w.timedOut {
		return ExitTimeout
	}
	if w.hasExpect && w.exitCode == 0 && explained(w) {
		return w.expect
	}
	if w.autorestart && w.signal == 0 && w.exitCode == 0 {
		return ExitMaxRequests
	}
	switch {
	case w.signal == unix.SIGKILL:
		return ExitSIGKILL
	case w.signal != 0:
		return ExitSignal
	case w.exitCode != 0 || w.exception:
		return ExitError
	case w.exiting:
		return ExitTerminated
	}
	return ExitUnknown
}

// explained reports whether a master action accounts for w's signal, if any.
func explained(w *worker) bool {
	switch w.signal {
	case 0, unix.SIGTERM, unix.SIGINT, unix.SIGQUIT:
		return true
	case unix.SIGKILL:
		return w.expect == ExitShutdown
	}
	return false
}

func describe(w *worker) string {
	var parts []string
	if w.timedOut {
		parts = append(parts, "WORKER TIMEOUT")
	}
	if w.autorestart {
		parts = append(parts, "max requests reached")
	}
	if w.exception {
		s := "exception in worker process"
		if w.excText != "" {
			s += ": " + w.excText
		}
		parts = append(parts, s)
	}
	if w.exiting {
		parts = append(parts, "Worker exiting")
	}
	if w.signal != 0 {
		name := errorlog.SignalName(int(w.signal))
		if name == "" {
			name = "signal " + strconv.Itoa(int(w.signal))
		}
		if w.core {
			name += " (core dumped)"
		}
		parts = append(parts, "killed by "+name)
	}
	if w.exitCode != 0 {
		parts = append(parts, "exit code "+strconv.Itoa(w.exitCode))
	}
	if w.hasExpect {
		parts = append(parts, "master "+w.expectBy)
	}
	if w.silent {
		parts = append(parts, "no exit line before its master shut down")
	}
	if w.reused {
		parts = append(parts, "pid booted again with no exit line")
	}
	return strings.Join(parts, "; ")
}

// boot handles "Booting worker with pid: N".
func (t *Tracker) boot(pid int, now stamp) {
	t.counts.Boots++
	t.fact(now, FactWorkerBoot, pid, "", "")
	m := t.bootMaster()
	mpid := 0
	if m != nil {
		mpid = m.pid
	}
	if old := t.workers[pid]; old != nil {
		if !old.done {
			// The pid is free again, so the old worker died unseen.
			om := t.masters[old.master]
			switch {
			case old.pending:
				t.commit(old)
			case om != nil && om.ghosts > 0:
				om.ghosts--
				old.done = true
			default:
				old.reused = true
				t.commit(old)
			}
		}
		delete(t.workers, pid)
	}
	if m != nil && !m.gone {
		if m.phase && m.phaseLast.elapsed(now, phaseQuiet) {
			t.endPhase(m)
		}
		switch {
		case m.phase:
			m.phaseCount++
			m.phaseLast = now
		case m.targetKnown && !t.multiMaster:
			if live := t.live(m, now); live >= m.target {
				m.ghosts++
				t.counts.Exits[ExitUnknown]++
				t.fact(now, FactWorkerExit, 0, ExitUnknown.String(),
					"no line reported this death; inferred from the boot of pid "+strconv.Itoa(pid)+
						" while "+strconv.Itoa(live)+" of "+strconv.Itoa(m.target)+" workers were live")
			}
		}
	}
	t.addWorker(pid, mpid)
}

// live counts m's workers that are running and expected to stay.
func (t *Tracker) live(m *master, now stamp) int {
	n := 0
	for _, w := range t.workers {
		if w.master == m.pid && !w.done && !w.pending && !w.hasExpect {
			n++
		}
	}
	if m.leaving > 0 && m.leavingAt.elapsed(now, t.opts.ActionWindow) {
		m.leaving = 0
	}
	return n - m.ghosts - m.leaving
}

// shutdownMaster handles "Shutting down: Master".
func (t *Tracker) shutdownMaster(m *master, now stamp) {
	if !m.stopping {
		// A halt (boot failure, Can't connect): no signal marked the
		// workers, and they were stopped before this line.
		t.retireAll(m, ExitShutdown, "halt", true, now)
	}
	if !t.multiMaster {
		var silent []*worker
		for _, w := range t.workers {
			if w.master == m.pid && !w.done && !w.pending {
				silent = append(silent, w)
			}
		}
		sort.Slice(silent, func(i, j int) bool { return silent[i].seq < silent[j].seq })
		for _, w := range silent {
			if m.ghosts > 0 {
				// Already counted as an unknown exit.
				m.ghosts--
				w.done = true
				continue
			}
			setExpect(w, ExitShutdown, "shutdown")
			w.silent = true
			t.openExit(w, now)
		}
	}
	m.ghosts = 0
	m.gone = true
	m.phase = false
	t.multiMaster = false
}

// assignBootFailure picks the worker whose failure made m halt.
func (t *Tracker) assignBootFailure(m *master) {
	var withExc, earliest *worker
	for _, w := range t.workers {
		if w.master != m.pid || w.done {
			continue
		}
		if w.bootFailure {
			return
		}
		if !w.pending || w.timedOut || w.exitCode != 0 || !explained(w) {
			continue
		}
		if w.exception && (withExc == nil || w.seq < withExc.seq) {
			withExc = w
		}
		if earliest == nil || w.opened.when().Before(earliest.opened.when()) ||
			(w.opened.when().Equal(earliest.opened.when()) && w.seq < earliest.seq) {
			earliest = w
		}
	}
	if withExc != nil {
		withExc.bootFailure = true
	} else if earliest != nil {
		earliest.bootFailure = true
	}
}

// prune forgets the oldest workers to keep memory bounded: committed ones
// first, then pending ones (committed early), then live ones.
func (t *Tracker) prune() {
	target := t.opts.MaxTrackedPIDs * 3 / 4
	if target < 1 {
		target = 1
	}
	ws := make([]*worker, 0, len(t.workers))
	for _, w := range t.workers {
		ws = append(ws, w)
	}
	rank := func(w *worker) int {
		switch {
		case w.done:
			return 0
		case w.pending:
			return 1
		}
		return 2
	}
	sort.Slice(ws, func(i, j int) bool {
		if ri, rj := rank(ws[i]), rank(ws[j]); ri != rj {
			return ri < rj
		}
		return ws[i].seq < ws[j].seq
	})
	for _, w := range ws[:len(ws)-target] {
		switch rank(w) {
		case 1:
			t.commit(w)
		case 2:
			if m := t.masters[w.master]; m != nil && m.ghosts > 0 {
				m.ghosts--
			}
		}
		delete(t.workers, w.pid)
	}
	keep := t.pending[:0]
	for _, w := range t.pending {
		if w.pending {
			keep = append(keep, w)
		}
	}
	t.pending = keep
}
