package timeline

// Sources: which part of the exporter observed an event. The incident engine
// and the receiver's audit match on these, so they are constants, never
// literals at the call site.
const (
	// SourceErrorLog events are conclusions drawn from Gunicorn's error log
	// (internal/lifecycle facts).
	SourceErrorLog = "errorlog"
	// SourceProc events come from sampling /proc (stuck workers, OOM
	// verdicts).
	SourceProc = "proc"
	// SourcePostgres events come from the PostgreSQL collector (a stuck
	// worker linked to its backend).
	SourcePostgres = "postgres"
	// SourceReceiver events are the remediation receiver's decisions and
	// actions.
	SourceReceiver = "receiver"
)

// Kinds: the closed set of Event.Kind values, by source.
const (
	// Source errorlog (the lifecycle tracker's fact kinds).
	KindWorkerTimeout  = "worker_timeout"
	KindWorkerExit     = "worker_exit"
	KindWorkerBoot     = "worker_boot"
	KindMasterStart    = "master_start"
	KindMasterReload   = "master_reload"
	KindMasterShutdown = "master_shutdown"
	KindBootFailure    = "boot_failure"
	KindMasterSignal   = "master_signal"
	KindMasterPromoted = "master_promoted"
	// KindMasterNotReaping: a master that does not reap dead workers
	// (Gunicorn 24.0.0's "Unhandled signal: cld"), once per master.
	KindMasterNotReaping = "master_not_reaping"

	// Source proc.
	KindWorkerStuck  = "worker_stuck"
	KindOOMConfirmed = "oom_confirmed"
	KindOOMSuspected = "oom_suspected"

	// Source postgres.
	KindWorkerWaitsOnBackend = "worker_waits_on_backend"

	// Source receiver (receiver/audit; Cause is the decision's outcome).
	// KindRemediationDeclined: a decision that performed nothing (cooling
	// down, out of bounds, refused, dry-run, ...).
	KindRemediationDeclined = "remediation_declined"
	// KindRemediationActed: the actuator was told to act.
	KindRemediationActed = "remediation_acted"
	// KindRemediationVerified: the action's effect was seen.
	KindRemediationVerified = "remediation_verified"
	// KindRemediationFailed: the action could not be performed or its
	// effect was not seen before the deadline.
	KindRemediationFailed = "remediation_failed"
)
