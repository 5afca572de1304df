// Package incident owns correlation: joining what the exporter observed
// from different sources into evidence, appended to the event timeline,
// that people, the incident engine and the remediation receiver read. It
// decides what a set of observations means; it reads nothing itself. The
// sources (the /proc sampler, the kernel's OOM records, PostgreSQL) are
// reached through function values passed in, the clock is passed in, and
// the judging and wording are pure functions over plain data, tested rule
// by rule.
//
// Evidence produced today:
//
//  1. OOM verdicts (source proc): a worker that died by SIGKILL without a
//     timeout is oom_confirmed when the kernel log or a memory cgroup's
//     oom_kill counter says the OOM killer took it, oom_suspected
//     otherwise (the SIGKILL came from someone, and memory is the usual
//     suspect, but nothing proves it). The event is stamped with the log
//     time of the death.
//  2. Backend links (source postgres): a worker stuck on a TCP socket
//     read, or on any socket whose peer is a PostgreSQL port, is linked
//     once per stuck episode to the backend serving its connection (found
//     by the worker's local port): state, wait event, query age, whether
//     it is blocked and by whom. A link that finds nothing is not retried
//     for the same episode, so a port no backend uses costs one query.
//
// Guard (guard.go) is today's answer to the remediation receiver's "would
// more workers help, or make things worse?" (intent.Guard), from the
// collectors' state: data freshness, stuck workers on the database,
// PostgreSQL saturation, PgBouncer waiting clients, CPU and memory.
//
// # Incidents
//
// The Engine (engine.go) follows the timeline by sequence number and turns
// evidence into incidents, one open incident per app at a time. An
// incident opens on the app's first WORKER TIMEOUT, on a firing alert the
// remediation receiver decided about (not its own reconciliation, not an
// ignored alert), on an OOM kill, on a worker past 0.8 of the timeout (a
// stuck event or the /proc sample), or when every worker is busy and at
// least half as many clients as workers wait in the listen backlog in two
// consecutive steps (the capacity signal: such an episode has no timeout
// at all). It keeps the app's events from Lookback before its opening,
// every receiver decision taken while it is open, and the worst of the
// collectors' numbers over its samples (Observed), all bounded. It closes
// after QuietPeriod with no timeout, no stuck worker, no worker past 0.8
// of the timeout and no backlog episode; reflex_incidents_total counts it
// then, under its final cause.
//
// # How the verdict is decided
//
// Judge (verdict.go) is a pure function of the incident's events and
// Observed, recomputed at every step. The first rule that matches gives
// the cause:
//
//  1. memory_oom: an oom_confirmed event, or a worker's RSS at 95% of its
//     memory limit (confidence 0.95, 0.7).
//  2. database_lock: a stuck worker's backend link (worker_waits_on_backend)
//     waits on a lock or is blocked; names the blocker and whether it is
//     idle in transaction (0.9).
//  3. database_slow_query: a backend link to a backend running a query
//     (0.9); names the backend, the query's age and text when known.
//  4. database_pool_exhausted: a PgBouncer pool had clients waiting (0.85),
//     or a PostgreSQL target was at Rules.DBSaturatedAbove of its
//     connections (0.8). It comes after the links because a slow query
//     also fills the pool: the query is the cause.
//  5. database_slow_query: workers stuck reading from a database peer
//     (PostgreSQL, PgBouncer, or a Rules.DatabasePorts port) with no
//     backend linked (0.6).
//  6. deadlock, 7. cpu_bound, 8. external_call: the stuck kind most stuck
//     episodes showed, futex (a lock inside the process, no I/O), cpu
//     (running; says whether the host's cores were saturated) or a
//     socket read from a peer that is not a database (names host:port;
//     a worker still reading its own client's request, peer_is_client,
//     is not counted: a slow client is no external call); on a tie in
//     that order (0.8).
//  9. deploy_regression: the first timeout came within Rules.DeployWindow
//     after a deploy marker, naming it and the timeout rates before and
//     after. A code change (an event whose kind begins with "deploy", or
//     of source "deploy") gives 0.8; a reload, USR2 promotion or new
//     master alone only 0.5, since a HUP also rotates logs.
//  10. capacity: no timeout in the window, every worker busy in some
//     sample and clients in the listen backlog (0.8; 0.6 on one sample).
//  11. memory_oom: workers killed by SIGKILL without a timeout, the OOM
//     killer not confirmed (0.5).
//  12. unknown (0), saying what the stuck workers were doing.
//
// Whatever the rule, the innermost app frame of the newest timeout's
// traceback (the worker_timeout_frame event the error log gives after the
// timeout, or attribute app_frame of the worker_timeout event; Gunicorn >=
// 22 logs the traceback) is decisive evidence: it is where the worker was
// stuck. Every verdict carries a line of advice: what a person should do.
//
// # Verdict history
//
// An incident's cause can change while it is open: two faults back to
// back with no quiet period between them stay one incident (workers hang
// on an external service, then on a slow query), and evidence arriving
// late (a backend link, a deploy announced after the first timeout)
// decides a better verdict. The incident's cause, confidence, summary and
// advice are always the latest verdict; Causes keeps the history, oldest
// first, and each remediation decision names the cause it was taken under
// (the verdict its refusal names, else the verdict of the engine's last
// step before it read the decision: the receiver's guard steps the engine
// just before deciding). At every step:
//
//  1. The first verdict opens the history, from the incident's opening.
//  2. The same cause as the current entry updates its confidence and
//     summary (an entry shows the last verdict judged under its cause).
//  3. A flap is folded: when the verdict goes back to the cause of the
//     entry before the current one, and the current one was judged at
//     fewer than EngineOptions.HoldSteps (3) consecutive steps and no
//     decision was taken under it, the current entry is removed and the
//     one before goes on as if never interrupted. Judge is deterministic
//     and its window only grows, so every change rests on new evidence;
//     but the stuck-kind majority of rules 6 to 8 can tip back and forth
//     with each new stuck event, and that must not make a long list.
//  4. Any other change is recorded at once: the current entry ends (until
//     is this step's time) and the new cause starts. A change forward (to
//     a third cause) is never folded, nor one that held for HoldSteps
//     steps, nor one a decision was taken under (so "acted under
//     external_call, refused under database_slow_query" can always be
//     read next to the history that explains it).
//
// The history is bounded by EngineOptions.MaxCauses (16): the first entry
// (what the incident opened as) and the newest are kept, the ones in
// between are dropped and counted (CausesDropped). The current entry's
// until is null while the incident is open and its closing time once it
// is closed. Times are the engine's clock at the steps that judged them,
// except the first entry's start, which is the incident's opening.
//
// The Engine is also an intent.Guard (verdictguard.go): a scale-up is
// refused with a verdict-named refusal for the database verdicts,
// memory_oom, deploy_regression and cpu_bound on a saturated host; for
// capacity, external_call and the rest the fallback Guard's headroom
// checks decide.
package incident
