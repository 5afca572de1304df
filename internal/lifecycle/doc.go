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
// A master that logged "Control socket listening at" (25.1+) is the
// exception: "worker add" through its socket boots a worker and logs
// nothing else, while those versions log every death but a silent exit 0,
// so there a boot beyond the target raises the target instead.
//
// Each inference remembers one "ghost" so the dead worker does not count as
// live later. When a master shuts down (with one master running), workers
// that never reported an exit are committed as shutdown exits, less the
// ghosts. A boot that reuses the pid of a worker never reported dead commits
// that worker as unknown first (or retires a ghost).
//
// # Masters that do not reap
//
// Gunicorn 24.0.0 logs "Unhandled signal: cld" for every SIGCHLD: its
// signal table misses Python's SIGCLD name for signal 17, so reap_workers
// never runs and no dead worker is replaced (fixed in 24.1.0). Each such
// line counts in Counts.UnreplacedWorkerDeaths, the first of a master is a
// master_not_reaping fact, and a later WORKER TIMEOUT for a worker that had
// already logged its exit is the master timing out the zombie: it is not a
// timeout.
//
// # Concurrency
//
// All methods are safe for concurrent use: lines are meant to be fed from
// one goroutine, in log order, while Snapshot is called from scrapes.
package lifecycle
