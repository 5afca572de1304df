// Package pgmon owns the database's side of a Gunicorn timeout: it queries
// PostgreSQL (pg_stat_activity, pg_blocking_pids, pg_locks) and PgBouncer
// (SHOW POOLS) at scrape time and returns plain Go structs, and it links a
// Gunicorn worker blocked on a database socket to the backend serving it
// (LinkBackend). It has no Prometheus imports: the collector turns
// snapshots into const metrics.
//
// Each target holds at most one connection, opened lazily on the first
// call and reopened on the next call after it breaks, so a database that is
// down at start stops nothing. The session is read-only, named
// "gunicorn-reflex", and carries server-side statement_timeout and
// lock_timeout; every query runs under the caller's deadline (the scrape
// timeout minus an offset), further bounded by TargetConfig.Timeout. A
// hung server (accepts TCP, never answers) makes a call return at its
// deadline with up=false, without leaving goroutines or sockets behind
// beyond a short, bounded cleanup.
//
// The exporter's own backend is excluded from everything reported, labels
// come only from closed sets (state, databases in pg_database capped at
// MaxDatabases, configured application groups capped at MaxGroups, then
// "other"), and neither query text, client addresses nor pids become
// labels. The query column is selected only by LinkBackend and only when
// QueryText is enabled; the text is then stripped of literals and
// truncated. The DSN and its password never appear in errors, logs or
// snapshots.
package pgmon

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// ApplicationName is the application_name of every session pgmon opens.
const ApplicationName = "gunicorn-reflex"

// Defaults for zero TargetConfig fields.
const (
	DefaultStatementTimeout  = 5 * time.Second
	DefaultLockTimeout       = time.Second
	DefaultConnectTimeout    = 5 * time.Second
	DefaultTimeout           = 10 * time.Second
	DefaultMaxGroups         = 10
	DefaultMaxDatabases      = 32
	DefaultQueryTextMaxBytes = 256
	maxQueryTextBytes        = 64 << 10
)

// DefaultAgeThresholds are used when TargetConfig.AgeThresholds is empty.
var DefaultAgeThresholds = []time.Duration{5 * time.Second, 30 * time.Second}

// TargetConfig configures one PostgreSQL target.
type TargetConfig struct {
	// Name identifies the target in snapshots, errors and logs (a label
	// value from configuration). Required.
	Name string
	// DSN is a libpq keyword/value string or postgres:// URL, already read
	// by the caller from a file or environment variable. It may contain a
	// password; pgmon never logs or returns it.
	DSN string
	// AgeThresholds for counting active queries older than each value
	// (e.g. 5s, 30s and the app's Gunicorn timeout). Sorted and
	// de-duplicated; default DefaultAgeThresholds.
	AgeThresholds []time.Duration
	// AppGroups map application_name to a group label, first match wins;
	// unmatched names are "other".
	AppGroups []AppGroup
	// MaxGroups caps the distinct groups (in config order); the rest are
	// "other". Default DefaultMaxGroups.
	MaxGroups int
	// MaxDatabases caps the database label set (databases accepting
	// connections, by name); the rest are "other". Default
	// DefaultMaxDatabases.
	MaxDatabases int
	// QueryText lets LinkBackend return the query text (literals stripped,
	// truncated to QueryTextMaxBytes, default DefaultQueryTextMaxBytes).
	QueryText         bool
	QueryTextMaxBytes int
	// StatementTimeout and LockTimeout are set on the session as runtime
	// parameters. Zero keeps a value given in the DSN, else the default.
	StatementTimeout time.Duration
	LockTimeout      time.Duration
	// ConnectTimeout bounds connection establishment. Zero keeps the DSN's
	// connect_timeout, else DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Timeout bounds every call when the caller's context has no earlier
	// deadline. Default DefaultTimeout.
	Timeout time.Duration
}

// String describes the configuration without the DSN.
func (c TargetConfig) String() string { return fmt.Sprintf("pgmon.TargetConfig{Name: %q}", c.Name) }

// GoString is String, so %#v does not print the DSN either.
func (c TargetConfig) GoString() string { return c.String() }

// LogValue logs the configuration without the DSN.
func (c TargetConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.Bool("query_text", c.QueryText))
}

// Snapshot is one scrape of a PostgreSQL target. When Up is false because
// the target could not be queried, only Target, Up, Err, Duration and
// Connects are set. When it is false because the role lacks
// pg_read_all_stats, the figures are filled in from what the role can see:
// other roles' sessions are counted under state "unknown" (never guessed)
// and are missing from the age, lock and blocking figures.
type Snapshot struct {
	Target string
	Up     bool
	Err    error // why Up is false; redacted, an *Error
	// InsufficientPrivilege: the role is not a member of pg_read_all_stats
	// (nor superuser). Up is false too.
	InsufficientPrivilege bool
	Duration              time.Duration // time the call took
	Connects              uint64        // connections established by this target so far

	ServerVersionNum    int
	MaxConnections      int // max_connections
	ReservedConnections int // superuser_reserved_connections + reserved_connections (16+)
	// ClientBackends counts every client backend including the exporter's
	// own (it holds a slot too); Connections exclude it.
	ClientBackends int
	// Saturation is ClientBackends / (MaxConnections - ReservedConnections):
	// 1 when ordinary roles can no longer connect; above 1 when superusers
	// use the reserved slots.
	Saturation float64

	// Connections has one entry per database x application group x state,
	// zeros included, in a stable order.
	Connections []ConnectionCount

	ActiveOver                []ThresholdCount // active queries running longer than each threshold
	LongestActive             time.Duration    // age of the longest-running active query
	OldestTransaction         time.Duration    // age of the oldest open transaction
	IdleInTransaction         int              // sessions idle in transaction (including aborted)
	IdleInTransactionMaxAge   time.Duration    // longest time one of them has been idle
	LockWaiting               int              // sessions with wait_event_type 'Lock'
	Blocked                   int              // sessions pg_blocking_pids reports as blocked
	BlockersIdleInTransaction int              // distinct blockers that are idle in transaction
	OldestBlockedWait         time.Duration    // longest lock wait (pg_locks.waitstart on 14+, else since the state change)
	MaxBlockingDepth          int              // longest waits-for chain: 1 = waiting on a holder, 2 = waiting on a waiter
}

// ConnectionCount is the number of sessions of one database, application
// group and state.
type ConnectionCount struct {
	Database string
	AppGroup string
	State    string
	Count    int
}

// ThresholdCount is the number of active queries older than Threshold.
type ThresholdCount struct {
	Threshold time.Duration
	Count     int
}

// Target monitors one PostgreSQL server. Its methods are safe for
// concurrent use; calls are serialised on its single connection.
type Target struct {
	cfg     TargetConfig
	h       *holder
	logger  *slog.Logger
	summary summaryConfig

	// Guarded by h.sem.
	activitySQL string
	linkSQL     map[bool]string // by "address given"
	privileged  bool
	privWarned  bool
	rows        []activityRow
}

// NewTarget validates cfg and returns a Target. It does not connect.
func NewTarget(cfg TargetConfig, logger *slog.Logger) (*Target, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		return nil, fmt.Errorf("pgmon: target name is empty: %w", ErrInvalid)
	}
	connCfg, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		red := newRedactor(cfg.DSN, "")
		return nil, &Error{Target: cfg.Name, Op: "parse dsn", Kind: ErrInvalid, detail: red.redact(err.Error())}
	}
	red := newRedactor(cfg.DSN, connCfg.Password)
	if len(cfg.AgeThresholds) == 0 {
		cfg.AgeThresholds = DefaultAgeThresholds
	}
	cfg.AgeThresholds = sortThresholds(cfg.AgeThresholds)
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = DefaultMaxGroups
	}
	if cfg.MaxDatabases <= 0 {
		cfg.MaxDatabases = DefaultMaxDatabases
	}
	if cfg.QueryTextMaxBytes <= 0 {
		cfg.QueryTextMaxBytes = DefaultQueryTextMaxBytes
	}
	cfg.QueryTextMaxBytes = min(cfg.QueryTextMaxBytes, maxQueryTextBytes)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	groups, err := newGrouper(cfg.AppGroups, cfg.MaxGroups)
	if err != nil {
		return nil, fmt.Errorf("pgmon: target %q: %w: %w", cfg.Name, ErrInvalid, err)
	}

	rp := connCfg.RuntimeParams
	setDuration := func(key string, d, def time.Duration) {
		switch {
		case d > 0:
			rp[key] = strconv.FormatInt(max(d.Milliseconds(), 1), 10)
		case rp[key] == "":
			rp[key] = strconv.FormatInt(def.Milliseconds(), 10)
		}
	}
	setDuration("statement_timeout", cfg.StatementTimeout, DefaultStatementTimeout)
	setDuration("lock_timeout", cfg.LockTimeout, DefaultLockTimeout)
	rp["application_name"] = ApplicationName
	rp["default_transaction_read_only"] = "on"
	switch {
	case cfg.ConnectTimeout > 0:
		connCfg.ConnectTimeout = cfg.ConnectTimeout
	case connCfg.ConnectTimeout == 0:
		connCfg.ConnectTimeout = DefaultConnectTimeout
	}
	// Not needed and not wanted: no tracer or logger that could print
	// arguments, and no statement cache growth beyond our few queries.
	connCfg.Tracer = nil
	connCfg.StatementCacheCapacity = 16

	logger = logger.With("target", cfg.Name)
	t := &Target{
		cfg:    cfg,
		logger: logger,
		summary: summaryConfig{
			thresholds:   cfg.AgeThresholds,
			groups:       groups,
			maxDatabases: cfg.MaxDatabases,
		},
	}
	t.h = newHolder(cfg.Name, "postgres", connCfg, red, logger, cfg.Timeout)
	t.h.onConnect = t.onConnect
	return t, nil
}

// String names the target without revealing its configuration.
func (t *Target) String() string { return fmt.Sprintf("pgmon.Target(%q)", t.cfg.Name) }

// GoString is String.
func (t *Target) GoString() string { return t.String() }

// Name returns the configured name.
func (t *Target) Name() string { return t.cfg.Name }

// Close closes the connection, waiting for an in-flight call to end (at
// its deadline at the latest). Later calls fail with ErrClosed.
func (t *Target) Close() { t.h.close() }

// sessionSQL runs once per connection: the server version picks the
// activity query, and the role's visibility is remembered for LinkBackend.
const sessionSQL = `SELECT current_setting('server_version_num')::int,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')`

// minServerVersion is the oldest server the queries support
// (backend_type, pg_read_all_stats and pg_blocking_pids exist from 10).
const minServerVersion = 100000

func (t *Target) onConnect(ctx context.Context, conn *pgx.Conn) error {
	var version int
	var priv bool
	if err := conn.QueryRow(ctx, sessionSQL).Scan(&version, &priv); err != nil {
		return err
	}
	if version < minServerVersion {
		return fmt.Errorf("server_version_num %d is older than PostgreSQL 10", version)
	}
	t.privileged = priv
	t.activitySQL = activitySQL(version)
	t.linkSQL = map[bool]string{true: linkSQL(true, t.cfg.QueryText), false: linkSQL(false, t.cfg.QueryText)}
	return nil
}

// Scrape queries the target and returns a snapshot. It never blocks past
// ctx's deadline (nor past TargetConfig.Timeout). On failure the snapshot
// has Up false and Err set, and the same error is returned.
func (t *Target) Scrape(ctx context.Context) (Snapshot, error) {
	start := time.Now()
	snap := Snapshot{Target: t.cfg.Name}
	ctx, cancel := t.h.bound(ctx)
	defer cancel()

	err := t.h.do(ctx, opScrape, func(ctx context.Context, conn *pgx.Conn) error {
		st, err := t.query(ctx, conn)
		if err != nil {
			return err
		}
		summarize(t.summary, st, t.rows, &snap)
		// Keep the buffer from pinning a burst's worth of rows forever.
		if cap(t.rows) > 4*len(t.rows)+1024 {
			t.rows = nil
		}
		return nil
	})
	snap.Duration = time.Since(start)
	snap.Connects = t.h.connects.Load()
	if err != nil {
		snap = Snapshot{Target: snap.Target, Duration: snap.Duration, Connects: snap.Connects, Err: err}
		return snap, err
	}
	if snap.InsufficientPrivilege {
		snap.Err = &Error{Target: t.cfg.Name, Op: opScrape, Kind: ErrInsufficientPrivilege,
			detail: "other roles' sessions are invisible; GRANT pg_read_all_stats to the exporter's role"}
		return snap, snap.Err
	}
	snap.Up = true
	return snap, nil
}

// query runs the settings and activity queries in one round trip and
// keeps the rows in t.rows; called with the semaphore held.
func (t *Target) query(ctx context.Context, conn *pgx.Conn) (settings, error) {
	var st settings
	b := &pgx.Batch{}
	b.Queue(settingsSQL)
	b.Queue(t.activitySQL)
	br := conn.SendBatch(ctx, b)
	if err := br.QueryRow().Scan(&st.version, &st.maxConn, &st.superReserved, &st.reserved, &st.privileged, &st.datnames); err != nil {
		_ = br.Close()
		return st, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return st, err
	}
	t.rows = t.rows[:0]
	for rows.Next() {
		t.rows = append(t.rows, activityRow{})
		if err := rows.Scan(t.rows[len(t.rows)-1].dest()...); err != nil {
			rows.Close()
			_ = br.Close()
			return st, err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		_ = br.Close()
		return st, err
	}
	if err := br.Close(); err != nil {
		return st, err
	}
	t.noticePrivilege(st.privileged)
	return st, nil
}

// noticePrivilege logs a missing pg_read_all_stats once per transition;
// called with the semaphore held.
func (t *Target) noticePrivilege(ok bool) {
	t.privileged = ok
	switch {
	case !ok && !t.privWarned:
		t.privWarned = true
		t.logger.Warn("the exporter's role is not a member of pg_read_all_stats: other roles' sessions show state unknown and are missing from ages, lock waits and blocking; reporting up=0 with insufficient_privilege=1 until it is granted",
			"fix", "GRANT pg_read_all_stats TO <exporter role>")
	case ok && t.privWarned:
		t.privWarned = false
		t.logger.Info("the exporter's role can read all sessions again (pg_read_all_stats)")
	}
}
