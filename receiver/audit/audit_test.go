package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func decision(o intent.Outcome) policy.Decision {
	return policy.Decision{At: t0, App: "shop", Action: intent.ScaleUp, Key: "scale_up|shop|abc|1",
		Outcome: o, Rule: 16, Reason: "every rule allows it", Workers: 2, Target: 3}
}

// lines decodes every line of path, failing on one that is not a decision.
func lines(t *testing.T, path string) []policy.Decision {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []policy.Decision
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var d policy.Decision
		require.NoError(t, json.Unmarshal(sc.Bytes(), &d), "line %q", sc.Text())
		out = append(out, d)
	}
	return out
}

func TestRecordAppendsLinesAndEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	tl := timeline.New(100, 0)
	w, err := Open(path, tl)
	require.NoError(t, err)
	refused := decision(intent.OutcomeRefused)
	refused.Rule, refused.Refusal, refused.Evidence, refused.Target = 12, intent.RefuseStuckOnDatabase, "pid 4242 waits on backend 77 (lock)", 0
	refused.Reason = "the host's state says it would not help or would hurt"
	acted, verified := decision(intent.OutcomeActed), decision(intent.OutcomeVerified)
	acted.ID, verified.ID, verified.Verifies, verified.Workers = "00000000000000a1", "00000000000000a2", "00000000000000a1", 3
	ds := []policy.Decision{acted, verified, refused,
		decision(intent.OutcomeDeduplicated), decision(intent.OutcomeVerificationFailed)}
	for _, d := range ds {
		require.NoError(t, w.Record(d))
	}
	require.NoError(t, w.Close())
	require.Equal(t, ds, lines(t, path))

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	evs := tl.Select(timeline.Query{})
	var kinds []string
	for _, e := range evs {
		require.Equal(t, timeline.SourceReceiver, e.Source)
		require.Equal(t, "shop", e.App)
		kinds = append(kinds, e.Kind+"/"+e.Cause)
	}
	require.Equal(t, []string{
		"remediation_acted/acted", "remediation_verified/verified", "remediation_declined/refused",
		"remediation_failed/verification_failed",
	}, kinds, "every decision but the deduplicated one")
	require.Equal(t, map[string]string{"action": "scale_up", "rule": "12", "refusal": "stuck_on_database", "workers": "2"}, evs[2].Attrs)
	require.Equal(t, map[string]string{"action": "scale_up", "rule": "16", "workers": "3", "target": "3",
		"id": "00000000000000a2", "verifies": "00000000000000a1"}, evs[1].Attrs, "the verification names the acted line")
	require.Equal(t, "the host's state says it would not help or would hurt: pid 4242 waits on backend 77 (lock)", evs[2].Detail)
	require.Equal(t, t0, evs[0].Time)
}

// The file is only ever appended to: reopening keeps what was there, and a
// partial last line (a crash mid-write) is ended so the next record is a
// line of its own.
func TestAppendOnlyAndTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := Open(path, nil)
	require.NoError(t, err)
	require.NoError(t, w.Record(decision(intent.OutcomeActed)))
	require.NoError(t, w.Close())

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"at":"2026-12-01T12:00:01Z","app":"sh`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	w, err = Open(path, nil)
	require.NoError(t, err)
	require.NoError(t, w.Record(decision(intent.OutcomeVerified)))
	require.NoError(t, w.Close())

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	ls := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
	require.Len(t, ls, 3)
	require.Equal(t, `{"at":"2026-12-01T12:00:01Z","app":"sh`, string(ls[1]), "the partial line stays as evidence")
	var d policy.Decision
	require.NoError(t, json.Unmarshal(ls[2], &d))
	require.Equal(t, decision(intent.OutcomeVerified), d)
	require.Error(t, w.Record(decision(intent.OutcomeActed)), "record after close")
}

// A reason or evidence with newlines or control characters stays on its
// line.
func TestOneLinePerDecision(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := Open(path, nil)
	require.NoError(t, err)
	d := decision(intent.OutcomeRefused)
	d.Evidence = "line one\nline two\r\x1b[31m\u2028"
	require.NoError(t, w.Record(d))
	require.NoError(t, w.Close())
	got := lines(t, path)
	require.Len(t, got, 1)
	require.Equal(t, d, got[0])
}

func TestConcurrentRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	tl := timeline.New(1000, 0)
	w, err := Open(path, tl)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				d := decision(intent.OutcomeCoolingDown)
				d.Workers = i*100 + j
				assert.NoError(t, w.Record(d)) // not require: this is not the test's goroutine
			}
		}()
	}
	wg.Wait()
	require.NoError(t, w.Close())
	got := lines(t, path)
	require.Len(t, got, 160)
	seen := map[int]bool{}
	for _, d := range got {
		seen[d.Workers] = true
	}
	require.Len(t, seen, 160)
	size, _ := tl.Stats()
	require.Equal(t, 160, size)
}

func TestReopenAfterRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	w, err := Open(path, nil)
	require.NoError(t, err)
	require.NoError(t, w.Record(decision(intent.OutcomeActed)))
	require.NoError(t, os.Rename(path, path+".1"))
	require.NoError(t, w.Reopen())
	require.NoError(t, w.Record(decision(intent.OutcomeVerified)))
	require.NoError(t, w.Close())
	require.Equal(t, []policy.Decision{decision(intent.OutcomeActed)}, lines(t, path+".1"))
	require.Equal(t, []policy.Decision{decision(intent.OutcomeVerified)}, lines(t, path))
}

func TestOpenError(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing", "audit.jsonl"), nil)
	require.Error(t, err)
}

// BenchmarkRecord measures one fsync'd line (the receiver writes one per
// decision).
func BenchmarkRecord(b *testing.B) {
	w, err := Open(filepath.Join(b.TempDir(), "audit.jsonl"), timeline.New(1000, 0))
	require.NoError(b, err)
	defer w.Close()
	d := decision(intent.OutcomeDeduplicated)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Record(d); err != nil {
			b.Fatal(err)
		}
	}
}
