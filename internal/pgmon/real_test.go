package pgmon

// Tests against real PostgreSQL and PgBouncer processes (internal/pgtest).
// Tests that need exact cluster-wide figures or count goroutines run
// sequentially on the shared cluster; the others are parallel and isolate
// themselves by database, role or their own cluster.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgtest"
)

// sharedPG serves every test that does not need its own server. 1100
// connections leave room for the 1,000-backend scrape test.
var sharedPG = &pgtest.Shared{Opts: pgtest.Options{MaxConnections: 1100}}

func TestMain(m *testing.M) {
	code := m.Run()
	sharedPG.Stop()
	os.Exit(code)
}

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger() (*slog.Logger, *logBuf) {
	buf := &logBuf{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func newTarget(t testing.TB, cfg TargetConfig, logger *slog.Logger) *Target {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "main"
	}
	if cfg.DSN == "" {
		cfg.DSN = sharedPG.Get(t).DSN(pgtest.Superuser)
	}
	tg, err := NewTarget(cfg, logger)
	require.NoError(t, err)
	t.Cleanup(tg.Close)
	return tg
}

func scrape(t testing.TB, tg *Target, timeout time.Duration) Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s, _ := tg.Scrape(ctx)
	return s
}

func mustUp(t testing.TB, s Snapshot) Snapshot {
	t.Helper()
	require.True(t, s.Up, "scrape failed: %v", s.Err)
	require.NoError(t, s.Err)
	return s
}

// async runs sql on conn in a goroutine; a cleanup (registered after the
// connection's, so it runs first) cancels it and waits.
func async(t testing.TB, conn *pgx.Conn, sql string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = conn.Exec(ctx, sql)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// localPort returns the client-side port of a pgx connection.
func localPort(conn *pgx.Conn) (string, int) {
	a := conn.PgConn().Conn().LocalAddr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

func withApp(dsn, app string) string { return dsn + " application_name=" + app }

// TestActiveQueries: N sessions in pg_sleep are counted as active, in their
// database and application group, with ages at least the time they have
// been running.
func TestActiveQueries(t *testing.T) {
	c := sharedPG.Get(t)
	c.CreateDatabase(t, "t_active")
	// Sessions of earlier tests (or of an earlier -count iteration) must
	// have ended: the thresholds count cluster-wide.
	c.WaitFor(t, 30*time.Second, `SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid())`)
	const n = 3
	start := time.Now()
	for i := 0; i < n; i++ {
		conn := c.Connect(t, withApp(c.DSNFor(pgtest.Superuser, "t_active"), fmt.Sprintf("sleeper-%d", i)))
		async(t, conn, "SELECT pg_sleep(60)")
	}
	c.WaitFor(t, 10*time.Second, `SELECT count(*) = 3 FROM pg_stat_activity WHERE datname = 't_active' AND state = 'active' AND wait_event = 'PgSleep'`)
	running := time.Now()
	time.Sleep(1200 * time.Millisecond) // ages must pass the 1 s threshold

	tg := newTarget(t, TargetConfig{
		AgeThresholds: []time.Duration{time.Second, time.Hour},
		AppGroups:     []AppGroup{{Match: "sleeper-*", Group: "sleeper"}},
	}, nil)
	elapsed := time.Since(running) // a lower bound of every sleeper's age at the scrape
	s := mustUp(t, scrape(t, tg, 10*time.Second))

	require.Equal(t, n, count(s, "t_active", "sleeper", StateActive))
	for _, st := range States() {
		if st != StateActive {
			require.Zero(t, count(s, "t_active", "sleeper", st), st)
		}
	}
	require.Equal(t, []ThresholdCount{{time.Second, n}, {time.Hour, 0}}, s.ActiveOver)
	require.GreaterOrEqual(t, s.LongestActive, elapsed)
	require.LessOrEqual(t, s.LongestActive, time.Since(start))
	require.GreaterOrEqual(t, s.OldestTransaction, elapsed)
	require.Zero(t, s.Blocked)
	require.Zero(t, s.InsufficientPrivilege)
	require.Equal(t, uint64(1), s.Connects)
	require.Greater(t, s.ServerVersionNum, 100000)
	require.Equal(t, 1100, s.MaxConnections)
}

// TestBlocking: an idle-in-transaction session holding a lock, sessions
// blocked behind it (depth 1), and a chain where a third session waits on
// a second (depth 2). LinkBackend reports who blocks whom.
func TestBlocking(t *testing.T) {
	c := sharedPG.Get(t)
	c.CreateDatabase(t, "t_lock")
	dsn := c.DSNFor(pgtest.Superuser, "t_lock")
	setup := c.Connect(t, dsn)
	_, err := setup.Exec(context.Background(), "DROP TABLE IF EXISTS t; CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)")
	require.NoError(t, err)
	tg := newTarget(t, TargetConfig{}, nil)
	waiting := func(n int) {
		t.Helper()
		c.WaitFor(t, 10*time.Second, fmt.Sprintf(`SELECT count(*) = %d FROM pg_stat_activity WHERE datname = 't_lock' AND wait_event_type = 'Lock'`, n))
	}

	t.Run("depth1", func(t *testing.T) {
		holder := c.Connect(t, dsn)
		_, err := holder.Exec(context.Background(), "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
		require.NoError(t, err)
		held := time.Now()
		for i := 0; i < 3; i++ {
			async(t, c.Connect(t, dsn), "SELECT count(*) FROM t")
		}
		waiting(3)
		time.Sleep(300 * time.Millisecond)
		s := mustUp(t, scrape(t, tg, 10*time.Second))
		require.Equal(t, 3, s.LockWaiting)
		require.Equal(t, 3, s.Blocked)
		require.Equal(t, 1, s.BlockersIdleInTransaction)
		require.Equal(t, 1, s.MaxBlockingDepth)
		require.Equal(t, 1, s.IdleInTransaction)
		require.Equal(t, 1, count(s, "t_lock", Other, StateIdleInTransaction))
		require.Equal(t, 3, count(s, "t_lock", Other, StateActive))
		require.GreaterOrEqual(t, s.OldestBlockedWait, 300*time.Millisecond)
		require.LessOrEqual(t, s.OldestBlockedWait, time.Since(held))
		require.GreaterOrEqual(t, s.IdleInTransactionMaxAge, 300*time.Millisecond)
		_, err = holder.Exec(context.Background(), "ROLLBACK")
		require.NoError(t, err)
		waiting(0)
	})

	t.Run("depth2", func(t *testing.T) {
		holder := c.Connect(t, dsn)
		_, err := holder.Exec(context.Background(), "BEGIN; UPDATE t SET v = v + 1 WHERE id = 1")
		require.NoError(t, err)
		w1 := c.Connect(t, dsn)
		async(t, w1, "UPDATE t SET v = v + 1 WHERE id = 1")
		waiting(1)
		w2 := c.Connect(t, dsn)
		async(t, w2, "UPDATE t SET v = v + 1 WHERE id = 1")
		waiting(2)

		s := mustUp(t, scrape(t, tg, 10*time.Second))
		require.Equal(t, 2, s.LockWaiting)
		require.Equal(t, 2, s.Blocked)
		require.Equal(t, 1, s.BlockersIdleInTransaction) // w1 blocks w2 but is active
		require.Equal(t, 2, s.MaxBlockingDepth)

		// The worker <-> query link, both ends of the chain.
		addr, port := localPort(w2)
		info, ok, err := tg.LinkBackend(context.Background(), addr, port)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, int(w2.PgConn().PID()), info.PID)
		require.Equal(t, StateActive, info.State)
		require.Equal(t, "Lock", info.WaitEventType)
		require.True(t, info.Blocked)
		require.Equal(t, []int{int(w1.PgConn().PID())}, pids(info.BlockedBy))
		require.Equal(t, StateActive, info.BlockedBy[0].State)
		require.Empty(t, info.Query, "query text is off by default")

		addr, port = localPort(w1)
		info, ok, err = tg.LinkBackend(context.Background(), addr, port)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, []int{int(holder.PgConn().PID())}, pids(info.BlockedBy))
		require.Equal(t, StateIdleInTransaction, info.BlockedBy[0].State)
		require.Positive(t, info.BlockedBy[0].TransactionAge)
		_, err = holder.Exec(context.Background(), "ROLLBACK")
		require.NoError(t, err)
		waiting(0)
	})
}

func pids(bs []Blocker) []int {
	var out []int
	for _, b := range bs {
		out = append(out, b.PID)
	}
	return out
}

// TestSaturation fills max_connections minus the reserved slots with an
// ordinary role: the ratio reads exactly 1.
func TestSaturation(t *testing.T) {
	t.Parallel()
	c := pgtest.Start(t, pgtest.Options{MaxConnections: 10, SuperuserReservedConnections: 3})
	exporter := c.CreateRole(t, "exporter", pgtest.Role{ReadAllStats: true})
	filler := c.CreateRole(t, "filler", pgtest.Role{})
	tg := newTarget(t, TargetConfig{DSN: exporter}, nil)
	mustUp(t, scrape(t, tg, 10*time.Second)) // the exporter holds its slot first

	// Fill the ordinary slots. A refusal is retried a few times: the
	// harness's own short-lived connections may still be exiting.
	opened, refusals := 0, 0
	for opened < 20 && refusals < 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := pgx.Connect(ctx, filler)
		cancel()
		if err != nil {
			require.Contains(t, err.Error(), "53300", "expected too_many_connections")
			refusals++
			time.Sleep(100 * time.Millisecond)
			continue
		}
		opened++
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	}
	require.Equal(t, 10-3-1, opened)

	s := mustUp(t, scrape(t, tg, 10*time.Second))
	require.Equal(t, 10, s.MaxConnections)
	require.Equal(t, 3, s.ReservedConnections)
	require.Equal(t, 7, s.ClientBackends)
	require.InDelta(t, 1.0, s.Saturation, 1e-9)
	require.Equal(t, 6, count(s, "postgres", Other, StateIdle))

	// A second exporter cannot get in: up 0, unreachable, with the SQLSTATE.
	tg2 := newTarget(t, TargetConfig{Name: "late", DSN: exporter}, nil)
	s2 := scrape(t, tg2, 10*time.Second)
	require.False(t, s2.Up)
	require.ErrorIs(t, s2.Err, ErrUnreachable)
	var e *Error
	require.ErrorAs(t, s2.Err, &e)
	require.Equal(t, "53300", e.SQLState)
}

// TestInsufficientPrivilege: without pg_read_all_stats the snapshot says
// so (up 0, InsufficientPrivilege) and counts other roles' sessions as
// "unknown" instead of guessing; the log says it once.
func TestInsufficientPrivilege(t *testing.T) {
	c := sharedPG.Get(t)
	c.CreateDatabase(t, "t_priv")
	dsn := c.CreateRole(t, "noprivs", pgtest.Role{})
	other := c.Connect(t, withApp(c.DSNFor(pgtest.Superuser, "t_priv"), "worker"))
	async(t, other, "SELECT pg_sleep(60)")
	c.WaitFor(t, 10*time.Second, `SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 't_priv' AND state = 'active'`)

	logger, logs := testLogger()
	tg := newTarget(t, TargetConfig{DSN: dsn, AppGroups: []AppGroup{{Match: "worker", Group: "worker"}}}, logger)
	for i := 0; i < 3; i++ {
		s := scrape(t, tg, 10*time.Second)
		require.False(t, s.Up)
		require.True(t, s.InsufficientPrivilege)
		require.ErrorIs(t, s.Err, ErrInsufficientPrivilege)
		require.Equal(t, 1, count(s, "t_priv", "worker", StateUnknown), "another role's session is unknown, not guessed")
		require.Zero(t, count(s, "t_priv", "worker", StateActive))
		require.Zero(t, s.ActiveOver[0].Count)
	}
	require.Equal(t, 1, strings.Count(logs.String(), "not a member of pg_read_all_stats"), logs.String())

	addr, port := localPort(other)
	_, ok, err := tg.LinkBackend(context.Background(), addr, port)
	require.False(t, ok)
	require.ErrorIs(t, err, ErrInsufficientPrivilege)

	c.Exec(t, "GRANT pg_read_all_stats TO noprivs")
	s := mustUp(t, scrape(t, tg, 10*time.Second))
	require.False(t, s.InsufficientPrivilege)
	require.Equal(t, 1, count(s, "t_priv", "worker", StateActive))
	require.Contains(t, logs.String(), "can read all sessions again")
	require.Equal(t, uint64(1), s.Connects)
}

// TestBackendTerminated: the exporter's own backend is terminated between
// scrapes (the next scrape reconnects transparently) and during a scrape
// (that scrape is up 0, the next reconnects).
func TestBackendTerminated(t *testing.T) {
	c := sharedPG.Get(t)
	logger, logs := testLogger()
	tg := newTarget(t, TargetConfig{}, logger)
	var pid uint32
	tg.h.testHookBeforeQuery = func(_ int, conn *pgx.Conn) { pid = conn.PgConn().PID() }
	terminate := func(p uint32) {
		c.Exec(t, "SELECT pg_terminate_backend($1)", int(p))
		c.WaitFor(t, 10*time.Second, "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", int(p))
	}

	s := mustUp(t, scrape(t, tg, 10*time.Second))
	require.Equal(t, uint64(1), s.Connects)
	first := pid
	terminate(first)
	s = mustUp(t, scrape(t, tg, 10*time.Second))
	require.Equal(t, uint64(2), s.Connects)
	require.NotEqual(t, first, pid)

	// Mid-scrape: terminate the backend each attempt is about to use.
	tg.h.testHookBeforeQuery = func(_ int, conn *pgx.Conn) { terminate(conn.PgConn().PID()) }
	s = scrape(t, tg, 20*time.Second)
	require.False(t, s.Up)
	require.ErrorIs(t, s.Err, ErrConnectionLost)
	tg.h.testHookBeforeQuery = nil
	s = mustUp(t, scrape(t, tg, 10*time.Second))
	require.Equal(t, uint64(4), s.Connects)
	require.Contains(t, logs.String(), "postgres target down")
	require.Contains(t, logs.String(), "reachable again")
}

// TestStatementTimeout: the server cancels a query over statement_timeout
// (57014); the scrape returns promptly and the connection stays usable.
func TestStatementTimeout(t *testing.T) {
	sharedPG.Get(t)
	tg := newTarget(t, TargetConfig{DSN: sharedPG.Get(t).DSN(pgtest.Superuser), StatementTimeout: 200 * time.Millisecond}, nil)
	mustUp(t, scrape(t, tg, 10*time.Second))
	var orig string
	tg.h.testHookBeforeQuery = func(int, *pgx.Conn) {
		orig = tg.activitySQL
		tg.activitySQL = "SELECT 1 FROM pg_sleep(5)"
	}
	start := time.Now()
	s := scrape(t, tg, 10*time.Second)
	require.Less(t, time.Since(start), 2*time.Second)
	require.False(t, s.Up)
	require.ErrorIs(t, s.Err, ErrTimeout)
	var e *Error
	require.ErrorAs(t, s.Err, &e)
	require.Equal(t, "57014", e.SQLState)
	tg.h.testHookBeforeQuery = func(int, *pgx.Conn) { tg.activitySQL = orig }
	s = mustUp(t, scrape(t, tg, 10*time.Second))
	require.Equal(t, uint64(1), s.Connects, "a server-side timeout keeps the connection")
}

// TestSessionSettings checks what the server sees of the exporter's session.
func TestSessionSettings(t *testing.T) {
	c := sharedPG.Get(t)
	dsn := c.CreateRole(t, "settings_probe", pgtest.Role{ReadAllStats: true})
	tg := newTarget(t, TargetConfig{DSN: dsn, StatementTimeout: 1500 * time.Millisecond, LockTimeout: 250 * time.Millisecond}, nil)
	var got []string
	tg.h.testHookBeforeQuery = func(_ int, conn *pgx.Conn) {
		for _, q := range []string{"SHOW statement_timeout", "SHOW lock_timeout", "SHOW default_transaction_read_only", "SHOW application_name"} {
			var v string
			require.NoError(t, conn.QueryRow(context.Background(), q).Scan(&v))
			got = append(got, v)
		}
	}
	mustUp(t, scrape(t, tg, 10*time.Second))
	require.Equal(t, []string{"1500ms", "250ms", "on", ApplicationName}, got)
}

// TestConcurrentScrapes: 50 scrapes at once share one connection.
func TestConcurrentScrapes(t *testing.T) {
	t.Parallel()
	c := sharedPG.Get(t)
	dsn := c.CreateRole(t, "conc", pgtest.Role{ReadAllStats: true})
	tg := newTarget(t, TargetConfig{DSN: dsn}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	stop, probeDone := make(chan struct{}), make(chan struct{})
	maxConns := 0
	probe := c.Connect(t, c.DSN(pgtest.Superuser))
	go func() {
		defer close(probeDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int
			if err := probe.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE usename = 'conc'").Scan(&n); err == nil && n > maxConns {
				maxConns = n
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := tg.Scrape(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(stop)
	<-probeDone
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.LessOrEqual(t, maxConns, 1)
	require.Equal(t, uint64(1), tg.h.connects.Load())
}

// TestDownAtStartAndRestart: nothing listening -> up 0 at once; the server
// stopped and started again -> up 0, then 1 on a new connection.
func TestDownAtStartAndRestart(t *testing.T) {
	t.Parallel()
	port, err := pgtest.FreePort()
	require.NoError(t, err)
	logger, logs := testLogger()
	down := newTarget(t, TargetConfig{Name: "down", DSN: fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=x sslmode=disable", port)}, logger)
	start := time.Now()
	s := scrape(t, down, 10*time.Second)
	require.Less(t, time.Since(start), time.Second)
	require.False(t, s.Up)
	require.ErrorIs(t, s.Err, ErrUnreachable)
	require.Equal(t, 1, strings.Count(logs.String(), "target down"))
	scrape(t, down, 10*time.Second)
	require.Equal(t, 1, strings.Count(logs.String(), "target down"), "a down target is logged once")

	c := pgtest.Start(t, pgtest.Options{})
	tg := newTarget(t, TargetConfig{DSN: c.DSN(pgtest.Superuser)}, nil)
	mustUp(t, scrape(t, tg, 10*time.Second))
	c.Stop()
	s = scrape(t, tg, 10*time.Second)
	require.False(t, s.Up)
	require.ErrorIs(t, s.Err, ErrUnreachable)
	c.Restart(t)
	s = mustUp(t, scrape(t, tg, 10*time.Second))
	require.Equal(t, uint64(2), s.Connects)
}

// TestHungListener (B2): a listener that accepts and never answers. Each
// of 100 scrapes returns by its deadline with up 0; goroutines stay flat
// and every connection is closed.
func TestHungListener(t *testing.T) {
	bh := pgtest.NewBlackhole(t)
	tg := newTarget(t, TargetConfig{
		DSN:            fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=x sslmode=disable password=HungSecret", bh.Port()),
		ConnectTimeout: time.Minute, Timeout: time.Minute, // only the scrape deadline bounds it
	}, nil)
	const deadline = 50 * time.Millisecond
	one := func() (Snapshot, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		s, _ := tg.Scrape(ctx)
		return s, time.Since(start)
	}
	one() // warm up
	require.Eventually(t, func() bool { return bh.Open() == 0 }, 5*time.Second, 10*time.Millisecond)
	base := runtime.NumGoroutine()
	var took []time.Duration
	peak := 0
	for i := 0; i < 100; i++ {
		s, d := one()
		require.False(t, s.Up)
		require.ErrorIs(t, s.Err, ErrTimeout)
		require.NotContains(t, s.Err.Error(), "HungSecret")
		took = append(took, d)
		peak = max(peak, runtime.NumGoroutine())
	}
	slices.Sort(took)
	t.Logf("100 scrapes against a hung listener, deadline %v: min %v, median %v, max %v; goroutines %d before, peak %d",
		deadline, took[0], took[50], took[99], base, peak)
	// The deadline is what ends each scrape; what exceeds it is scheduling
	// latency (large on a loaded CI machine), never a pgx or dial timeout.
	require.Less(t, took[50], deadline+50*time.Millisecond, "median scrape overran its deadline")
	require.Less(t, took[99], deadline+time.Second, "a scrape overran its deadline")
	require.Eventually(t, func() bool { return bh.Open() == 0 }, 5*time.Second, 10*time.Millisecond, "connections left open: %d", bh.Open())
	require.Equal(t, 101, bh.Accepted())
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= base+1 }, 5*time.Second, 10*time.Millisecond,
		"goroutines: %d before, %d after", base, runtime.NumGoroutine())
	require.LessOrEqual(t, peak, base+5)
}

// TestFrozenServer: the server hangs mid-session (SIGSTOP of the postmaster
// and every backend). Scrapes return at their deadline; the interrupted
// connection's cleanup ends within cleanupGrace; after SIGCONT the target
// is up again.
func TestFrozenServer(t *testing.T) {
	t0 := time.Now()
	c := pgtest.Start(t, pgtest.Options{})
	started := time.Since(t0)
	tg := newTarget(t, TargetConfig{DSN: c.DSN(pgtest.Superuser), ConnectTimeout: time.Minute, Timeout: time.Minute}, nil)
	mustUp(t, scrape(t, tg, 10*time.Second))
	base, baseFDs := runtime.NumGoroutine(), openFDs(t)

	c.Freeze(t)
	const deadline = 100 * time.Millisecond
	var took []time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		s := scrape(t, tg, deadline)
		took = append(took, time.Since(start))
		require.False(t, s.Up)
		require.ErrorIs(t, s.Err, ErrTimeout)
	}
	slices.Sort(took)
	require.Less(t, took[10], deadline+50*time.Millisecond)
	require.Less(t, took[19], deadline+time.Second)
	frozen := time.Now()
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= base+1 && openFDs(t) <= baseFDs }, cleanupGrace+3*time.Second, 20*time.Millisecond,
		"goroutines %d -> %d, fds %d -> %d", base, runtime.NumGoroutine(), baseFDs, openFDs(t))
	settled := time.Since(frozen)
	c.Thaw(t)
	mustUp(t, scrape(t, tg, 10*time.Second))
	t.Logf("cluster started in %v; frozen server, deadline %v: median %v, max %v; goroutines and fds back to baseline %v after the last scrape",
		started.Round(time.Millisecond), deadline, took[10], took[19], settled.Round(time.Millisecond))
}

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// TestAuthAndSecrets (B5, B11): wrong passwords, an unreachable and a hung
// server, a password changed after start: up 0, and the password appears
// in no error, log line or snapshot.
func TestAuthAndSecrets(t *testing.T) {
	t.Parallel()
	c := sharedPG.Get(t)
	const secret = `Zebra-Secret-42'\ x`
	good := c.CreateRole(t, "pwuser", pgtest.Role{Password: secret, ReadAllStats: true})
	logger, logs := testLogger()
	var outputs []string
	check := func(name, dsn string, want error) Snapshot {
		t.Helper()
		tg := newTarget(t, TargetConfig{Name: name, DSN: dsn}, logger)
		s := scrape(t, tg, 2*time.Second)
		if want == nil {
			mustUp(t, s)
		} else {
			require.False(t, s.Up, name)
			require.ErrorIs(t, s.Err, want, name)
		}
		lctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _, lerr := tg.LinkBackend(lctx, "127.0.0.1", 1)
		cancel()
		outputs = append(outputs, fmt.Sprintf("%v %+v %#v %v", s, s, s, lerr))
		return s
	}
	check("good", good, nil)
	check("wrong-kv", strings.Replace(good, "Zebra", "Zebru", 1), ErrAuth)
	urlDSN := fmt.Sprintf("postgres://pwuser:%s@127.0.0.1:%d/postgres?sslmode=disable", "Zebru-Secret-42%27%5C%20x", c.Port)
	check("wrong-url", urlDSN, ErrAuth)
	port, _ := pgtest.FreePort()
	check("refused", fmt.Sprintf("host=127.0.0.1 port=%d user=pwuser password='Zebra-Secret-42\\'\\\\ x' sslmode=disable", port), ErrUnreachable)
	bh := pgtest.NewBlackhole(t)
	check("hung", fmt.Sprintf("postgres://pwuser:Zebra-Secret-42%%27%%5C%%20x@127.0.0.1:%d/postgres?sslmode=disable", bh.Port()), ErrTimeout)
	_, err := NewTarget(TargetConfig{Name: "bad", DSN: "postgres://pwuser:Zebra-Secret-42%27%5C%20x@127.0.0.1:notaport/db"}, logger)
	require.ErrorIs(t, err, ErrInvalid)
	outputs = append(outputs, err.Error())
	_, err = NewBouncer(BouncerConfig{Name: "bad", DSN: "postgres://pwuser:Zebra-Secret-42%27%5C%20x@127.0.0.1:notaport/db"}, logger)
	require.ErrorIs(t, err, ErrInvalid)
	outputs = append(outputs, err.Error())
	for _, dsn := range []string{
		fmt.Sprintf("host=127.0.0.1 port=%d dbname=pgbouncer user=pwuser password='Zebra-Secret-42\\'\\\\ x' sslmode=disable", bh.Port()),
		fmt.Sprintf("host=127.0.0.1 port=%d dbname=pgbouncer user=pwuser password='Zebra-Secret-42\\'\\\\ x' sslmode=disable", port),
	} {
		bt, err := NewBouncer(BouncerConfig{Name: "pgb", DSN: dsn}, logger)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		bs, err := bt.Scrape(ctx)
		cancel()
		bt.Close()
		require.False(t, bs.Up)
		outputs = append(outputs, fmt.Sprintf("%v %+v %#v", err, bs, bs))
	}

	// The password changes while the exporter is connected.
	tg := newTarget(t, TargetConfig{Name: "rotated", DSN: good}, logger)
	mustUp(t, scrape(t, tg, 10*time.Second))
	c.Exec(t, "ALTER ROLE pwuser PASSWORD 'new-one'")
	c.Exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pwuser'")
	c.WaitFor(t, 10*time.Second, "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE usename = 'pwuser')")
	s := scrape(t, tg, 10*time.Second)
	require.False(t, s.Up, "up must not stay a stale 1")
	require.ErrorIs(t, s.Err, ErrAuth)
	outputs = append(outputs, fmt.Sprintf("%+v", s), logs.String())

	all := strings.Join(outputs, "\n")
	require.Contains(t, all, "28P01", "the auth failures were seen")
	for _, leak := range []string{"Zebra-Secret", "Zebru-Secret", "Secret-42"} {
		require.NotContains(t, all, leak)
	}
}

// TestLinkBackend: the backend of a client connection is found by the
// client's local address and port, for pgx over IPv4 and IPv6, for a
// psycopg2 client process, and with literal-stripped query text when
// enabled.
func TestLinkBackend(t *testing.T) {
	t.Parallel()
	c := sharedPG.Get(t)
	c.CreateDatabase(t, "t_link")
	dsn := c.DSNFor(pgtest.Superuser, "t_link")
	tg := newTarget(t, TargetConfig{}, nil)
	withText := newTarget(t, TargetConfig{Name: "text", QueryText: true, QueryTextMaxBytes: 40}, nil)
	ctx := context.Background()

	conn := c.Connect(t, dsn)
	async(t, conn, "SELECT pg_sleep(30), 'card-4111111111111111' AS secret, 12345 AS n")
	c.WaitFor(t, 10*time.Second, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = 't_link' AND wait_event = 'PgSleep')")
	addr, port := localPort(conn)
	require.Equal(t, "127.0.0.1", addr)

	for _, a := range []string{"127.0.0.1", "::ffff:127.0.0.1", ""} {
		info, ok, err := tg.LinkBackend(ctx, a, port)
		require.NoError(t, err, a)
		require.True(t, ok, a)
		require.Equal(t, int(conn.PgConn().PID()), info.PID)
		require.Equal(t, "t_link", info.Database)
		require.Equal(t, StateActive, info.State)
		require.Equal(t, "Timeout", info.WaitEventType)
		require.Equal(t, "PgSleep", info.WaitEvent)
		require.False(t, info.Blocked)
		require.Empty(t, info.Query)
	}
	info, ok, err := withText.LinkBackend(ctx, addr, port)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "SELECT pg_sleep(?), ? AS secret, ? AS n", info.Query)
	require.False(t, info.QueryTruncated)
	withShort := newTarget(t, TargetConfig{Name: "short", QueryText: true, QueryTextMaxBytes: 12}, nil)
	info, _, err = withShort.LinkBackend(ctx, addr, port)
	require.NoError(t, err)
	require.Equal(t, "SELECT pg_sl", info.Query)
	require.True(t, info.QueryTruncated)

	// Wrong address, or a port nobody uses: not found, no error.
	_, ok, err = tg.LinkBackend(ctx, "10.1.2.3", port)
	require.NoError(t, err)
	require.False(t, ok)
	free, _ := pgtest.FreePort()
	_, ok, err = tg.LinkBackend(ctx, "127.0.0.1", free)
	require.NoError(t, err)
	require.False(t, ok)

	if c.IPv6 {
		c6 := c.Connect(t, strings.Replace(dsn, "host=127.0.0.1", "host=::1", 1))
		async(t, c6, "SELECT pg_sleep(30)")
		a6, p6 := localPort(c6)
		require.Equal(t, "::1", a6)
		c.WaitFor(t, 10*time.Second, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE client_port = $1 AND state = 'active')", p6)
		info, ok, err := tg.LinkBackend(ctx, "::1", p6)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, int(c6.PgConn().PID()), info.PID)
	} else {
		t.Log("no IPv6 loopback: IPv6 link not tested")
	}

	py := pgtest.StartPyClient(t, dsn, "SELECT pg_sleep(30)")
	c.WaitFor(t, 10*time.Second, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE client_port = $1 AND wait_event = 'PgSleep')", py.LocalPort)
	info, ok, err = tg.LinkBackend(ctx, py.LocalAddr, py.LocalPort)
	require.NoError(t, err)
	require.True(t, ok, "%v", py)
	require.Equal(t, StateActive, info.State)
	require.Equal(t, "PgSleep", info.WaitEvent)
	require.Positive(t, info.PID)
}

// TestBouncer: pool_size 1 and three clients in pg_sleep -> one active,
// two waiting, the pool saturated; a stopped PgBouncer -> up 0.
func TestBouncer(t *testing.T) {
	t.Parallel()
	c := sharedPG.Get(t)
	c.CreateDatabase(t, "t_pgb")
	b := pgtest.StartBouncer(t, c, pgtest.BouncerOptions{PoolSize: 1})
	bt, err := NewBouncer(BouncerConfig{Name: "pgb", DSN: b.AdminDSN("reflex_stats")}, nil)
	require.NoError(t, err)
	t.Cleanup(bt.Close)
	ctx := context.Background()
	bscrape := func() BouncerSnapshot {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s, _ := bt.Scrape(ctx)
		return s
	}
	s := bscrape()
	require.True(t, s.Up, "%v", s.Err)

	var wg sync.WaitGroup
	clientCtx, cancelClients := context.WithCancel(ctx)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(clientCtx, b.DSN(pgtest.Superuser, "t_pgb"))
			if err != nil {
				return
			}
			defer func() { _ = conn.Close(context.Background()) }()
			_, _ = conn.Exec(clientCtx, "SELECT pg_sleep(30)", pgx.QueryExecModeSimpleProtocol)
		}()
	}
	t.Cleanup(func() {
		cancelClients()
		b.Stop() // releases clients still waiting for a server connection
		wg.Wait()
	})
	var pool Pool
	require.Eventually(t, func() bool {
		s = bscrape()
		for _, p := range s.Pools {
			if p.Database == "t_pgb" {
				pool = p
			}
		}
		return s.Up && pool.ClientWaiting == 2 && pool.ClientActive == 1
	}, 15*time.Second, 50*time.Millisecond, "pools: %+v", s.Pools)
	require.Equal(t, pgtest.Superuser, pool.User)
	require.Equal(t, 1, pool.ServerActive)
	require.True(t, pool.Saturated)
	time.Sleep(200 * time.Millisecond)
	s = bscrape()
	for _, p := range s.Pools {
		require.NotEqual(t, "pgbouncer", p.Database, "the admin console's pool is left out")
		if p.Database == "t_pgb" {
			require.GreaterOrEqual(t, p.MaxWait, 200*time.Millisecond)
		}
	}

	b.Stop()
	start := time.Now()
	s = bscrape()
	require.Less(t, time.Since(start), 2*time.Second)
	require.False(t, s.Up)
	require.True(t, errors.Is(s.Err, ErrConnectionLost) || errors.Is(s.Err, ErrUnreachable), "%v", s.Err)
}

// openIdle opens n idle connections to database db, in parallel. They are
// closed by the returned function or, at the latest, in a cleanup.
func openIdle(t testing.TB, c *pgtest.Cluster, db string, n int) func() {
	t.Helper()
	dsn := withApp(c.DSNFor(pgtest.Superuser, db), "bench")
	conns := make([]*pgx.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				conn, err := pgx.Connect(ctx, dsn)
				cancel()
				if err != nil {
					errs <- err
					return
				}
				conns[i] = conn
			}
		}()
	}
	wg.Wait()
	close(errs)
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			var wg sync.WaitGroup
			for _, conn := range conns {
				if conn != nil {
					wg.Add(1)
					go func() { defer wg.Done(); _ = conn.Close(context.Background()) }()
				}
			}
			wg.Wait()
		})
	}
	t.Cleanup(closeAll)
	for err := range errs {
		t.Fatalf("open idle connections: %v", err)
	}
	return closeAll
}

// TestScrape1000Backends measures Scrape with 1,000 idle backends on one
// connection and checks the counts are exact.
func TestScrape1000Backends(t *testing.T) {
	c := sharedPG.Get(t)
	c.CreateDatabase(t, "t_bench")
	start := time.Now()
	closeAll := openIdle(t, c, "t_bench", 1000)
	opened := time.Since(start)
	c.WaitFor(t, 30*time.Second, "SELECT count(*) = 1000 FROM pg_stat_activity WHERE datname = 't_bench' AND state = 'idle'")
	tg := newTarget(t, TargetConfig{AppGroups: []AppGroup{{Match: "bench", Group: "bench"}}}, nil)
	mustUp(t, scrape(t, tg, 10*time.Second))
	var ds []time.Duration
	for i := 0; i < 30; i++ {
		s := mustUp(t, scrape(t, tg, 10*time.Second))
		require.Equal(t, 1000, count(s, "t_bench", "bench", StateIdle))
		require.GreaterOrEqual(t, s.ClientBackends, 1001)
		ds = append(ds, s.Duration)
	}
	slices.Sort(ds)
	t.Logf("opened 1000 connections in %v; Scrape with %d client backends: min %v, median %v, max %v (race detector: %v)",
		opened.Round(time.Millisecond), 1001, ds[0], ds[len(ds)/2], ds[len(ds)-1], raceEnabled)
	// Speed is proven by BenchmarkScrape1000Backends (BENCHMARKS.md), not
	// asserted here: this test checks the counts at that scale.

	// Back to a handful of sessions: the same target counts them exactly
	// (its row buffer shrinks without losing rows).
	closeAll()
	c.WaitFor(t, 30*time.Second, "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE datname = 't_bench')")
	openIdle(t, c, "t_bench", 3)
	c.WaitFor(t, 10*time.Second, "SELECT count(*) = 3 FROM pg_stat_activity WHERE datname = 't_bench' AND state = 'idle'")
	for i := 0; i < 2; i++ {
		s := mustUp(t, scrape(t, tg, 10*time.Second))
		require.Equal(t, 3, count(s, "t_bench", "bench", StateIdle))
	}
}

// BenchmarkScrape1000Backends measures Scrape with 1,000 idle backends:
// go test -run '^$' -bench Scrape1000 ./internal/pgmon/.
func BenchmarkScrape1000Backends(b *testing.B) {
	c := sharedPG.Get(b)
	c.CreateDatabase(b, "b_bench")
	openIdle(b, c, "b_bench", 1000)
	tg := newTarget(b, TargetConfig{}, nil)
	mustUp(b, scrape(b, tg, 10*time.Second))
	for b.Loop() {
		if s := scrape(b, tg, 10*time.Second); !s.Up {
			b.Fatal(s.Err)
		}
	}
}
