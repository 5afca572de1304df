package lifecycle

import (
	"sync"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/errorlog"
)

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
	frames      frameScan

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
		t.endFrames(stamp{wall: now.wall, log: l.Closed.Time, hasLog: l.Closed.HasTime})
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
		if ev.Kind == errorlog.EventErrorHandlingRequest {
			t.startFrames(h.PID)
		}
		return t.facts
	case errorlog.LineRaw:
		t.counts.RawLines++
	case errorlog.LineLoggingError:
		t.counts.LoggingErrors++
	case errorlog.LineMalformed:
		t.counts.ParseFailures++
	case errorlog.LineContinuation:
		t.frameLine(line)
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

func (t *Tracker) fact(now stamp, kind string, pid int, cause, detail string) {
	t.facts = append(t.facts, Fact{Time: now.when(), Kind: kind, PID: pid, Cause: cause, Detail: detail})
}

// handle dispatches a classified message to the step for its kind. hp is
// the pid in the line's header (the master for master lines, the worker for
// worker lines), 0 when the line had none.
func (t *Tracker) handle(ev errorlog.Event, hp int, now stamp) {
	switch ev.Kind {
	case errorlog.EventMasterStarting:
		t.onMasterStarting(ev, hp, now)
	case errorlog.EventListening, errorlog.EventUsingWorker, errorlog.EventArbiterBooted,
		errorlog.EventConfigDump, errorlog.EventWinchIgnored, errorlog.EventMainLoopException,
		errorlog.EventIgnoringUnknownSignal:
		// Only a master writes these: they tell which master is active.
		t.masterFor(hp)
	case errorlog.EventControlSocket:
		t.onControlSocket(hp)
	case errorlog.EventUnhandledSignal:
		t.onUnhandledSignal(ev, hp, now)
	case errorlog.EventGracefulStop:
		t.onGracefulStop(hp, now)
	case errorlog.EventHandlingSignal:
		t.onHandlingSignal(ev, hp, now)
	case errorlog.EventHangUp:
		t.onHangUp(hp, now)
	case errorlog.EventMasterPromoted:
		t.onMasterPromoted(hp, now)
	case errorlog.EventUSR2Ignored:
		t.onUSR2Ignored(hp)
	case errorlog.EventShuttingDown:
		t.onShuttingDown(ev, hp, now)
	case errorlog.EventReason:
		t.onReason(ev, hp, now)
	case errorlog.EventWorkersCount:
		t.onWorkersCount(ev, hp)
	case errorlog.EventWorkerTimeout:
		t.onWorkerTimeout(ev, hp, now)
	case errorlog.EventWorkerSignaled, errorlog.EventWorkerExitCode:
		t.onWorkerReaped(ev, hp, now)
	case errorlog.EventWorkerExiting:
		t.onWorkerExiting(ev, now)
	case errorlog.EventWorkerBoot:
		t.boot(ev.PID, now)
	case errorlog.EventExceptionInWorker, errorlog.EventAppLoadException:
		t.onWorkerException(hp, now)
	case errorlog.EventAutorestarting:
		t.onAutorestarting(hp, now)
	case errorlog.EventParentChanged:
		t.onParentChanged(hp, now)
	case errorlog.EventErrorHandlingRequest:
		t.onErrorHandlingRequest(hp)
	case errorlog.EventInvalidRequest:
		t.counts.InvalidRequests++
	}
}
