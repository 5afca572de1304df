package lifecycle

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/errorlog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// ExitCause is why a worker process ended: a closed set, used as a metric
// label value (String).
type ExitCause uint8

// Exit causes, most specific first where they compete (see decide in
// exits.go for the exact precedence).
const (
	// ExitTimeout: the worker ended after its "WORKER TIMEOUT": Worker
	// exiting, the SIGKILL escalation ("was sent SIGKILL! Perhaps out of
	// memory?" / "signal 9"), 21.x's "exited with code 1", 22+'s SystemExit.
	ExitTimeout ExitCause = iota
	// ExitSIGKILL: killed by SIGKILL with no WORKER TIMEOUT before it and
	// no master shutdown under way; a possible OOM kill.
	ExitSIGKILL
	// ExitSignal: killed by another fatal signal that no master action
	// explains (SIGSEGV, SIGABRT with core, SIGBUS, SIGHUP/SIGUSR2 sent to
	// a worker, a SIGTERM nobody asked the master for).
	ExitSignal
	// ExitError: a non-zero exit code outside boot failures and timeouts
	// (21+ "exited with code N"; 20.1's "Exception in worker process"
	// after boot, which exits 255).
	ExitError
	// ExitBootFailure: the worker could not boot or load the app (exit
	// code 3 or 4; the master then halts with a Reason line).
	ExitBootFailure
	// ExitMaxRequests: retired after "Autorestarting worker after current
	// request.".
	ExitMaxRequests
	// ExitReload: retired by a HUP of its master, including the spurious
	// "signal 15" / "was sent SIGTERM!" lines HUP produces.
	ExitReload
	// ExitScaleDown: retired by TTOU (or a daemon-mode WINCH), including
	// the spurious SIGTERM lines.
	ExitScaleDown
	// ExitShutdown: its master was stopping (TERM, INT, QUIT, a halt after
	// a boot failure, or the master died and the worker noticed).
	ExitShutdown
	// ExitTerminated: a plain "Worker exiting" with nothing else to
	// explain it, e.g. kill -TERM/-INT/-QUIT (or -ABRT before 21.0) sent
	// to one worker.
	ExitTerminated
	// ExitUnknown: a death no line reported, inferred from a replacement
	// "Booting worker" (19.9 logs nothing for signal deaths; any version
	// logs nothing for some exits). The pid is not known.
	ExitUnknown

	numExitCauses
)

// NumExitCauses is the number of ExitCause values.
const NumExitCauses = int(numExitCauses)

// AllExitCauses lists every ExitCause, for initialising series to 0.
var AllExitCauses = [NumExitCauses]ExitCause{
	ExitTimeout, ExitSIGKILL, ExitSignal, ExitError, ExitBootFailure, ExitMaxRequests,
	ExitReload, ExitScaleDown, ExitShutdown, ExitTerminated, ExitUnknown,
}

var exitCauseNames = [NumExitCauses]string{
	"timeout", "sigkill", "signal", "error", "boot_failure", "max_requests",
	"reload", "scale_down", "shutdown", "terminated", "unknown",
}

// String returns the label value.
func (c ExitCause) String() string {
	if int(c) < NumExitCauses {
		return exitCauseNames[c]
	}
	return "invalid"
}

// Signal is a fatal signal that killed a worker, as a closed set of label
// values.
type Signal uint8

// Worker signals.
const (
	SigKILL Signal = iota
	SigTERM
	SigABRT
	SigSEGV
	SigBUS
	SigHUP
	SigUSR2
	SigINT
	SigQUIT
	SigOther

	numSignals
)

// NumSignals is the number of Signal values.
const NumSignals = int(numSignals)

// AllSignals lists every Signal.
var AllSignals = [NumSignals]Signal{SigKILL, SigTERM, SigABRT, SigSEGV, SigBUS, SigHUP, SigUSR2, SigINT, SigQUIT, SigOther}

var signalLabels = [NumSignals]string{"SIGKILL", "SIGTERM", "SIGABRT", "SIGSEGV", "SIGBUS", "SIGHUP", "SIGUSR2", "SIGINT", "SIGQUIT", "other"}

// String returns the label value ("SIGKILL", ..., "other").
func (s Signal) String() string {
	if int(s) < NumSignals {
		return signalLabels[s]
	}
	return "invalid"
}

// SignalFromNumber maps a signal number (as Gunicorn logs it, this
// platform's numbering) to the closed set.
func SignalFromNumber(n int) Signal {
	switch syscall.Signal(n) {
	case unix.SIGKILL:
		return SigKILL
	case unix.SIGTERM:
		return SigTERM
	case unix.SIGABRT:
		return SigABRT
	case unix.SIGSEGV:
		return SigSEGV
	case unix.SIGBUS:
		return SigBUS
	case unix.SIGHUP:
		return SigHUP
	case unix.SIGUSR2:
		return SigUSR2
	case unix.SIGINT:
		return SigINT
	case unix.SIGQUIT:
		return SigQUIT
	}
	return SigOther
}

// MasterSignal is a signal the master reported handling ("Handling signal:
// x").
type MasterSignal uint8

// Master signals, in Gunicorn's own naming.
const (
	MasterHUP MasterSignal = iota
	MasterTTIN
	MasterTTOU
	MasterUSR1
	MasterUSR2
	MasterWINCH
	MasterTERM
	MasterINT
	MasterQUIT

	numMasterSignals
)

// NumMasterSignals is the number of MasterSignal values.
const NumMasterSignals = int(numMasterSignals)

// AllMasterSignals lists every MasterSignal.
var AllMasterSignals = [NumMasterSignals]MasterSignal{
	MasterHUP, MasterTTIN, MasterTTOU, MasterUSR1, MasterUSR2, MasterWINCH, MasterTERM, MasterINT, MasterQUIT,
}

var masterSignalNames = [NumMasterSignals]string{"hup", "ttin", "ttou", "usr1", "usr2", "winch", "term", "int", "quit"}

// String returns the label value, as Gunicorn writes it ("hup", ...).
func (s MasterSignal) String() string {
	if int(s) < NumMasterSignals {
		return masterSignalNames[s]
	}
	return "invalid"
}

func masterSignalFromName(name []byte) (MasterSignal, bool) {
	for i, n := range masterSignalNames {
		if string(name) == n {
			return MasterSignal(i), true
		}
	}
	return 0, false
}

// BootFailureReason is the "Reason:" a master gave when it halted.
type BootFailureReason uint8

// Boot failure reasons.
const (
	// BootWorker: "Reason: Worker failed to boot." (exit status 3).
	BootWorker BootFailureReason = iota
	// BootAppLoad: "Reason: App failed to load." (exit status 4).
	BootAppLoad

	numBootFailureReasons
)

// NumBootFailureReasons is the number of BootFailureReason values.
const NumBootFailureReasons = int(numBootFailureReasons)

// AllBootFailureReasons lists every BootFailureReason.
var AllBootFailureReasons = [NumBootFailureReasons]BootFailureReason{BootWorker, BootAppLoad}

var bootFailureNames = [NumBootFailureReasons]string{"worker_boot", "app_load"}

// String returns the label value.
func (r BootFailureReason) String() string {
	if int(r) < NumBootFailureReasons {
		return bootFailureNames[r]
	}
	return "invalid"
}

// NumLevels is the number of error-log levels (errorlog.Level indexes
// Counts.Messages).
const NumLevels = errorlog.NumLevels

// Counts are cumulative totals since the Tracker was created. Every field is
// monotonic except LastTimeout and Version.
type Counts struct {
	// Timeouts counts "WORKER TIMEOUT (pid:N)" lines, once per worker,
	// except those about a worker that had already exited and that its
	// master did not reap (Gunicorn 24.0.0 times out such zombies).
	Timeouts uint64
	// Boots counts "Booting worker with pid: N" lines.
	Boots uint64
	// MasterStarts counts "Starting gunicorn X" lines (a USR2 upgrade
	// starts a second master).
	MasterStarts uint64
	// Reloads counts "Hang up: Master" lines (HUP handled).
	Reloads uint64
	// Promotions counts "Master has been promoted." lines.
	Promotions uint64
	// MaxRequestsRestarts counts "Autorestarting worker after current
	// request." lines.
	MaxRequestsRestarts uint64
	// RequestErrors counts "Error handling request" records, except those
	// written by a worker already timed out or being stopped by its master
	// (22+ logs the abort's SystemExit that way).
	RequestErrors uint64
	// InvalidRequests counts "Invalid request from ip=..." lines.
	InvalidRequests uint64
	// UnreplacedWorkerDeaths counts "Unhandled signal: cld" lines: worker
	// deaths a Gunicorn 24.0.0 master neither reaped nor replaced.
	UnreplacedWorkerDeaths uint64
	// Exits counts worker exits by cause, each worker pid once.
	Exits [NumExitCauses]uint64
	// WorkerSignals counts the signal of exits whose cause is sigkill or
	// signal, so its sum equals Exits[ExitSIGKILL]+Exits[ExitSignal].
	WorkerSignals [NumSignals]uint64
	// MasterSignals counts "Handling signal: x" lines.
	MasterSignals [NumMasterSignals]uint64
	// Shutdowns counts "Shutting down: Master" lines.
	Shutdowns uint64
	// BootFailures counts halts with "Reason: Worker failed to boot." or
	// "Reason: App failed to load.".
	BootFailures [NumBootFailureReasons]uint64
	// Messages counts records by level; a multi-line record counts once.
	Messages [NumLevels]uint64
	// RawLines counts explained unprefixed lines that start a raw block
	// (prints, Python warnings, uncaught tracebacks, blank lines).
	RawLines uint64
	// LoggingErrors counts "--- Logging error ---" reports.
	LoggingErrors uint64
	// ParseFailures counts unexplained lines only (errorlog.LineMalformed).
	ParseFailures uint64
	// LastTimeout is the log time of the last WORKER TIMEOUT (the wall
	// time when the line had none); zero if none.
	LastTimeout time.Time
	// Version is the X of the last "Starting gunicorn X".
	Version string
}

// Fact kinds: the closed set of Fact.Kind values. They are the timeline's
// kinds for source errorlog, defined there so every consumer matches on one
// name.
const (
	FactWorkerTimeout  = timeline.KindWorkerTimeout
	FactWorkerExit     = timeline.KindWorkerExit
	FactWorkerBoot     = timeline.KindWorkerBoot
	FactMasterStart    = timeline.KindMasterStart
	FactMasterReload   = timeline.KindMasterReload
	FactMasterShutdown = timeline.KindMasterShutdown
	FactBootFailure    = timeline.KindBootFailure
	FactMasterSignal   = timeline.KindMasterSignal
	FactMasterPromoted = timeline.KindMasterPromoted
	// FactMasterNotReaping is Gunicorn 24.0.0's "Unhandled signal: cld":
	// the master will not replace dead workers. Once per master.
	FactMasterNotReaping = timeline.KindMasterNotReaping
)

// AllFactKinds lists every Fact kind.
var AllFactKinds = []string{
	FactWorkerTimeout, FactWorkerExit, FactWorkerBoot, FactMasterStart, FactMasterReload,
	FactMasterShutdown, FactBootFailure, FactMasterSignal, FactMasterPromoted, FactMasterNotReaping,
	FactWorkerTimeoutFrame,
}

// Fact is one conclusion, for the event timeline. PID and Detail are
// evidence for people, never metric labels.
//
//	worker_timeout   PID worker
//	worker_exit      PID worker (0 for an inferred death), Cause an ExitCause label, Detail the evidence
//	worker_boot      PID worker
//	master_start     PID master, Detail the version
//	master_reload    PID master
//	master_shutdown  PID master, Detail the master name ("Master", "Master.2")
//	boot_failure     PID master, Cause a BootFailureReason label, Detail the worker's exception if seen
//	master_signal    PID master, Cause the signal name ("hup", ...)
//	master_promoted  PID master
//	master_not_reaping  PID master, Detail its version (the "Starting gunicorn X")
//	worker_timeout_frame  PID worker, Detail "innermost app frame at file:line in function", Attrs the parts
type Fact struct {
	// Time is the log time of the line the fact rests on (for worker_exit,
	// the first line that reported the exit); the wall time when the line
	// carried no time.
	Time   time.Time
	Kind   string
	PID    int
	Cause  string
	Detail string
	// Attrs are structured evidence (worker_timeout_frame only); nil
	// otherwise.
	Attrs map[string]string
}

// Options configure a Tracker. Zero values select the defaults.
type Options struct {
	// Now is the wall clock (default time.Now).
	Now func() time.Time
	// PendingWindow is how long an exit stays open for lines that refine
	// its cause (default 3s). It is measured both in wall time since the
	// Tracker saw the first line about the exit (checked by Flush and
	// ObserveLine) and in log time between that line and any later line
	// (checked by ObserveLine), whichever elapses first: live tailing
	// commits on the wall clock, a replayed backlog on the log's own clock.
	PendingWindow time.Duration
	// ActionWindow bounds how long a TTOU waits for the worker it retires,
	// and how long after a HUP or TERM a worker the tracker never saw boot
	// (a log followed from the middle) is still taken as retired by it
	// (default 60s, the same dual clock). For workers seen alive at the
	// HUP or TERM the retirement does not expire: Gunicorn stops them all.
	ActionWindow time.Duration
	// MaxTrackedPIDs bounds the worker pids remembered (default 4096).
	// Beyond it the oldest are forgotten: committed ones first, pending
	// ones are committed early, live ones are dropped.
	MaxTrackedPIDs int
	// Location is used for log times written without a zone (nil:
	// time.Local).
	Location *time.Location
}

// Defaults.
const (
	DefaultPendingWindow  = 3 * time.Second
	DefaultActionWindow   = 60 * time.Second
	DefaultMaxTrackedPIDs = 4096
)

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PendingWindow <= 0 {
		o.PendingWindow = DefaultPendingWindow
	}
	if o.ActionWindow <= 0 {
		o.ActionWindow = DefaultActionWindow
	}
	if o.MaxTrackedPIDs <= 0 {
		o.MaxTrackedPIDs = DefaultMaxTrackedPIDs
	}
	return o
}
