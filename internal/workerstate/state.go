package workerstate

import (
	"time"
)

// AppState is one sample of one Gunicorn master and its workers. Everything
// but PerWorker and Stuck is free of pids and meant for metrics.
type AppState struct {
	// Workers is the number of live workers. Each is counted in exactly one
	// of Busy, Idle, UnknownActivity and Booting.
	Workers int
	// Busy and Idle: sync workers inside a request, and waiting for one.
	Busy, Idle int
	// UnknownActivity: booted workers whose activity /proc cannot tell:
	// every worker of a threaded or async class, and workers whose syscall
	// could not be read (see PermissionDenied) or that are stopped.
	UnknownActivity int
	// Booting: workers that have not yet called notify() once (still
	// importing the app; see heartbeatNotified).
	Booting int
	// PastHalfTimeout and Past80Timeout count workers whose heartbeat age
	// exceeds 50% and 80% of the timeout, leaving out idle sync workers
	// (whose age legitimately reaches timeout/2). Zero when the timeout is
	// disabled.
	PastHalfTimeout, Past80Timeout int
	// RSS and CPU time (user+system) of the workers.
	RSSBytesSum, RSSBytesMax     uint64
	CPUSecondsSum, CPUSecondsMax float64
	MasterStartTime              time.Time
	// MaxHeartbeatAge is the largest heartbeat age among the HeartbeatsRead
	// workers whose heartbeat could be read.
	MaxHeartbeatAge time.Duration
	HeartbeatsRead  int
	// Exiting counts the master's children left out of Workers because
	// they are on their way out: a zombie, a child with no command line
	// (an exiting process has released its argv), or one gone while it was
	// read. Gunicorn forks a replacement only after it reaped the old
	// worker, so while Exiting is not 0 the count is short of what the
	// master runs; a reader that needs that count (the receiver's scale)
	// reads again.
	Exiting int
	// Upgrading is true while a USR2 re-exec master (a child of this
	// master) runs.
	Upgrading bool
	// WorkerClass is the class busy/idle was decided for: the one given to
	// Sample, or "sync" when ClassInferred (the given class was unknown and
	// a worker showed the sync worker's select(2) on the listener).
	WorkerClass   string
	ClassInferred bool
	// PermissionDenied is true when /proc refused something (the master's
	// files, a worker's fds, syscall or memory); UnreadableWorkers counts
	// the workers concerned (their activity is unknown; those without a
	// heartbeat are left out of the heartbeat aggregates).
	PermissionDenied  bool
	UnreadableWorkers int
	// PerWorker describes each worker, by pid: evidence for people (debug
	// pages, incident reports), never metric labels.
	PerWorker []WorkerSample
	// Stuck lists the workers stuck now, by pid.
	Stuck []StuckSnapshot
	// StuckNow counts Stuck by kind.
	StuckNow [NumStuckKinds]int
	// StuckEpisodesTotal counts, since the Sampler was created, the stuck
	// episodes of this app by the kind first diagnosed.
	StuckEpisodesTotal [NumStuckKinds]uint64
	// Backlog is the master's listen queue: clients waiting for a worker,
	// the capacity signal ("more workers would help").
	Backlog Backlog

	// scrape is where each worker's heartbeat file is, for AtScrape; nil in
	// a state not made by Sample.
	scrape *heartbeatRefs
}

// Activity values of WorkerSample.
const (
	ActivityIdle    = "idle"
	ActivityBusy    = "busy"
	ActivityUnknown = "unknown"
	ActivityBooting = "booting"
)

// WorkerSample is one worker as one Sample saw it.
type WorkerSample struct {
	PID int
	// Activity is ActivityIdle, ActivityBusy, ActivityUnknown or
	// ActivityBooting, as counted in AppState.
	Activity string
	// HeartbeatAge is valid when HeartbeatRead.
	HeartbeatAge  time.Duration
	HeartbeatRead bool
	State         string // /proc/<pid>/stat state letter
	Wchan         string
	Syscall       string // syscall name, "running", "none", or "" when unreadable
	RSSBytes      uint64
	CPUSeconds    float64
	Unreadable    bool // /proc refused part of what this worker needed
	// Reason says how Activity was decided ("pselect6 on the listener",
	// "running, holds a client connection", ...).
	Reason string
}

// StuckSnapshot is what one stuck worker is doing.
type StuckSnapshot struct {
	PID  int
	Kind StuckKind
	// Since is the worker's last heartbeat (its ctime): for a sync worker,
	// when the current request started.
	Since        time.Time
	HeartbeatAge time.Duration
	// FirstSeen is when this episode was first diagnosed.
	FirstSeen time.Time
	Booting   bool // the worker never notified: stuck while importing the app
	Wchan     string
	State     string
	Syscall   string // syscall name, "running", or "" when unreadable
	// Peer is "host:port" of a TCP peer (or "unix:<path>" / "unix") for
	// socket_read; LocalPort is the worker's own TCP port on that
	// connection (pg_stat_activity.client_port for a PostgreSQL peer).
	Peer           string
	LocalPort      int
	PeerIsPostgres bool
	// PeerIsClient: the socket is a connection a client opened to the app
	// (its local end is one of the master's listeners): the worker is
	// still receiving the request (a slow or stalled client), not waiting
	// on anything it called.
	PeerIsClient bool
	// CPUSecondsDelta is the CPU time the worker used over CPUInterval, the
	// time since its previous sample (both 0 on its first sample).
	CPUSecondsDelta float64
	CPUInterval     time.Duration
}
