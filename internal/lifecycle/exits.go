package lifecycle

// Deciding exits: evidence opens a pending exit, the window commits it, and
// the documented precedence names its cause.

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/errorlog"
)

func setExpect(w *worker, c ExitCause, by string) {
	if w.hasExpect {
		return
	}
	w.hasExpect, w.expect, w.expectBy = true, c, by
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
