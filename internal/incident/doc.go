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
package incident
