package lifecycle

// The tracker's memory: the two clocks, what it knows of each worker and
// master, and the bounds that keep it finite.

import (
	"sort"
	"syscall"
	"time"
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

	version string // from its "Starting gunicorn X"
	// controlSocket: it logged "Control socket listening at" (25.1+), so
	// "worker add" can raise its worker count without a line.
	controlSocket bool
	// notReaping: it logged "Unhandled signal: cld" (24.0.0), so a dead
	// worker stays an unreaped zombie and is never replaced.
	notReaping bool
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
