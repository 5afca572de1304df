package lifecycle

import (
	"sort"

	"golang.org/x/sys/unix"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/errorlog"
)

// The steps for the lines a master writes: starts, signals it handled,
// reloads, promotions, shutdowns and halts, and what they do to the
// master's workers.

// onMasterStarting handles "Starting gunicorn X". A start within
// ActionWindow of another master's USR2 is the upgrade's new master: two
// masters then run at once.
func (t *Tracker) onMasterStarting(ev errorlog.Event, hp int, now stamp) {
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
	m.version = string(ev.Arg)
	t.fact(now, FactMasterStart, hp, "", string(ev.Arg))
}

// onControlSocket handles "Control socket listening at", which 25.3+
// writes after every fork: it is neither a start nor a boot, only the sign
// that the worker count can change through the socket.
func (t *Tracker) onControlSocket(hp int) {
	if m := t.masterFor(hp); m != nil {
		m.controlSocket = true
	}
}

// onUnhandledSignal handles "Unhandled signal: x". For SIGCHLD it is
// Gunicorn 24.0.0's bug: the master's handler table lacks Python's SIGCLD
// name for signal 17, so reap_workers never runs; the dead worker is not
// reaped and not replaced, and the app loses that capacity. Each line is one
// death (or more: signals coalesce); the first of a master is also a fact.
func (t *Tracker) onUnhandledSignal(ev errorlog.Event, hp int, now stamp) {
	m := t.masterFor(hp)
	if ev.Num != int(unix.SIGCHLD) {
		return
	}
	t.counts.UnreplacedWorkerDeaths++
	if m == nil || m.notReaping {
		return
	}
	m.notReaping = true
	version := m.version
	if version == "" {
		version = t.counts.Version
	}
	t.fact(now, FactMasterNotReaping, hp, "", version)
}

// onGracefulStop handles a daemon-mode WINCH: every worker is retired and
// none replaced.
func (t *Tracker) onGracefulStop(hp int, now stamp) {
	if m := t.masterFor(hp); m != nil {
		t.endPhase(m)
		t.retireAll(m, ExitScaleDown, "winch", false, now)
		m.target, m.targetKnown = 0, true
	}
}

// onHandlingSignal handles "Handling signal: x": counted, then applied to
// the master's state.
func (t *Tracker) onHandlingSignal(ev errorlog.Event, hp int, now stamp) {
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
		t.onTTOU(m, now)
	case MasterTERM, MasterINT, MasterQUIT:
		m.stopping = true
		t.retireAll(m, ExitShutdown, sig.String(), false, now)
	case MasterUSR2:
		m.usr2 = true
		m.usr2At = now
	}
}

// onTTOU lowers the target and waits for the one worker TTOU retires.
func (t *Tracker) onTTOU(m *master, now stamp) {
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
}

// onHangUp handles "Hang up: Master": every worker is replaced.
func (t *Tracker) onHangUp(hp int, now stamp) {
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
}

// onMasterPromoted handles "Master has been promoted.": the upgrade is
// over and one master runs again.
func (t *Tracker) onMasterPromoted(hp int, now stamp) {
	t.counts.Promotions++
	t.multiMaster = false
	t.masterFor(hp)
	t.fact(now, FactMasterPromoted, hp, "", "")
}

// onUSR2Ignored handles "USR2 signal ignored.": no new master follows.
func (t *Tracker) onUSR2Ignored(hp int) {
	if m := t.masterFor(hp); m != nil {
		m.usr2 = false
	}
}

// onShuttingDown handles "Shutting down: Master".
func (t *Tracker) onShuttingDown(ev errorlog.Event, hp int, now stamp) {
	t.counts.Shutdowns++
	t.fact(now, FactMasterShutdown, hp, "", string(ev.Arg))
	if m := t.masterFor(hp); m != nil {
		t.shutdownMaster(m, now)
	}
}

// onReason handles the "Reason:" of a halt; only the two boot-failure
// reasons count.
func (t *Tracker) onReason(ev errorlog.Event, hp int, now stamp) {
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
}

// onWorkersCount handles DEBUG "N workers": the target, stated outright.
func (t *Tracker) onWorkersCount(ev errorlog.Event, hp int) {
	if m := t.masterFor(hp); m != nil {
		m.phase = false
		m.target, m.targetKnown = ev.Num, true
	}
}

func (t *Tracker) endPhase(m *master) {
	if m == nil || !m.phase {
		return
	}
	m.phase = false
	m.target = m.phaseCount
	m.targetKnown = m.phaseCount > 0
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
