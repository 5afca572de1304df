package incident

import (
	"time"
)

// Cause is an incident's verdict: a closed set, usable as a metric label
// value.
type Cause string

// The closed set of causes (the package doc says how one is chosen).
const (
	CauseDatabaseSlowQuery     Cause = "database_slow_query"
	CauseDatabaseLock          Cause = "database_lock"
	CauseDatabasePoolExhausted Cause = "database_pool_exhausted"
	CauseExternalCall          Cause = "external_call"
	CauseCPUBound              Cause = "cpu_bound"
	CauseDeadlock              Cause = "deadlock"
	CauseMemoryOOM             Cause = "memory_oom"
	CauseDeployRegression      Cause = "deploy_regression"
	CauseCapacity              Cause = "capacity"
	CauseUnknown               Cause = "unknown"
)

// Causes lists every cause, in a fixed order (metrics initialise a series
// per cause).
var Causes = []Cause{
	CauseDatabaseSlowQuery, CauseDatabaseLock, CauseDatabasePoolExhausted, CauseExternalCall, CauseCPUBound,
	CauseDeadlock, CauseMemoryOOM, CauseDeployRegression, CauseCapacity, CauseUnknown,
}

// ParseCause maps a string onto the closed set; ok is false for anything
// else.
func ParseCause(s string) (Cause, bool) {
	for _, c := range Causes {
		if string(c) == s {
			return c, true
		}
	}
	return "", false
}

// IsDatabase reports whether c is one of the database verdicts.
func (c Cause) IsDatabase() bool {
	return c == CauseDatabaseSlowQuery || c == CauseDatabaseLock || c == CauseDatabasePoolExhausted
}

// State is whether an incident is still open.
type State string

// The incident states.
const (
	StateOpen   State = "open"
	StateClosed State = "closed"
)

// ParseState maps "open" or "closed" onto a State.
func ParseState(s string) (State, bool) {
	switch State(s) {
	case StateOpen, StateClosed:
		return State(s), true
	}
	return "", false
}

// Trigger values of Incident.Trigger: what opened it.
const (
	TriggerTimeout = "worker_timeout"  // the app's first WORKER TIMEOUT
	TriggerAlert   = "alert"           // a firing alert the receiver got
	TriggerPast80  = "past_80_timeout" // workers past 0.8 of the timeout
	TriggerBacklog = "listen_backlog"  // every worker busy and clients queued in the listen backlog
	TriggerOOM     = "oom"             // a worker killed by the OOM killer
)

// Evidence is one observation an incident rests on: a timeline event
// (Seq > 0) or a fact of the collectors' state (Seq 0, Kind one of the
// Fact* values). Decisive marks the evidence that decided the verdict.
type Evidence struct {
	Time     time.Time         `json:"time"`
	Seq      uint64            `json:"seq,omitempty"`
	Source   string            `json:"source"`
	Kind     string            `json:"kind"`
	PID      int               `json:"pid,omitempty"`
	Detail   string            `json:"detail"`
	Decisive bool              `json:"decisive,omitempty"`
	Attrs    map[string]string `json:"attrs,omitempty"`
}

// Kinds of Evidence that are facts of the collectors' state rather than
// timeline events (their Source is SourceState).
const (
	SourceState = "state"

	FactAllBusy         = "all_workers_busy"    // every live worker inside a request
	FactBacklog         = "listen_backlog"      // clients waiting in the master's accept queue
	FactPast80          = "past_80_timeout"     // workers past 0.8 of the timeout
	FactHostCPU         = "host_cpu"            // the host's cores busy fraction
	FactPoolWaiting     = "pool_waiting"        // PgBouncer clients waiting for a server connection
	FactDBSaturated     = "db_saturated"        // PostgreSQL near its connection limit
	FactMemoryNearLimit = "memory_near_limit"   // a worker's RSS near the memory limit
	FactTimeoutRates    = "timeout_rates"       // timeouts before and after a deploy marker
	FactAppFrame        = "app_frame"           // the innermost app frame of a timeout traceback
	FactNoTimeouts      = "no_worker_timeouts"  // requests finished under the timeout
	FactStuckSummary    = "stuck_workers_kinds" // what the stuck workers were doing, by kind
)

// Decision is one remediation decision the receiver took for the app while
// the incident was open (a receiver timeline event).
type Decision struct {
	Time    time.Time `json:"time"`
	Seq     uint64    `json:"seq"`
	Kind    string    `json:"kind"`    // timeline.KindRemediation*
	Action  string    `json:"action"`  // intent.Action
	Outcome string    `json:"outcome"` // intent.Outcome
	Refusal string    `json:"refusal,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	// Cause is the incident's verdict the decision was taken under: the
	// one a verdict refusal names, else the verdict of the engine's last
	// step before it read the decision (the receiver's guard steps the
	// engine just before deciding). Empty when the incident had no verdict
	// yet (the decision that opened it, or one from before its opening).
	Cause Cause `json:"cause,omitempty"`
}

// CauseSpan is one verdict an incident held, from the engine's step that
// first judged it until the step that judged another (Until is null for
// the current one while the incident is open; the closing time once it
// is closed). Confidence and Summary are the last ones judged under it.
type CauseSpan struct {
	Cause      Cause      `json:"cause"`
	Confidence float64    `json:"confidence"`
	Summary    string     `json:"summary"`
	From       time.Time  `json:"from"`
	Until      *time.Time `json:"until"`
}

// Incident is one episode of an app in trouble, from its opening to a
// quiet period, with the verdict recomputed as evidence arrives. Its JSON
// is the shape of GET /api/v1/incidents; ClosedAt is null while open.
type Incident struct {
	ID         string     `json:"id"`
	App        string     `json:"app"`
	State      State      `json:"state"`
	OpenedAt   time.Time  `json:"opened_at"`
	ClosedAt   *time.Time `json:"closed_at"`
	Cause      Cause      `json:"cause"`
	Confidence float64    `json:"confidence"`
	// Summary is the verdict in one sentence.
	Summary string `json:"summary"`
	// Advice is what a person should do ("roll back release X", "set
	// statement_timeout", "end pid N, idle in transaction for 40 s").
	Advice string `json:"advice"`
	// Trigger is what opened the incident (a Trigger* value).
	Trigger string `json:"trigger"`
	// Evidence is what the incident saw, oldest first, at most
	// Options.MaxEvidence entries (the evidence that decided the verdict is
	// always kept); EvidenceDropped counts what the cap left out.
	Evidence        []Evidence `json:"evidence"`
	EvidenceDropped int        `json:"evidence_dropped,omitempty"`
	// Decisions are the receiver's decisions for the app during the
	// incident, oldest first, at most Options.MaxDecisions.
	Decisions        []Decision `json:"decisions"`
	DecisionsDropped int        `json:"decisions_dropped,omitempty"`
	// Causes is the verdict's history, oldest first: a new entry each
	// time the judged cause changed (the package doc says when a change
	// counts), the last one being the current verdict above. At most
	// EngineOptions.MaxCauses entries: the first (what the incident
	// opened as) and the newest are kept; CausesDropped counts the ones
	// in between that the cap left out. Empty only before the first
	// verdict.
	Causes        []CauseSpan `json:"causes"`
	CausesDropped int         `json:"causes_dropped,omitempty"`
}

// Open reports whether the incident is still open.
func (i Incident) Open() bool { return i.State == StateOpen }

// Verdict is the result of Judge: a cause, how sure, the sentence and the
// advice, and the evidence that decided it.
type Verdict struct {
	Cause      Cause
	Confidence float64
	Summary    string
	Advice     string
	// Rule is the number of the precedence rule that matched (package doc).
	Rule int
	// Decisive is the evidence the verdict rests on.
	Decisive []Evidence
	// HostSaturated is set for cpu_bound when the host's cores were
	// saturated (scale-up would only queue for CPU).
	HostSaturated bool
}
