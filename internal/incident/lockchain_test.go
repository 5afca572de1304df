package incident

import (
	"strings"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// Two workers on one locked row: the first waits on the idle-in-transaction
// holder, the second on the tuple lock the first holds. Whatever the order
// of their links, the verdict names the root, not the first waiter.
func TestLockVerdictNamesTheRootBlocker(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	link := func(seq uint64, backend, blocker string) timeline.Event {
		return timeline.Event{Seq: seq, Time: t0, App: "shop", Source: timeline.SourcePostgres, Kind: timeline.KindWorkerWaitsOnBackend,
			Attrs: map[string]string{"backend_pid": backend, "wait_event_type": "Lock", "blocked": "true", "blocked_by_0": blocker}}
	}
	second := link(2, "202", "pid 201 (active, transaction 3.8s)")
	first := link(3, "201", "pid 200 (idle in transaction, transaction 9.0s)")
	for _, order := range [][]timeline.Event{{second, first}, {first, second}} {
		v := Judge(Input{App: "shop", OpenedAt: t0, Events: order})
		if v.Cause != CauseDatabaseLock {
			t.Fatalf("cause %s", v.Cause)
		}
		if !strings.Contains(v.Summary, "pid 200 (idle in transaction") || !strings.Contains(v.Advice, "pid 200, idle in transaction") {
			t.Errorf("order %d,%d: summary %q advice %q do not name the root blocker 200", order[0].Seq, order[1].Seq, v.Summary, v.Advice)
		}
	}
}
