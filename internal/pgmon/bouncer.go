package pgmon

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultMaxPools caps the pools a BouncerSnapshot reports individually.
const DefaultMaxPools = 32

// showPoolsSQL is the only statement sent to the admin console.
const showPoolsSQL = "SHOW POOLS"

// BouncerConfig configures one PgBouncer target.
type BouncerConfig struct {
	Name string // required
	// DSN points at the admin console: dbname=pgbouncer, a user listed in
	// admin_users or stats_users. It may contain a password.
	DSN string
	// MaxPools caps the pools reported individually (sorted by database,
	// then user); the rest are summed into database "other", user "other".
	// Default DefaultMaxPools.
	MaxPools       int
	ConnectTimeout time.Duration // default DefaultConnectTimeout (or the DSN's connect_timeout)
	Timeout        time.Duration // bound per call without an earlier deadline; default DefaultTimeout
}

// String describes the configuration without the DSN.
func (c BouncerConfig) String() string { return fmt.Sprintf("pgmon.BouncerConfig{Name: %q}", c.Name) }

// GoString is String.
func (c BouncerConfig) GoString() string { return c.String() }

// LogValue logs the configuration without the DSN.
func (c BouncerConfig) LogValue() slog.Value { return slog.GroupValue(slog.String("name", c.Name)) }

// BouncerSnapshot is one SHOW POOLS of a PgBouncer target.
type BouncerSnapshot struct {
	Target   string
	Up       bool
	Err      error // why Up is false; redacted, an *Error
	Duration time.Duration
	Connects uint64
	Pools    []Pool // sorted by Database, User; the admin console's own pool is left out
	// PoolsOverflow is the number of pools beyond MaxPools folded into
	// the "other"/"other" entry.
	PoolsOverflow int
}

// Pool is one SHOW POOLS row.
type Pool struct {
	Database      string
	User          string
	ClientActive  int           // cl_active
	ClientWaiting int           // cl_waiting: clients queued for a server connection
	ServerActive  int           // sv_active
	ServerIdle    int           // sv_idle
	ServerUsed    int           // sv_used
	MaxWait       time.Duration // maxwait + maxwait_us: the oldest waiting client's wait
	Saturated     bool          // ClientWaiting > 0
}

// Bouncer monitors one PgBouncer through its admin console, over the
// simple query protocol (the console supports nothing else) without
// prepared statements.
type Bouncer struct {
	cfg BouncerConfig
	h   *holder
}

// NewBouncer validates cfg and returns a Bouncer. It does not connect.
func NewBouncer(cfg BouncerConfig, logger *slog.Logger) (*Bouncer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		return nil, fmt.Errorf("pgmon: bouncer name is empty: %w", ErrInvalid)
	}
	connCfg, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		red := newRedactor(cfg.DSN, "")
		return nil, &Error{Target: cfg.Name, Op: "parse dsn", Kind: ErrInvalid, detail: red.redact(err.Error())}
	}
	if cfg.MaxPools <= 0 {
		cfg.MaxPools = DefaultMaxPools
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.ConnectTimeout > 0:
		connCfg.ConnectTimeout = cfg.ConnectTimeout
	case connCfg.ConnectTimeout == 0:
		connCfg.ConnectTimeout = DefaultConnectTimeout
	}
	connCfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	connCfg.StatementCacheCapacity = 0
	connCfg.DescriptionCacheCapacity = 0
	connCfg.Tracer = nil
	connCfg.RuntimeParams["application_name"] = ApplicationName
	logger = logger.With("target", cfg.Name)
	b := &Bouncer{cfg: cfg}
	b.h = newHolder(cfg.Name, "pgbouncer", connCfg, newRedactor(cfg.DSN, connCfg.Password), logger, cfg.Timeout)
	return b, nil
}

// String names the target without revealing its configuration.
func (b *Bouncer) String() string { return fmt.Sprintf("pgmon.Bouncer(%q)", b.cfg.Name) }

// GoString is String.
func (b *Bouncer) GoString() string { return b.String() }

// Close closes the connection; later calls fail with ErrClosed.
func (b *Bouncer) Close() { b.h.close() }

// Scrape runs SHOW POOLS under ctx's deadline.
func (b *Bouncer) Scrape(ctx context.Context) (BouncerSnapshot, error) {
	start := time.Now()
	snap := BouncerSnapshot{Target: b.cfg.Name}
	ctx, cancel := b.h.bound(ctx)
	defer cancel()
	var pools []Pool
	err := b.h.do(ctx, opPools, func(ctx context.Context, conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, showPoolsSQL)
		if err != nil {
			return err
		}
		defer rows.Close()
		fields := rows.FieldDescriptions()
		cols := make([]string, len(fields))
		for i, f := range fields {
			cols[i] = f.Name
		}
		var raw [][]string
		for rows.Next() {
			vals := rows.RawValues()
			row := make([]string, len(vals))
			for i, v := range vals {
				row[i] = string(v)
			}
			raw = append(raw, row)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		pools, err = parsePools(cols, raw)
		if err != nil {
			return &Error{Target: b.cfg.Name, Op: opPools, Kind: ErrQuery, detail: err.Error()}
		}
		return nil
	})
	snap.Duration = time.Since(start)
	snap.Connects = b.h.connects.Load()
	if err != nil {
		snap.Err = err
		return snap, err
	}
	snap.Pools, snap.PoolsOverflow = capPools(pools, b.cfg.MaxPools)
	snap.Up = true
	return snap, nil
}

// parsePools turns SHOW POOLS text rows into pools, by column name (the
// column set differs between PgBouncer versions; absent counters are 0).
func parsePools(cols []string, rows [][]string) ([]Pool, error) {
	idx := map[string]int{}
	for i, c := range cols {
		idx[c] = i
	}
	for _, need := range []string{"database", "user", "cl_active", "cl_waiting"} {
		if _, ok := idx[need]; !ok {
			return nil, fmt.Errorf("SHOW POOLS has no %q column", need)
		}
	}
	var out []Pool
	for _, r := range rows {
		get := func(name string) string {
			if i, ok := idx[name]; ok && i < len(r) {
				return r[i]
			}
			return ""
		}
		num := func(name string) (int64, error) {
			s := get(name)
			if s == "" {
				return 0, nil
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("SHOW POOLS column %q: %q is not an integer", name, s)
			}
			return n, nil
		}
		p := Pool{Database: sanitize(get("database")), User: sanitize(get("user"))}
		if p.Database == "pgbouncer" { // the admin console's own pseudo-pool
			continue
		}
		var err error
		var wait, waitUS int64
		for _, f := range []struct {
			name string
			dst  *int64
		}{{"maxwait", &wait}, {"maxwait_us", &waitUS}} {
			if *f.dst, err = num(f.name); err != nil {
				return nil, err
			}
		}
		for _, f := range []struct {
			name string
			dst  *int
		}{{"cl_active", &p.ClientActive}, {"cl_waiting", &p.ClientWaiting}, {"sv_active", &p.ServerActive},
			{"sv_idle", &p.ServerIdle}, {"sv_used", &p.ServerUsed}} {
			n, err := num(f.name)
			if err != nil {
				return nil, err
			}
			*f.dst = int(n)
		}
		p.MaxWait = time.Duration(wait)*time.Second + time.Duration(waitUS)*time.Microsecond
		p.Saturated = p.ClientWaiting > 0
		out = append(out, p)
	}
	return out, nil
}

// capPools sorts pools and folds those beyond limit into one "other" pool.
func capPools(pools []Pool, limit int) ([]Pool, int) {
	sort.Slice(pools, func(i, j int) bool {
		if pools[i].Database != pools[j].Database {
			return pools[i].Database < pools[j].Database
		}
		return pools[i].User < pools[j].User
	})
	if len(pools) <= limit {
		return pools, 0
	}
	other := Pool{Database: Other, User: Other}
	for _, p := range pools[limit:] {
		other.ClientActive += p.ClientActive
		other.ClientWaiting += p.ClientWaiting
		other.ServerActive += p.ServerActive
		other.ServerIdle += p.ServerIdle
		other.ServerUsed += p.ServerUsed
		other.MaxWait = max(other.MaxWait, p.MaxWait)
	}
	other.Saturated = other.ClientWaiting > 0
	overflow := len(pools) - limit
	return append(pools[:limit:limit], other), overflow
}
