package pgmon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

func txt(s string) pgtype.Text    { return pgtype.Text{String: s, Valid: true} }
func sec(f float64) pgtype.Float8 { return pgtype.Float8{Float64: f, Valid: true} }
func count(s Snapshot, db, group, state string) int {
	for _, c := range s.Connections {
		if c.Database == db && c.AppGroup == group && c.State == state {
			return c.Count
		}
	}
	return -1
}

func TestSummarize(t *testing.T) {
	g, err := newGrouper([]AppGroup{{Match: "web*", Group: "web"}}, 5)
	require.NoError(t, err)
	cfg := summaryConfig{thresholds: []time.Duration{5 * time.Second, 30 * time.Second}, groups: g, maxDatabases: 2}
	st := settings{version: 150000, maxConn: 20, superReserved: 3, privileged: true, datnames: []string{"app", "other_db", "postgres"}}
	rows := []activityRow{
		{pid: 1, datname: txt("app"), appName: txt("web-1"), state: txt("active"), queryAge: sec(40), xactAge: sec(41), stateAge: sec(40)},
		{pid: 2, datname: txt("app"), appName: txt("web-2"), state: txt("active"), queryAge: sec(6), xactAge: sec(6)},
		{pid: 3, datname: txt("app"), appName: txt("web-3"), state: txt("idle in transaction"), queryAge: sec(70), xactAge: sec(90), stateAge: sec(65)},
		// 4 waits for 3 (idle in tx); 5 waits for 4: a chain of depth 2.
		{pid: 4, datname: txt("app"), appName: txt("web-4"), state: txt("active"), waitType: txt("Lock"), queryAge: sec(3), stateAge: sec(3), blockedBy: []int32{3}, waitAge: sec(2.5)},
		{pid: 5, datname: txt("app"), appName: txt("cron"), state: txt("active"), waitType: txt("Lock"), queryAge: sec(1), stateAge: sec(1), blockedBy: []int32{4}},
		{pid: 6, datname: txt("postgres"), appName: txt("psql"), state: txt("idle")},
		{pid: 7, datname: txt("postgres"), appName: txt("x"), state: pgtype.Text{}}, // NULL: unknown
		{pid: 8, datname: txt("other_db"), appName: txt("x"), state: txt("idle")},   // beyond MaxDatabases
		{pid: 9, datname: txt("app"), appName: txt("web"), state: txt("idle in transaction (aborted)"), stateAge: sec(2)},
		{pid: 10, datname: txt("app"), appName: txt("web"), state: txt("some future state")},
	}
	var s Snapshot
	summarize(cfg, st, rows, &s)

	require.Equal(t, 11, s.ClientBackends)
	require.Equal(t, 3, s.ReservedConnections)
	require.InDelta(t, 11.0/17.0, s.Saturation, 1e-9)
	require.False(t, s.InsufficientPrivilege)

	// Label sets: databases app, other_db capped at 2 -> app, other, then
	// "other" for the rest; groups web, other; every state.
	require.Len(t, s.Connections, 3*2*len(States()))
	require.Equal(t, 3, count(s, "app", "web", StateActive))
	require.Equal(t, 1, count(s, "app", Other, StateActive))
	require.Equal(t, 1, count(s, "app", "web", StateIdleInTransaction))
	require.Equal(t, 1, count(s, "app", "web", StateIdleInTransactionAborted))
	require.Equal(t, 1, count(s, "app", "web", StateUnknown))
	require.Equal(t, 0, count(s, "app", "web", StateDisabled))
	require.Equal(t, 1, count(s, "other_db", Other, StateIdle))
	require.Equal(t, 1, count(s, Other, Other, StateIdle))
	require.Equal(t, 1, count(s, Other, Other, StateUnknown))
	total := 0
	for _, c := range s.Connections {
		total += c.Count
	}
	require.Equal(t, len(rows), total)

	require.Equal(t, []ThresholdCount{{5 * time.Second, 2}, {30 * time.Second, 1}}, s.ActiveOver)
	require.Equal(t, 40*time.Second, s.LongestActive)
	require.Equal(t, 90*time.Second, s.OldestTransaction)
	require.Equal(t, 2, s.IdleInTransaction)
	require.Equal(t, 65*time.Second, s.IdleInTransactionMaxAge)
	require.Equal(t, 2, s.LockWaiting)
	require.Equal(t, 2, s.Blocked)
	require.Equal(t, 1, s.BlockersIdleInTransaction)
	require.Equal(t, 2500*time.Millisecond, s.OldestBlockedWait)
	require.Equal(t, 2, s.MaxBlockingDepth)
}

func TestSummarizeUnprivileged(t *testing.T) {
	g, _ := newGrouper(nil, 5)
	var s Snapshot
	summarize(summaryConfig{groups: g, maxDatabases: 5},
		settings{maxConn: 10, superReserved: 3, datnames: []string{"postgres"}},
		[]activityRow{{pid: 1, datname: txt("postgres")}, {pid: 2, datname: txt("postgres"), state: txt("idle")}}, &s)
	require.True(t, s.InsufficientPrivilege)
	require.Equal(t, 1, count(s, "postgres", Other, StateUnknown))
	require.Equal(t, 1, count(s, "postgres", Other, StateIdle))
	require.Equal(t, []ThresholdCount{}, s.ActiveOver)
}

// TestSummarizeCardinality (B9): 500 application names and 100 databases
// produce a label set bounded by the caps, whatever the input.
func TestSummarizeCardinality(t *testing.T) {
	g, err := newGrouper([]AppGroup{{Match: "web-1*", Group: "web"}, {Match: "job-*", Group: "jobs"}}, 5)
	require.NoError(t, err)
	var dbs []string
	for i := 0; i < 100; i++ {
		dbs = append(dbs, fmt.Sprintf("db%03d", i))
	}
	var rows []activityRow
	for i := 0; i < 500; i++ {
		rows = append(rows, activityRow{pid: int32(i), datname: txt(dbs[i%100]), appName: txt(fmt.Sprintf("web-%d\xff", i)), state: txt("idle")})
	}
	var s Snapshot
	summarize(summaryConfig{groups: g, maxDatabases: 32}, settings{maxConn: 1000, datnames: dbs}, rows, &s)
	require.Len(t, s.Connections, (32+1)*(2+1)*len(States()))
	seen := map[string]bool{}
	total := 0
	for _, c := range s.Connections {
		seen[c.AppGroup] = true
		total += c.Count
	}
	require.Equal(t, map[string]bool{"web": true, "jobs": true, Other: true}, seen)
	require.Equal(t, 500, total)
	require.Equal(t, 68*5, count(s, Other, "web", StateIdle)+count(s, Other, Other, StateIdle))
}

func TestMaxDepth(t *testing.T) {
	for _, tc := range []struct {
		edges map[int32][]int32
		want  int
	}{
		{nil, 0},
		{map[int32][]int32{2: {1}, 3: {1}, 4: {1}}, 1},
		{map[int32][]int32{2: {1}, 3: {2}}, 2},
		{map[int32][]int32{2: {1}, 3: {2, 1}, 4: {3}}, 3},
		{map[int32][]int32{1: {2}, 2: {1}}, 2}, // deadlock not yet detected
		{map[int32][]int32{1: {1}}, 1},
		// A session waiting on a two-session deadlock: three waits, from
		// wherever the walk starts (cutting the cycle where a walk closed
		// it gave 2 or 3 by map order).
		{map[int32][]int32{4: {1}, 1: {2}, 2: {1}}, 3},
		// Two sessions into a three-cycle whose member also waits on a
		// holder outside it: 1 + 1 + 3 + the holder's 0.
		{map[int32][]int32{6: {5}, 5: {1}, 1: {2}, 2: {3}, 3: {1, 9}}, 5},
		// Two separate deadlocks, the longer wins.
		{map[int32][]int32{1: {2}, 2: {1}, 3: {4}, 4: {5}, 5: {3}}, 3},
	} {
		// Map iteration order changes from call to call: the depth must
		// not.
		for range 200 {
			require.Equal(t, tc.want, maxDepth(tc.edges), "%v", tc.edges)
		}
	}
}

// queryColumn matches a reference to pg_stat_activity.query (not
// query_start): the column must not be selected unless QueryText is on.
var queryColumn = regexp.MustCompile(`(?i)\bquery\b`)

func TestSQLNeverSelectsQueryText(t *testing.T) {
	for _, v := range []int{100000, 130000, 140000, 160000} {
		require.NotRegexp(t, queryColumn, activitySQL(v))
	}
	require.NotRegexp(t, queryColumn, settingsSQL)
	require.NotRegexp(t, queryColumn, sessionSQL)
	require.NotRegexp(t, queryColumn, linkSQL(true, false))
	require.NotRegexp(t, queryColumn, linkSQL(false, false))
	require.Regexp(t, queryColumn, linkSQL(true, true))
	require.Contains(t, activitySQL(140000), "waitstart")
	require.NotContains(t, activitySQL(130000), "waitstart")
}

func TestRedactor(t *testing.T) {
	const pw = `p@ss w'rd\/é`
	for _, dsn := range []string{
		`host=h user=u password='p@ss w\'rd\\/é'`,
		"postgres://u:p%40ss%20w%27rd%5C%2F%C3%A9@h/db",
	} {
		r := newRedactor(dsn, pw)
		for _, leak := range []string{
			"failed: " + dsn, "pw " + pw,
			`kv p@ss w\'rd\\/é`, "url p%40ss%20w%27rd%5C%2F%C3%A9",
		} {
			out := r.redact(leak)
			require.NotContains(t, out, "ss w", "%q -> %q", leak, out)
			require.NotContains(t, out, "p%40ss", "%q -> %q", leak, out)
		}
	}
	require.Equal(t, "nothing to hide", newRedactor("", "").redact("nothing to hide"))
	require.Equal(t, "bad \uFFFD byte", newRedactor("", "").redact("bad \xff byte"))
}

func TestClassify(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code}) }
	for _, tc := range []struct {
		op     string
		err    error
		closed bool
		want   error
	}{
		{opConnect, pg("28P01"), true, ErrAuth},
		{opConnect, pg("28000"), true, ErrAuth},
		{opConnect, pg("42501"), true, ErrAuth},
		{opConnect, pg("57P03"), true, ErrUnreachable},
		{opConnect, pg("53300"), true, ErrUnreachable},
		{opConnect, io.EOF, true, ErrUnreachable},
		{opConnect, context.DeadlineExceeded, true, ErrTimeout},
		{opScrape, pg("57014"), false, ErrTimeout},
		{opScrape, pg("55P03"), false, ErrTimeout},
		{opScrape, pg("57P01"), true, ErrConnectionLost},
		{opScrape, pg("42P01"), false, ErrQuery},
		{opScrape, io.EOF, true, ErrConnectionLost},
		{opScrape, errors.New("cannot scan"), false, ErrQuery},
		{opScrape, fmt.Errorf("x: %w", context.DeadlineExceeded), true, ErrTimeout},
	} {
		e := newRedactor("", "").newError("t", tc.op, tc.err, tc.closed)
		require.ErrorIs(t, e, tc.want, "%s %v", tc.op, tc.err)
	}
	e := &Error{Target: "t", Op: opScrape, Kind: ErrTimeout}
	require.ErrorIs(t, e, context.DeadlineExceeded)
	require.NotErrorIs(t, &Error{Kind: ErrAuth}, context.DeadlineExceeded)
}

func TestParsePools(t *testing.T) {
	// Columns as PgBouncer 1.18 sends them.
	cols := []string{"database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
		"sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
		"maxwait", "maxwait_us", "pool_mode"}
	rows := [][]string{
		{"app", "web", "1", "2", "0", "0", "1", "0", "0", "0", "0", "0", "0", "3", "250000", "session"},
		{"pgbouncer", "pgbouncer", "1", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "statement"},
		{"app", "admin", "0", "0", "0", "0", "0", "0", "0", "2", "1", "0", "0", "0", "0", "session"},
	}
	pools, err := parsePools(cols, rows)
	require.NoError(t, err)
	require.Equal(t, []Pool{
		{Database: "app", User: "web", ClientActive: 1, ClientWaiting: 2, ServerActive: 1, MaxWait: 3250 * time.Millisecond, Saturated: true},
		{Database: "app", User: "admin", ServerIdle: 2, ServerUsed: 1},
	}, pools)

	// An older PgBouncer without maxwait_us and sv_used.
	pools, err = parsePools([]string{"database", "user", "cl_active", "cl_waiting", "maxwait"}, [][]string{{"d", "u", "0", "0", "7"}})
	require.NoError(t, err)
	require.Equal(t, 7*time.Second, pools[0].MaxWait)

	_, err = parsePools([]string{"database", "user", "cl_active", "cl_waiting"}, [][]string{{"d", "u", "x", "0"}})
	require.Error(t, err)
	_, err = parsePools([]string{"database"}, nil)
	require.Error(t, err)
}

func TestCapPools(t *testing.T) {
	var pools []Pool
	for i := 5; i > 0; i-- {
		pools = append(pools, Pool{Database: fmt.Sprintf("db%d", i), User: "u", ClientWaiting: i, MaxWait: time.Duration(i) * time.Second})
	}
	got, overflow := capPools(pools, 3)
	require.Equal(t, 2, overflow)
	require.Len(t, got, 4)
	require.Equal(t, []string{"db1", "db2", "db3", Other}, []string{got[0].Database, got[1].Database, got[2].Database, got[3].Database})
	require.Equal(t, Pool{Database: Other, User: Other, ClientWaiting: 9, MaxWait: 5 * time.Second, Saturated: true}, got[3])
}

func TestConfigStringsHideDSN(t *testing.T) {
	const secret = "TopSecret-DSN-Password"
	cfg := TargetConfig{Name: "main", DSN: "host=h password=" + secret}
	bcfg := BouncerConfig{Name: "pgb", DSN: "host=h password=" + secret}
	tg, err := NewTarget(cfg, nil)
	require.NoError(t, err)
	b, err := NewBouncer(bcfg, nil)
	require.NoError(t, err)
	for _, v := range []any{cfg, bcfg, tg, b, &cfg} {
		for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
			require.NotContains(t, fmt.Sprintf(f, v), secret, f)
		}
	}
}

func TestNewTargetValidation(t *testing.T) {
	_, err := NewTarget(TargetConfig{DSN: "host=h"}, nil)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewTarget(TargetConfig{Name: "x", DSN: "host=h port=notaport password=Hunter2Hunter2"}, nil)
	require.ErrorIs(t, err, ErrInvalid)
	require.NotContains(t, err.Error(), "Hunter2Hunter2")
	_, err = NewTarget(TargetConfig{Name: "x", DSN: "postgres://u:Hunter2Hunter2@h:notaport/db"}, nil)
	require.ErrorIs(t, err, ErrInvalid)
	require.NotContains(t, err.Error(), "Hunter2Hunter2")
	_, err = NewTarget(TargetConfig{Name: "x", DSN: "host=h", AppGroups: []AppGroup{{Match: "a"}}}, nil)
	require.ErrorIs(t, err, ErrInvalid)

	tg, err := NewTarget(TargetConfig{Name: "x", DSN: "host=h statement_timeout=1234 connect_timeout=7",
		AgeThresholds: []time.Duration{30 * time.Second, 0, 5 * time.Second, 30 * time.Second}}, nil)
	require.NoError(t, err)
	rp := tg.h.cfg.RuntimeParams
	require.Equal(t, "1234", rp["statement_timeout"], "a DSN value is kept when the config leaves it zero")
	require.Equal(t, "1000", rp["lock_timeout"])
	require.Equal(t, "on", rp["default_transaction_read_only"])
	require.Equal(t, ApplicationName, rp["application_name"])
	require.Equal(t, 7*time.Second, tg.h.cfg.ConnectTimeout)
	require.Equal(t, []time.Duration{5 * time.Second, 30 * time.Second}, tg.cfg.AgeThresholds)

	tg, err = NewTarget(TargetConfig{Name: "x", DSN: "host=h statement_timeout=1234 application_name=evil",
		StatementTimeout: 1500 * time.Millisecond, LockTimeout: 200 * time.Millisecond, ConnectTimeout: time.Second}, nil)
	require.NoError(t, err)
	rp = tg.h.cfg.RuntimeParams
	require.Equal(t, "1500", rp["statement_timeout"])
	require.Equal(t, "200", rp["lock_timeout"])
	require.Equal(t, ApplicationName, rp["application_name"])
	require.Equal(t, time.Second, tg.h.cfg.ConnectTimeout)
}

func TestLinkBackendArgs(t *testing.T) {
	tg, err := NewTarget(TargetConfig{Name: "x", DSN: "host=127.0.0.1 port=1"}, nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		addr string
		port int
	}{{"127.0.0.1", 0}, {"127.0.0.1", 70000}, {"not-an-ip", 5432}, {"127.0.0.1:5432", 5432}} {
		_, ok, err := tg.LinkBackend(context.Background(), tc.addr, tc.port)
		require.False(t, ok)
		require.ErrorIs(t, err, ErrInvalid, "%+v", tc)
	}
}
