package lifecycle

import (
	"strconv"
	"syscall"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/errorlog"
)

// The steps for the lines about one worker: its timeout, its reaping by the
// master, its own exit and exception lines, its boot, and the request
// errors it logs.

// onWorkerTimeout handles "WORKER TIMEOUT (pid:N)", counted once per
// worker.
func (t *Tracker) onWorkerTimeout(ev errorlog.Event, hp int, now stamp) {
	m := t.masterFor(hp)
	t.endPhase(m)
	if w := t.workers[ev.PID]; w != nil && w.exiting && m != nil && m.notReaping {
		// The worker had exited and its master, not reaping (24.0.0),
		// timed out the zombie's stale heartbeat: no request hung.
		return
	}
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
}

// onWorkerReaped handles the master's reap lines: a signal or an exit code.
func (t *Tracker) onWorkerReaped(ev errorlog.Event, hp int, now stamp) {
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
}

// onWorkerExiting handles the worker's own "Worker exiting (pid: N)".
func (t *Tracker) onWorkerExiting(ev errorlog.Event, now stamp) {
	w := t.workerFor(ev.PID, 0, now)
	if w.master != 0 {
		t.lastMaster = w.master
	}
	if w.done {
		return
	}
	w.exiting = true
	t.evidence(w, now)
}

// onWorkerException handles "Exception in worker process" and "Exception
// while loading the application", written by the worker (hp).
func (t *Tracker) onWorkerException(hp int, now stamp) {
	if hp != 0 {
		w := t.workerFor(hp, 0, now)
		if !w.done {
			w.exception = true
		}
	}
}

// onAutorestarting handles max_requests' "Autorestarting worker after
// current request.".
func (t *Tracker) onAutorestarting(hp int, now stamp) {
	t.counts.MaxRequestsRestarts++
	if hp != 0 {
		t.workerFor(hp, 0, now).autorestart = true
	}
}

// onParentChanged handles a worker noticing its master died.
func (t *Tracker) onParentChanged(hp int, now stamp) {
	if hp != 0 {
		w := t.workerFor(hp, 0, now)
		if !w.done {
			setExpect(w, ExitShutdown, "parent changed")
		}
	}
}

// onErrorHandlingRequest counts "Error handling request" unless the
// worker is being aborted or stopped (22+ logs the abort's SystemExit that
// way).
func (t *Tracker) onErrorHandlingRequest(hp int) {
	if w := t.workers[hp]; w != nil && !w.done && (w.timedOut || (w.hasExpect && w.expect == ExitShutdown)) {
		return
	}
	t.counts.RequestErrors++
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
		case m.targetKnown && !t.multiMaster && m.controlSocket:
			// "worker add" through the control socket logs only the
			// boot, and 25.1+ logs every death but a silent exit 0: a
			// boot beyond the target raises it.
			if live := t.live(m, now); live >= m.target {
				m.target = live + 1
			}
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
