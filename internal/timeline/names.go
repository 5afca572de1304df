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
	// SourceDeploy events are deploy markers: a change of an app's code
	// seen on disk (internal/deploy) or announced by POST /api/v1/deploys.
	SourceDeploy = "deploy"
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

	// Source deploy. KindDeploy: the app's code changed; Cause says how it
	// was seen (release_symlink, git_head, py_mtime, marker_file, api),
	// Attrs "from" and "to" (or "version") what changed. The lifecycle's
	// master_start, master_reload and master_promoted are deploy markers
	// too, of a weaker kind: a HUP also rotates logs.
	KindDeploy = "deploy"

	// Source errorlog. KindWorkerTimeoutFrame: the innermost app frame of
	// the traceback a Gunicorn >= 22 worker logs when it is aborted after
	// its WORKER TIMEOUT, i.e. where the request was stuck. PID is the
	// worker; Detail "file:line in function"; Attrs file, line, function
	// and code (the source line Python printed).
	KindWorkerTimeoutFrame = "worker_timeout_frame"
)
