package journal_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/journal"
)

// fakeJournalctl is a real shell standing in for journalctl's output, so
// the reader's handling of what journalctl prints is tested without a
// journal: the arguments the reader appends become the script's ignored
// positional parameters.
func fakeJournalctl(script string) []string { return []string{"/bin/sh", "-c", script, "sh"} }

// Entries journalctl prints that are not JSON, too big to decode, or whose
// MESSAGE is longer than MaxLineBytes are counted, never delivered whole,
// and do not stop the lines after them.
func TestReaderSkipsBadAndOversizedEntries(t *testing.T) {
	long := strings.Repeat("x", 2000)
	script := `printf '%s\n' '{"MESSAGE":"a","__CURSOR":"c1"}' 'not json' '{"MESSAGE":"` + long + `","__CURSOR":"c2"}'
head -c 1100000 /dev/zero | tr '\0' 'y'; echo
printf '%s\n' '{"MESSAGE":"b","__CURSOR":"c3"}'
exec sleep 60`
	var c collected
	r, err := journal.New(journal.Options{Unit: "app.service", Command: fakeJournalctl(script), MaxLineBytes: 1024}, c.add)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	got := waitLines(t, r, &c, 3)
	require.Equal(t, []string{"a", long[:1024], "b"}, got)
	st := r.Stats()
	require.Equal(t, uint64(1), st.DecodeErrors)
	require.Equal(t, uint64(2), st.OversizedLines) // the cut message and the skipped entry
	require.Equal(t, uint64(0), st.Restarts)
}

// A journalctl that cannot be started is retried with a growing pause and
// counted; Close still returns.
func TestReaderCountsStartFailures(t *testing.T) {
	r, err := journal.New(journal.Options{Unit: "app.service", Command: []string{"/nonexistent/journalctl"},
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}, func([]byte) {})
	require.NoError(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats().StartErrors < 3 {
		require.False(t, time.Now().After(deadline), "no start errors counted: %+v", r.Stats())
		time.Sleep(5 * time.Millisecond)
	}
	st := r.Stats()
	require.False(t, st.Running)
	require.Contains(t, st.LastError, "/nonexistent/journalctl")
	require.NoError(t, r.Close())
}

func TestNewRefusesBadUnit(t *testing.T) {
	_, err := journal.New(journal.Options{Unit: "a b"}, func([]byte) {})
	require.Error(t, err)
}

// One Poll delivers at most MaxPollLines, so a unit that logs without a
// pause cannot keep Poll from returning; the rest comes with later polls.
func TestPollIsBounded(t *testing.T) {
	script := `for i in 1 2 3 4 5; do printf '{"MESSAGE":"l%s","__CURSOR":"c%s"}\n' $i $i; done; exec sleep 60`
	var c collected
	r, err := journal.New(journal.Options{Unit: "app.service", Command: fakeJournalctl(script), MaxPollLines: 2}, c.add)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats().Queued < 5 {
		require.False(t, time.Now().After(deadline), "queued: %+v", r.Stats())
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(t, 2, r.Poll())
	require.Equal(t, 2, r.Poll())
	require.Equal(t, 1, r.Poll())
	require.Equal(t, 0, r.Poll())
	require.Equal(t, []string{"l1", "l2", "l3", "l4", "l5"}, c.get())
	require.Equal(t, uint64(5), r.Stats().Lines)
}
