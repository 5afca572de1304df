package incident

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// feeder builds a verdict's input event by event, each a second after the
// previous one, numbered like the timeline.
type feeder struct {
	t   time.Time
	seq uint64
	in  Input
}

func newFeeder() *feeder { return &feeder{t: since, in: Input{App: "shop", OpenedAt: since}} }

func (f *feeder) add(source, kind string, pid int, attrs map[string]string) *feeder {
	f.t = f.t.Add(time.Second)
	f.seq++
	f.in.Events = append(f.in.Events, timeline.Event{Seq: f.seq, Time: f.t, App: "shop", Source: source, Kind: kind, PID: pid,
		Detail: kind, Attrs: attrs})
	return f
}

func (f *feeder) timeout(pid int) *feeder {
	return f.add(timeline.SourceErrorLog, timeline.KindWorkerTimeout, pid, nil)
}

func (f *feeder) stuck(pid int, kind, peer string) *feeder {
	a := map[string]string{"kind": kind, "heartbeat_age_seconds": "2.000", "timeout_seconds": "3"}
	if peer != "" {
		a["peer"] = peer
	}
	return f.add(timeline.SourceProc, timeline.KindWorkerStuck, pid, a)
}

func (f *feeder) link(pid int, attrs map[string]string) *feeder {
	return f.add(timeline.SourcePostgres, timeline.KindWorkerWaitsOnBackend, pid, attrs)
}

func (f *feeder) obs(o Observed) *feeder { f.in.Observed = o; return f }

// Each rule of the package doc's list, and the precedence between
// neighbours: the first match wins.
func TestJudgeRules(t *testing.T) {
	slowLink := map[string]string{"backend_pid": "777", "state": "active", "wait_event": "PgSleep", "query_age_seconds": "4.2",
		"blocked": "false", "query": "SELECT pg_sleep(?)"}
	lockLink := map[string]string{"backend_pid": "778", "state": "active", "wait_event_type": "Lock", "wait_event": "transactionid",
		"query_age_seconds": "2.5", "blocked": "true", "blocked_by_0": "pid 555 (idle in transaction, transaction 40.0s)"}
	pool := Observed{DB: DBState{Known: true, PoolWaiting: 4, Pool: "bouncer shop/app", PoolMaxWait: 3 * time.Second}}
	busy := Observed{Samples: 3, AllBusy: 3, Workers: 3, BacklogKnown: true, BacklogPeak: 9}
	for _, tc := range []struct {
		name     string
		f        *feeder
		cause    Cause
		rule     int
		contains []string // in the summary or the advice
	}{
		{"1 oom confirmed, even with a slow query", newFeeder().link(1, slowLink).add(timeline.SourceProc, timeline.KindOOMConfirmed, 9, nil),
			CauseMemoryOOM, 1, []string{"OOM killer killed 1 worker", "pid 9", "max_requests"}},
		{"1 RSS at the memory limit", newFeeder().obs(Observed{RSSMax: 96 << 20, MemoryLimit: 100 << 20}),
			CauseMemoryOOM, 1, []string{"96.0 MiB", "96%"}},
		{"2 lock wait names an idle-in-transaction blocker", newFeeder().timeout(1).link(2, slowLink).link(3, lockLink),
			CauseDatabaseLock, 2, []string{"backend 778", "pid 555 (idle in transaction", "pg_terminate_backend(555)", "idle_in_transaction_session_timeout"}},
		{"3 slow query with its text", newFeeder().timeout(1).stuck(2, "socket_read", "127.0.0.1:5432").link(2, slowLink),
			CauseDatabaseSlowQuery, 3, []string{"backend 777", "4.2s", "SELECT pg_sleep(?)", "statement_timeout", "client_connection_check_interval"}},
		{"3 a linked slow query wins over a waiting pool", newFeeder().link(2, slowLink).obs(pool),
			CauseDatabaseSlowQuery, 3, nil},
		{"4 PgBouncer clients waiting", newFeeder().timeout(1).stuck(2, "socket_read", "127.0.0.1:6432").obs(pool),
			CauseDatabasePoolExhausted, 4, []string{"bouncer shop/app", "4 client(s) waiting", "pool_size"}},
		{"4 PostgreSQL at its connection limit", newFeeder().timeout(1).obs(Observed{DB: DBState{Known: true, Saturation: 0.95, SaturationDetail: "PostgreSQL main at 95% of its connections"}}),
			CauseDatabasePoolExhausted, 4, []string{"main at 95%"}},
		{"5 stuck on PostgreSQL, no link", newFeeder().timeout(1).stuck(2, "socket_read", "10.0.0.5:5432"),
			CauseDatabaseSlowQuery, 5, []string{"10.0.0.5:5432", "no backend could be linked"}},
		{"5 a configured database port", func() *feeder {
			f := newFeeder().stuck(2, "socket_read", "127.0.0.1:7000")
			f.in.Rules.DatabasePorts = []int{7000}
			return f
		}(), CauseDatabaseSlowQuery, 5, nil},
		{"6 futex", newFeeder().timeout(1).stuck(2, "futex", "").stuck(3, "futex", "").stuck(4, "cpu", ""),
			CauseDeadlock, 6, []string{"2 stuck worker(s)", "futex", "py-spy dump"}},
		{"7 cpu, host saturated", newFeeder().timeout(1).stuck(2, "cpu", "").obs(Observed{HostCPUKnown: true, HostCPUBusy: 0.99}),
			CauseCPUBound, 7, []string{"running on CPU", "99% busy, saturated", "only queue for CPU"}},
		{"7 cpu, host not measured", newFeeder().stuck(2, "cpu", ""),
			CauseCPUBound, 7, []string{"not measured"}},
		{"8 external call names the peer", newFeeder().timeout(1).stuck(2, "socket_read", "127.0.0.1:9999").stuck(3, "socket_read", "127.0.0.1:9999"),
			CauseExternalCall, 8, []string{"127.0.0.1:9999", "not a known database", "Set a timeout"}},
		{"8 a worker reading its own client is not an external call: the peer is not named", func() *feeder {
			f := newFeeder().timeout(1).stuck(2, "socket_read", "127.0.0.1:9999").stuck(3, "socket_read", "127.0.0.1:9999")
			return f.add(timeline.SourceProc, timeline.KindWorkerStuck, 4, map[string]string{"kind": "socket_read",
				"heartbeat_age_seconds": "2.000", "timeout_seconds": "3", "peer": "127.0.0.1:59692", "peer_is_client": "true"})
		}(), CauseExternalCall, 8, []string{"2 stuck worker(s)", "socket to 127.0.0.1:9999, which"}},
		{"8 a tie between futex and external goes to futex", newFeeder().stuck(2, "futex", "").stuck(3, "socket_read", "127.0.0.1:9999"),
			CauseDeadlock, 6, nil},
		{"9 code change before the first timeout", newFeeder().add("deploy", "deploy_release", 0, nil).timeout(1).timeout(2).stuck(3, "sleep", ""),
			CauseDeployRegression, 9, []string{"after deploy_release", "Roll back deploy_release", "/min after"}},
		{"9 a HUP alone is a weak marker", newFeeder().add(timeline.SourceErrorLog, timeline.KindMasterReload, 100, nil).timeout(1),
			CauseDeployRegression, 9, []string{"master_reload"}},
		{"9 a deploy does not explain a slow query", newFeeder().add("deploy", "deploy_release", 0, nil).timeout(1).link(2, slowLink),
			CauseDatabaseSlowQuery, 3, nil},
		{"10 capacity: all busy, backlog, no timeout", newFeeder().obs(busy),
			CauseCapacity, 10, []string{"3 of 3 samples", "9 client(s)", "Add workers"}},
		{"10 not capacity once a timeout happened", newFeeder().timeout(1).obs(busy),
			CauseUnknown, 12, []string{"1 timeout(s)"}},
		{"11 SIGKILL without a timeout, OOM not confirmed", newFeeder().add(timeline.SourceProc, timeline.KindOOMSuspected, 9, nil),
			CauseMemoryOOM, 11, []string{"nothing confirms"}},
		{"12 unknown names the stuck kinds", newFeeder().timeout(1).stuck(2, "sleep", "").stuck(3, "sleep", "").stuck(4, "disk", ""),
			CauseUnknown, 12, []string{"1 disk, 2 sleep"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Judge(tc.f.in)
			require.Equal(t, tc.cause, v.Cause, v.Summary)
			require.Equal(t, tc.rule, v.Rule)
			require.NotEmpty(t, v.Summary)
			require.NotEmpty(t, v.Advice)
			if tc.cause != CauseUnknown {
				require.NotEmpty(t, v.Decisive, "a verdict names the evidence that decided it")
				require.Greater(t, v.Confidence, 0.0)
			}
			for _, s := range tc.contains {
				require.Contains(t, v.Summary+" | "+v.Advice, s)
			}
		})
	}
}

// The deploy window: a marker longer ago than DeployWindow before the
// first timeout is not the cause.
func TestJudgeDeployWindow(t *testing.T) {
	f := newFeeder().add("deploy", "deploy_release", 0, nil)
	f.t = f.t.Add(11 * time.Minute)
	f.timeout(1)
	require.Equal(t, CauseUnknown, Judge(f.in).Cause)
	f.in.Rules.DeployWindow = 20 * time.Minute
	require.Equal(t, CauseDeployRegression, Judge(f.in).Cause)
}

// The innermost app frame of the newest timeout is decisive evidence,
// from the attribute or the detail.
func TestJudgeAppFrame(t *testing.T) {
	f := newFeeder().timeout(1).stuck(2, "futex", "")
	f.in.Events[0].Attrs = map[string]string{AttrAppFrame: "app.py:42 in deadlock"}
	v := Judge(f.in)
	require.Equal(t, CauseDeadlock, v.Cause)
	require.Contains(t, v.Summary, "app.py:42 in deadlock")
	last := v.Decisive[len(v.Decisive)-1]
	require.Equal(t, FactAppFrame, last.Kind)
	require.Equal(t, uint64(1), last.Seq)

	f = newFeeder().timeout(1)
	f.in.Events[0].Detail = "worker 1 timed out at views.py:7 in slow"
	require.Contains(t, Judge(f.in).Summary, "views.py:7 in slow")
	require.Equal(t, "", FrameFromDetail("worker 1 timed out at 12:00"))
}

// Observed keeps the worst of each number, so a verdict survives the
// workers that showed it being killed.
func TestObservedMerge(t *testing.T) {
	var o Observed
	o.Merge(Snapshot{Sampled: true, Workers: 3, Busy: 3, BacklogKnown: true, BacklogPeak: 5, Past80Timeout: 2, Timeout: 3 * time.Second},
		DBState{Known: true, PoolWaiting: 3, Pool: "b x/y"}, 0.5, true)
	o.Merge(Snapshot{Sampled: true, Workers: 3, Busy: 1, BacklogKnown: true, BacklogQueued: 7},
		DBState{Known: true, PoolWaiting: 1, Pool: "b z/w", Saturation: 0.3}, 0.9, true)
	o.Merge(Snapshot{}, DBState{}, 0, false)
	require.Equal(t, Observed{Samples: 2, AllBusy: 1, Workers: 3, BacklogKnown: true, BacklogPeak: 7, Past80: 2, Timeout: 3 * time.Second,
		HostCPUKnown: true, HostCPUBusy: 0.9, DB: DBState{Known: true, PoolWaiting: 3, Pool: "b x/y", Saturation: 0.3}}, o)
}
