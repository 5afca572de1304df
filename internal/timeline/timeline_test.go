package timeline

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBoundedByCountOldestEvicted(t *testing.T) {
	tl := New(3, 0)
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		tl.Append(Event{Time: base.Add(time.Duration(i) * time.Second), App: "a", Kind: fmt.Sprint(i)})
	}
	got := tl.Select(Query{})
	require.Len(t, got, 3)
	require.Equal(t, []string{"2", "3", "4"}, kinds(got))
	size, evicted := tl.Stats()
	require.Equal(t, 3, size)
	require.Equal(t, uint64(2), evicted)
}

func TestBoundedByAge(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tl := New(100, time.Hour)
	tl.SetClock(func() time.Time { return now })
	tl.Append(Event{Time: now.Add(-2 * time.Hour), Kind: "old"})
	tl.Append(Event{Time: now.Add(-time.Minute), Kind: "new"})
	require.Equal(t, []string{"new"}, kinds(tl.Select(Query{})))
	now = now.Add(2 * time.Hour)
	require.Empty(t, tl.Select(Query{}), "events age out even without new appends")
}

func TestSelectFilters(t *testing.T) {
	tl := New(10, 0)
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tl.Append(Event{Time: base, App: "a", Kind: "worker_timeout"})
	s := tl.Append(Event{Time: base.Add(time.Minute), App: "b", Kind: "worker_timeout"})
	tl.Append(Event{Time: base.Add(2 * time.Minute), App: "a", Kind: "worker_boot"})
	require.Equal(t, []string{"worker_timeout", "worker_boot"}, kinds(tl.Select(Query{App: "a"})))
	require.Len(t, tl.Select(Query{Kinds: []string{"worker_timeout"}}), 2)
	require.Len(t, tl.Select(Query{From: base.Add(30 * time.Second), To: base.Add(90 * time.Second)}), 1)
	require.Len(t, tl.Select(Query{AfterSeq: s}), 1)
	require.Equal(t, []string{"worker_boot"}, kinds(tl.Select(Query{Limit: 1})))
}

func TestConcurrentAppendAndSelect(t *testing.T) {
	tl := New(64, 0)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				tl.Append(Event{Kind: "k"})
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				require.LessOrEqual(t, len(tl.Select(Query{})), 64)
			}
		}()
	}
	wg.Wait()
	size, evicted := tl.Stats()
	require.Equal(t, 64, size)
	require.Equal(t, uint64(4000-64), evicted)
}

func kinds(es []Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Kind
	}
	return out
}
