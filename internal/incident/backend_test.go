package incident

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

var since = time.Date(2026, 11, 24, 17, 50, 0, 0, time.UTC)

// Which stuck workers are worth a query, rule by rule.
func TestMayWaitOnPostgres(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    StuckWorker
		want bool
	}{
		{"TCP socket read with a local port", StuckWorker{SocketRead: true, LocalPort: 40000}, true},
		{"other wait on a PostgreSQL peer", StuckWorker{PeerIsPostgres: true, LocalPort: 40000}, true},
		{"no local port (Unix socket, unreadable)", StuckWorker{SocketRead: true, PeerIsPostgres: true}, false},
		{"not a socket read, peer not PostgreSQL", StuckWorker{LocalPort: 40000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, mayWaitOnPostgres(tc.w)) })
	}
}

// The event names the backend and its blockers; the query text only when
// the target returned it.
func TestBackendLinkEvent(t *testing.T) {
	at := since.Add(3 * time.Second)
	w := StuckWorker{PID: 21150, Since: since, SocketRead: true, LocalPort: 40000}
	info := pgmon.BackendInfo{PID: 777, State: pgmon.StateActive, WaitEventType: "Lock", WaitEvent: "transactionid",
		QueryAge: 2500 * time.Millisecond, Blocked: true,
		BlockedBy: []pgmon.Blocker{{PID: 555, State: pgmon.StateIdleInTransaction, TransactionAge: 61 * time.Second}}}
	require.Equal(t, timeline.Event{Time: at, App: "shop", Source: timeline.SourcePostgres, Kind: timeline.KindWorkerWaitsOnBackend, PID: 21150,
		Detail: "worker 21150 waits on backend 777 (active, transactionid)",
		Attrs: map[string]string{"target": "main", "backend_pid": "777", "state": "active", "wait_event_type": "Lock",
			"wait_event": "transactionid", "query_age_seconds": "2.5", "blocked": "true", "local_port": "40000",
			"blocked_by_0": "pid 555 (idle in transaction, transaction 61.0s)"}},
		BackendLinkEvent("shop", w, "main", info, at))

	info = pgmon.BackendInfo{PID: 778, State: pgmon.StateActive, WaitEvent: "PgSleep", Query: "SELECT pg_sleep(?)"}
	ev := BackendLinkEvent("shop", w, "main", info, at)
	require.Equal(t, "SELECT pg_sleep(?)", ev.Attrs["query"])
	require.Equal(t, "false", ev.Attrs["blocked"])
	require.NotContains(t, ev.Attrs, "blocked_by_0")
}

// linkerLog is a BackendLinker that answers from a table and records
// every port it was asked about.
type linkerLog struct {
	backends map[int]pgmon.BackendInfo
	asked    []int
}

func (l *linkerLog) link(ctx context.Context, _ string, port int) (string, pgmon.BackendInfo, bool) {
	l.asked = append(l.asked, port)
	if _, ok := ctx.Deadline(); !ok {
		panic("link without a deadline")
	}
	info, ok := l.backends[port]
	return "main", info, ok
}

// One query per stuck episode, found or not; a new episode of the same
// worker asks again; nothing is asked before a linker is set; events
// carry the injected clock's time.
func TestBackendLinksOncePerEpisode(t *testing.T) {
	tl := timeline.New(64, 0)
	now := since.Add(10 * time.Second)
	b := NewBackendLinks(tl, BackendLinksOptions{Now: func() time.Time { return now }})
	found := StuckWorker{PID: 1, Since: since, SocketRead: true, LocalPort: 40001}
	missing := StuckWorker{PID: 2, Since: since, SocketRead: true, LocalPort: 40002}
	futex := StuckWorker{PID: 3, Since: since, LocalPort: 40003}

	b.Observe("shop", []StuckWorker{found})
	require.Empty(t, tl.Select(timeline.Query{}), "no linker yet")

	l := &linkerLog{backends: map[int]pgmon.BackendInfo{40001: {PID: 777, State: pgmon.StateActive, WaitEvent: "PgSleep"}}}
	b.SetLinker(l.link)
	b.Observe("shop", []StuckWorker{found, missing, futex})
	b.Observe("shop", []StuckWorker{found, missing, futex})
	require.Equal(t, []int{40001, 40002}, l.asked)
	evs := tl.Select(timeline.Query{Kinds: []string{timeline.KindWorkerWaitsOnBackend}})
	require.Len(t, evs, 1)
	require.Equal(t, now, evs[0].Time)
	require.Equal(t, 1, evs[0].PID)

	again := found
	again.Since = since.Add(20 * time.Second)
	b.Observe("shop", []StuckWorker{again})
	b.Observe("other-app", []StuckWorker{found})
	require.Equal(t, []int{40001, 40002, 40001, 40001}, l.asked)
	require.Len(t, tl.Select(timeline.Query{}), 3)

	b.SetLinker(nil)
	fresh := found
	fresh.Since = since.Add(30 * time.Second)
	b.Observe("shop", []StuckWorker{fresh})
	require.Len(t, l.asked, 4, "a nil linker stops linking")
}

// The memory of episodes is bounded: when full it starts over.
func TestBackendLinksBounded(t *testing.T) {
	b := NewBackendLinks(timeline.New(8, 0), BackendLinksOptions{MaxEpisodes: 3})
	l := &linkerLog{}
	b.SetLinker(l.link)
	for i := range 5 {
		b.Observe("shop", []StuckWorker{{PID: 100 + i, Since: since, SocketRead: true, LocalPort: 40000 + i}})
	}
	require.LessOrEqual(t, len(b.asked), 3)
	b.Observe("shop", []StuckWorker{{PID: 100, Since: since, SocketRead: true, LocalPort: 40000}})
	require.Len(t, l.asked, 6, fmt.Sprint("a forgotten episode is asked about again: ", l.asked))
}
