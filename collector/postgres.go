package collector

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
)

// Postgres exports PostgreSQL's and PgBouncer's side of a timeout. Unlike
// the log-derived collectors it queries at scrape time, so it is a
// ContextCollector: the Exporter hands it each scrape's context (deadline =
// Prometheus's scrape timeout minus an offset), and every target of the
// current pgmon.Set is scraped concurrently under it.
type Postgres struct {
	set func() *pgmon.Set
}

// NewPostgres returns the PostgreSQL collector. set returns the targets of
// the running configuration (nil for none); it is called on every scrape,
// so a reload that replaces the set takes effect at the next scrape.
func NewPostgres(set func() *pgmon.Set) *Postgres { return &Postgres{set: set} }

var (
	pgUp           = newDesc(reflexNS, "pg", "up", "1 if the PostgreSQL target answered this scrape in time with a role that sees every session (pg_read_all_stats); 0 if it is down, hung, refuses auth or lacks the privilege.", "target")
	pgPriv         = newDesc(reflexNS, "pg", "insufficient_privilege", "1 if the exporter's role is not a member of pg_read_all_stats: other roles' sessions are counted as state=\"unknown\".", "target")
	pgDuration     = newDesc(reflexNS, "pg", "scrape_duration_seconds", "Time the PostgreSQL queries of this scrape took.", "target")
	pgConnects     = newDesc(reflexNS, "pg", "connects_total", "Connections the exporter opened to the target (one is kept; more means reconnects).", "target")
	pgConns        = newDesc(reflexNS, "pg", "connections", "Client sessions by database, application group and state (every state exported; the exporter's own session excluded).", "target", "datname", "app_group", "state")
	pgMaxConns     = newDesc(reflexNS, "pg", "usable_connections", "max_connections minus the slots reserved for superusers.", "target")
	pgSaturation   = newDesc(reflexNS, "pg", "connection_saturation_ratio", "Client backends (the exporter's included) over usable connections: 1 means ordinary roles can no longer connect.", "target")
	pgActiveOver   = newDesc(reflexNS, "pg", "active_queries_over", "Active queries running longer than the threshold (seconds, from postgres[].age_thresholds).", "target", "threshold_seconds")
	pgLongest      = newDesc(reflexNS, "pg", "longest_active_query_seconds", "Age of the longest-running active query.", "target")
	pgOldestTx     = newDesc(reflexNS, "pg", "oldest_transaction_seconds", "Age of the oldest open transaction.", "target")
	pgIdleInTx     = newDesc(reflexNS, "pg", "idle_in_transaction_sessions", "Sessions idle in transaction (aborted ones included).", "target")
	pgIdleInTxAge  = newDesc(reflexNS, "pg", "idle_in_transaction_max_age_seconds", "Longest time a session has been idle in transaction.", "target")
	pgLockWaiting  = newDesc(reflexNS, "pg", "lock_waiting_sessions", "Sessions waiting on a lock (wait_event_type Lock).", "target")
	pgBlocked      = newDesc(reflexNS, "pg", "blocked_sessions", "Sessions pg_blocking_pids() reports as blocked.", "target")
	pgBlockersIdle = newDesc(reflexNS, "pg", "blockers_idle_in_transaction", "Distinct blocking sessions that are themselves idle in transaction: an application holding a lock and doing nothing.", "target")
	pgOldestWait   = newDesc(reflexNS, "pg", "oldest_blocked_wait_seconds", "Longest current lock wait.", "target")
	pgChainDepth   = newDesc(reflexNS, "pg", "blocking_chain_max_depth", "Longest waits-for chain: 1 = waiting on a lock holder, 2 = waiting on a waiter.", "target")

	bnUp        = newDesc(reflexNS, "pgbouncer", "up", "1 if the PgBouncer admin console answered SHOW POOLS in time.", "target")
	bnClients   = newDesc(reflexNS, "pgbouncer", "pool_clients", "Client connections of a pool by state (active, waiting). Waiting clients mean the pool is exhausted.", "target", "database", "user", "state")
	bnServers   = newDesc(reflexNS, "pgbouncer", "pool_servers", "Server connections of a pool by state (active, idle, used).", "target", "database", "user", "state")
	bnMaxWait   = newDesc(reflexNS, "pgbouncer", "pool_max_wait_seconds", "How long the oldest waiting client of the pool has waited.", "target", "database", "user")
	bnSaturated = newDesc(reflexNS, "pgbouncer", "pool_saturated", "1 if clients are waiting for a server connection in this pool (cl_waiting > 0).", "target", "database", "user")
	bnOverflow  = newDesc(reflexNS, "pgbouncer", "pools_overflow", "Pools past the cap, summed into database=\"other\", user=\"other\".", "target")
)

// Update implements Collector for a caller without a scrape context: the
// queries are then bounded only by each target's own timeouts.
func (c *Postgres) Update(ch chan<- prometheus.Metric) error {
	return c.UpdateContext(context.Background(), ch)
}

// UpdateContext implements ContextCollector. A target that is down is a
// series with up 0, not a failure of the collector; only a scrape that
// panicked is.
func (c *Postgres) UpdateContext(ctx context.Context, ch chan<- prometheus.Metric) error {
	var set *pgmon.Set
	if c.set != nil {
		set = c.set()
	}
	snap, err := set.Scrape(ctx)
	e := &emitter{ch: ch}
	for _, s := range snap.Targets {
		emitPG(e, s)
	}
	for _, s := range snap.Bouncers {
		emitBouncer(e, s)
	}
	return errors.Join(err, e.err)
}

func emitPG(e *emitter, s pgmon.Snapshot) {
	t := s.Target
	e.gauge(pgUp, boolFloat(s.Up), t)
	e.gauge(pgPriv, boolFloat(s.InsufficientPrivilege), t)
	e.gauge(pgDuration, s.Duration.Seconds(), t)
	e.counter(pgConnects, s.Connects, t)
	if s.MaxConnections == 0 {
		return // never reached the server: no figures, rather than zeros that look real
	}
	for _, c := range s.Connections {
		e.gauge(pgConns, float64(c.Count), t, c.Database, c.AppGroup, c.State)
	}
	e.gauge(pgMaxConns, float64(s.MaxConnections-s.ReservedConnections), t)
	e.gauge(pgSaturation, s.Saturation, t)
	for _, a := range s.ActiveOver {
		e.gauge(pgActiveOver, float64(a.Count), t, strconv.FormatFloat(a.Threshold.Seconds(), 'f', -1, 64))
	}
	e.gauge(pgLongest, s.LongestActive.Seconds(), t)
	e.gauge(pgOldestTx, s.OldestTransaction.Seconds(), t)
	e.gauge(pgIdleInTx, float64(s.IdleInTransaction), t)
	e.gauge(pgIdleInTxAge, s.IdleInTransactionMaxAge.Seconds(), t)
	e.gauge(pgLockWaiting, float64(s.LockWaiting), t)
	e.gauge(pgBlocked, float64(s.Blocked), t)
	e.gauge(pgBlockersIdle, float64(s.BlockersIdleInTransaction), t)
	e.gauge(pgOldestWait, s.OldestBlockedWait.Seconds(), t)
	e.gauge(pgChainDepth, float64(s.MaxBlockingDepth), t)
}

func emitBouncer(e *emitter, s pgmon.BouncerSnapshot) {
	t := s.Target
	e.gauge(bnUp, boolFloat(s.Up), t)
	if !s.Up {
		return
	}
	for _, p := range s.Pools {
		e.gauge(bnClients, float64(p.ClientActive), t, p.Database, p.User, "active")
		e.gauge(bnClients, float64(p.ClientWaiting), t, p.Database, p.User, "waiting")
		e.gauge(bnServers, float64(p.ServerActive), t, p.Database, p.User, "active")
		e.gauge(bnServers, float64(p.ServerIdle), t, p.Database, p.User, "idle")
		e.gauge(bnServers, float64(p.ServerUsed), t, p.Database, p.User, "used")
		e.gauge(bnMaxWait, p.MaxWait.Seconds(), t, p.Database, p.User)
		e.gauge(bnSaturated, boolFloat(p.Saturated), t, p.Database, p.User)
	}
	e.gauge(bnOverflow, float64(s.PoolsOverflow), t)
}

// ScrapeDeadline turns Prometheus's X-Prometheus-Scrape-Timeout-Seconds
// header into a deadline for database queries: the header minus offset,
// at least 100ms; def when the header is missing or unparsable.
func ScrapeDeadline(header string, offset, def time.Duration) time.Duration {
	secs, err := strconv.ParseFloat(header, 64)
	if err != nil || secs <= 0 {
		return def
	}
	d := time.Duration(secs*float64(time.Second)) - offset
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return d
}
