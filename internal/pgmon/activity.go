package pgmon

import (
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Session states of pg_stat_activity.state, plus StateUnknown for NULL
// (another role's session seen without pg_read_all_stats, or a backend
// still authenticating) and for any value a future server version adds.
const (
	StateActive                   = "active"
	StateIdle                     = "idle"
	StateIdleInTransaction        = "idle in transaction"
	StateIdleInTransactionAborted = "idle in transaction (aborted)"
	StateFastpath                 = "fastpath function call"
	StateDisabled                 = "disabled"
	StateUnknown                  = "unknown"
)

// States returns every state label, in a fixed order. Snapshot.Connections
// has one entry per database, application group and state, zeros included.
func States() []string {
	return []string{StateActive, StateIdle, StateIdleInTransaction, StateIdleInTransactionAborted,
		StateFastpath, StateDisabled, StateUnknown}
}

func stateLabel(s pgtype.Text) string {
	if !s.Valid {
		return StateUnknown
	}
	switch s.String {
	case StateActive, StateIdle, StateIdleInTransaction, StateIdleInTransactionAborted, StateFastpath, StateDisabled:
		return s.String
	}
	return StateUnknown
}

func idleInTx(state string) bool {
	return state == StateIdleInTransaction || state == StateIdleInTransactionAborted
}

// settingsSQL reads the connection limits, whether the role can see every
// session, and the databases that accept connections (the closed set of
// database labels). reserved_connections exists from PostgreSQL 16.
const settingsSQL = `SELECT current_setting('server_version_num')::int,
       current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       COALESCE(current_setting('reserved_connections', true)::int, 0),
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
       ARRAY(SELECT datname::text FROM pg_database
             WHERE datallowconn AND NOT datistemplate ORDER BY datname)`

// activitySQL returns one row per client backend except the exporter's
// own. Without pg_read_all_stats other roles' rows have backend_type NULL;
// they are kept (as state "unknown") when they have a database and a user,
// which excludes the server's auxiliary processes. pg_blocking_pids() and
// the pg_locks lookup run only for sessions waiting on a heavyweight lock,
// because each call takes the lock manager's partition locks. It never
// selects the query column.
func activitySQL(serverVersion int) string {
	waitAge := `NULL::float8`
	if serverVersion >= 140000 { // pg_locks.waitstart
		waitAge = `CASE WHEN wait_event_type = 'Lock' THEN
         (SELECT EXTRACT(EPOCH FROM now() - min(l.waitstart))::float8
          FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted) END`
	}
	return `SELECT pid, datname::text, application_name, state, wait_event_type,
       EXTRACT(EPOCH FROM now() - xact_start)::float8,
       EXTRACT(EPOCH FROM now() - query_start)::float8,
       EXTRACT(EPOCH FROM now() - state_change)::float8,
       CASE WHEN wait_event_type = 'Lock' THEN pg_blocking_pids(pid) END,
       ` + waitAge + `
FROM pg_stat_activity a
WHERE pid <> pg_backend_pid()
  AND (backend_type = 'client backend'
       OR (backend_type IS NULL AND datid IS NOT NULL AND usesysid IS NOT NULL))`
}

// settings is the settingsSQL row.
type settings struct {
	version       int
	maxConn       int
	superReserved int
	reserved      int
	privileged    bool
	datnames      []string
}

// activityRow is one activitySQL row.
type activityRow struct {
	pid       int32
	datname   pgtype.Text
	appName   pgtype.Text
	state     pgtype.Text
	waitType  pgtype.Text
	xactAge   pgtype.Float8
	queryAge  pgtype.Float8
	stateAge  pgtype.Float8
	blockedBy []int32
	waitAge   pgtype.Float8
}

func (r *activityRow) dest() []any {
	return []any{&r.pid, &r.datname, &r.appName, &r.state, &r.waitType,
		&r.xactAge, &r.queryAge, &r.stateAge, &r.blockedBy, &r.waitAge}
}

// seconds converts a server-computed age to a duration; NULL and negative
// ages (a clock step, or a backend that started after now()) are 0.
func seconds(f pgtype.Float8) time.Duration {
	if !f.Valid || f.Float64 <= 0 {
		return 0
	}
	return time.Duration(f.Float64 * float64(time.Second))
}

// summaryConfig is what summarize needs from the target configuration.
type summaryConfig struct {
	thresholds   []time.Duration
	groups       *grouper
	maxDatabases int
}

// summarize turns the rows into the snapshot's figures. It is pure apart
// from the grouper's memo. The steps, in order: the connection limits; the
// closed label sets; one pass over the rows for the counts, ages and lock
// waits; the blocking graph; the per-label connection counts.
func summarize(cfg summaryConfig, st settings, rows []activityRow, snap *Snapshot) {
	summarizeLimits(st, len(rows), snap)
	labels := newLabelSets(cfg, st)
	counts, stateOf := tallyRows(cfg, labels, rows, snap)
	summarizeBlocking(rows, stateOf, snap)
	snap.Connections = labels.connections(counts)
}

// summarizeLimits fills the connection limits and saturation from the
// settings row; rows is the number of client backends other than the
// exporter's own.
func summarizeLimits(st settings, rows int, snap *Snapshot) {
	snap.ServerVersionNum = st.version
	snap.MaxConnections = st.maxConn
	snap.ReservedConnections = st.superReserved + st.reserved
	snap.ClientBackends = rows + 1 // the exporter's own backend holds a slot too
	if avail := st.maxConn - snap.ReservedConnections; avail > 0 {
		snap.Saturation = float64(snap.ClientBackends) / float64(avail)
	}
	snap.InsufficientPrivilege = !st.privileged
}

// labelSets are the closed label sets of Snapshot.Connections: databases
// (from pg_database, sanitised, capped at maxDatabases, then Other),
// application groups and states, each with its index.
type labelSets struct {
	dbs        []string
	dbIndex    map[string]int
	otherDB    int // index of Other in dbs, -1 until needed
	groups     []string
	groupIndex map[string]int
	states     []string
	stateIndex map[string]int
	grouper    *grouper
}

func newLabelSets(cfg summaryConfig, st settings) *labelSets {
	l := &labelSets{
		dbs:     make([]string, 0, len(st.datnames)+1),
		dbIndex: map[string]int{},
		otherDB: -1,
		groups:  cfg.groups.groups,
		states:  States(),
		grouper: cfg.groups,
	}
	overflowDB := false
	for _, d := range st.datnames {
		d = sanitize(d)
		if _, dup := l.dbIndex[d]; dup {
			continue
		}
		if len(l.dbs) >= cfg.maxDatabases || d == Other {
			overflowDB = true
			continue
		}
		l.dbIndex[d] = len(l.dbs)
		l.dbs = append(l.dbs, d)
	}
	l.groupIndex = make(map[string]int, len(l.groups))
	for i, g := range l.groups {
		l.groupIndex[g] = i
	}
	l.stateIndex = make(map[string]int, len(l.states))
	for i, s := range l.states {
		l.stateIndex[s] = i
	}
	if overflowDB {
		l.db(pgtype.Text{}) // databases past the cap are counted under Other, exported even at 0
	}
	return l
}

// db is the index of a row's database: its own, or Other (added to the
// set the first time it is needed) for NULL and databases past the cap.
func (l *labelSets) db(t pgtype.Text) int {
	if t.Valid {
		if i, ok := l.dbIndex[sanitize(t.String)]; ok {
			return i
		}
	}
	if l.otherDB < 0 {
		l.otherDB = len(l.dbs)
		l.dbs = append(l.dbs, Other)
	}
	return l.otherDB
}

// connKey indexes a connection count by database, group and state.
type connKey struct{ db, group, state int }

// key is the label index of one row with state state.
func (l *labelSets) key(r *activityRow, state string) connKey {
	app := ""
	if r.appName.Valid {
		app = r.appName.String
	}
	return connKey{l.db(r.datname), l.groupIndex[l.grouper.group(app)], l.stateIndex[state]}
}

// connections is one ConnectionCount per database x group x state, zeros
// included, in the order of the label sets.
func (l *labelSets) connections(counts map[connKey]int) []ConnectionCount {
	out := make([]ConnectionCount, 0, len(l.dbs)*len(l.groups)*len(l.states))
	for di, d := range l.dbs {
		for gi, g := range l.groups {
			for si, s := range l.states {
				out = append(out, ConnectionCount{Database: d, AppGroup: g, State: s, Count: counts[connKey{di, gi, si}]})
			}
		}
	}
	return out
}

// tallyRows makes the one pass over the rows: sessions per label, the age
// figures and the lock waits. It returns the counts and every session's
// state by pid (for the blocking graph).
func tallyRows(cfg summaryConfig, labels *labelSets, rows []activityRow, snap *Snapshot) (map[connKey]int, map[int32]string) {
	counts := map[connKey]int{}
	snap.ActiveOver = make([]ThresholdCount, len(cfg.thresholds))
	for i, th := range cfg.thresholds {
		snap.ActiveOver[i].Threshold = th
	}
	stateOf := make(map[int32]string, len(rows))
	for i := range rows {
		r := &rows[i]
		state := stateLabel(r.state)
		stateOf[r.pid] = state
		counts[labels.key(r, state)]++
		observeAges(cfg.thresholds, r, state, snap)
		observeLockWait(r, snap)
	}
	return counts, stateOf
}

// observeAges adds one session to the transaction, active-query and
// idle-in-transaction figures.
func observeAges(thresholds []time.Duration, r *activityRow, state string, snap *Snapshot) {
	if age := seconds(r.xactAge); age > snap.OldestTransaction {
		snap.OldestTransaction = age
	}
	switch {
	case state == StateActive:
		age := seconds(r.queryAge)
		if age > snap.LongestActive {
			snap.LongestActive = age
		}
		for j, th := range thresholds {
			if age > th {
				snap.ActiveOver[j].Count++
			}
		}
	case idleInTx(state):
		snap.IdleInTransaction++
		if age := seconds(r.stateAge); age > snap.IdleInTransactionMaxAge {
			snap.IdleInTransactionMaxAge = age
		}
	}
}

// observeLockWait adds one session to the lock-wait figures. The wait
// starts at pg_locks.waitstart (14+), else at the last state change.
func observeLockWait(r *activityRow, snap *Snapshot) {
	if r.waitType.Valid && r.waitType.String == "Lock" {
		snap.LockWaiting++
	}
	if len(r.blockedBy) > 0 {
		snap.Blocked++
		wait := seconds(r.waitAge)
		if !r.waitAge.Valid {
			wait = seconds(r.stateAge)
		}
		if wait > snap.OldestBlockedWait {
			snap.OldestBlockedWait = wait
		}
	}
}

// summarizeBlocking reads the waits-for graph: blockers that are idle in a
// transaction (the classic "application forgot to commit" chain) and the
// longest chain.
func summarizeBlocking(rows []activityRow, stateOf map[int32]string, snap *Snapshot) {
	blockers := map[int32]bool{}
	edges := map[int32][]int32{}
	for i := range rows {
		r := &rows[i]
		if len(r.blockedBy) == 0 {
			continue
		}
		edges[r.pid] = r.blockedBy
		for _, b := range r.blockedBy {
			blockers[b] = true
		}
	}
	for b := range blockers {
		if idleInTx(stateOf[b]) {
			snap.BlockersIdleInTransaction++
		}
	}
	snap.MaxBlockingDepth = maxDepth(edges)
}

// maxDepth returns the length, in waits, of the longest chain in the
// waits-for graph: 1 when sessions wait on a holder, 2 when a third waits
// on a waiter, and so on. A cycle (a deadlock the server has not broken
// yet) counts each of its sessions once: its members are collapsed into
// one node worth their number, and the longest path is taken over the
// acyclic graph that remains. Cutting a cycle where a depth-first walk
// happens to close it instead gives a depth that depends on where the walk
// starts (map order), so the exported depth flapped during a deadlock.
func maxDepth(edges map[int32][]int32) int {
	comp, size := waitComponents(edges)
	members := make([][]int32, len(size))
	for p, c := range comp {
		members[c] = append(members[c], p)
	}
	// memo[c] is the longest chain from component c to a holder.
	memo := make(map[int]int, len(size))
	var depth func(c int) int
	depth = func(c int) int {
		if d, ok := memo[c]; ok {
			return d
		}
		best := 0
		for _, p := range members[c] {
			for _, n := range edges[p] {
				if cn, ok := comp[n]; ok && cn != c {
					best = max(best, depth(cn))
				}
			}
		}
		memo[c] = best + size[c]
		return memo[c]
	}
	best := 0
	for c := range size {
		best = max(best, depth(c))
	}
	return best
}

// waitComponents groups the waiting sessions (the keys of edges) into
// strongly connected components (Tarjan): comp maps a session to its
// component, size counts the sessions of each. A holder that waits on
// nothing is in no component: it ends a chain.
func waitComponents(edges map[int32][]int32) (comp map[int32]int, size []int) {
	comp = make(map[int32]int, len(edges))
	index := make(map[int32]int, len(edges))
	low := make(map[int32]int, len(edges))
	onStack := make(map[int32]bool, len(edges))
	var stack []int32
	next := 0
	var visit func(p int32)
	visit = func(p int32) {
		index[p], low[p] = next, next
		next++
		stack = append(stack, p)
		onStack[p] = true
		for _, n := range edges[p] {
			if _, waits := edges[n]; !waits {
				continue
			}
			if _, seen := index[n]; !seen {
				visit(n)
				low[p] = min(low[p], low[n])
			} else if onStack[n] {
				low[p] = min(low[p], index[n])
			}
		}
		if low[p] != index[p] {
			return
		}
		c := len(size)
		size = append(size, 0)
		for {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[top] = false
			comp[top] = c
			size[c]++
			if top == p {
				return
			}
		}
	}
	for p := range edges {
		if _, seen := index[p]; !seen {
			visit(p)
		}
	}
	return comp, size
}

// sanitize makes a server-provided name safe as a label value.
func sanitize(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// sortThresholds returns the positive thresholds, sorted and de-duplicated.
func sortThresholds(in []time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(in))
	for _, d := range in {
		if d > 0 {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	n := 0
	for i, d := range out {
		if i == 0 || d != out[n-1] {
			out[n] = d
			n++
		}
	}
	return out[:n]
}
