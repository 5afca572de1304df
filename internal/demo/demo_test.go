package demo

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemoNarrative runs `make demo`'s command to the end of its
// narrative against the real parts and requires every step and the
// command to see it, so the demo cannot rot, and that it then exits 0 and
// leaves no process and no temporary directory behind, as an interrupted
// demo must too (demorun_test.go says how that is checked).
func TestDemoNarrative(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs for about two minutes")
	}
	r := startDemo(t)
	r.midNarrative(t)
	r.waitExit(t, narrativeEndTimeout)
	text := r.out.String()
	t.Logf("demo output:\n%s", text)
	require.Equal(t, 0, r.cmd.ProcessState.ExitCode(), "exit code at the end of the narrative\n%s", r)
	for _, want := range append(append([]string{}, Steps...),
		"DEMO-ONLY RULES",
		"Gunicorn killed a worker held past --timeout 3",
		"GunicornWorkersTimingOutScaleUp is firing",
		"scale_up verified: 2 → 3 workers; /proc shows 3 workers",
		": external_call (127.0.0.1:",
		"gunicorn-reflex explain --app shop --url http://127.0.0.1:",
		"/incidents/",
		"refused (",
		// The refusal names its verdict; the scale-up's is the verdict
		// of the engine's step before it (external_call, once the stuck
		// workers were seen).
		"its scale_up decisions: acted under ",
		", refused under database_slow_query",
		"scale_down verified: 3 → 2 workers; /proc shows 2 workers",
		"== Done ==",
		stoppingLine,
	) {
		require.Contains(t, text, want)
	}
	require.Less(t, strings.Index(text, Steps[1]), strings.Index(text, Steps[2]), "steps in order")
	r.requireNothingLeft(t)
}

func TestCompressRules(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	rule := `groups:
  - name: g
    rules:
      - alert: A
        expr: rate(x_total[5m]) > 0 and max_over_time(y[30m]) < 1 and z[1h:1m]
        for: 10m
        labels: {a: b}
      - alert: B
        expr: group_by_list
        for: 1m
      - alert: Kept
        expr: max_over_time(k[20m]) > 0
        for: 15m
      - record: r:after:kept
        expr: rate(w_total[2h])
`
	require.NoError(t, os.WriteFile(filepath.Join(src, "a.yml"), []byte(rule), 0o644))
	ch, err := CompressRules(src, dst, 120, "Kept")
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dst, "a.yml"))
	require.NoError(t, err)
	s := string(got)
	require.Contains(t, s, "DEMO-ONLY")
	require.Contains(t, s, "rate(x_total[5s])", "a range never below 5s")
	require.Contains(t, s, "max_over_time(y[15s])")
	require.Contains(t, s, "z[30s:1s]")
	require.Contains(t, s, "for: 5s")
	require.Contains(t, s, "for: 1s", "a for: never below 1s")
	require.Contains(t, s, "labels: {a: b}")
	// Line for line: only durations change, never a line break.
	require.Equal(t, strings.Count(rule, "\n")+3, strings.Count(s, "\n"), "the header's 3 lines, then the rules' lines")
	require.Contains(t, s, "max_over_time(k[20m]) > 0\n        for: 15m\n", "a kept rule keeps its durations")
	require.Contains(t, s, "rate(w_total[1m])", "the rule after a kept one is compressed")
	require.Equal(t, "for: 1m→1s 10m→5s; range: 5m→5s 30m→15s 1h→30s 2h→1m; subquery step: 1m→1s", describe(ch))

	_, err = CompressRules(t.TempDir(), dst, 120)
	require.ErrorContains(t, err, "no *.yml")
	_, err = CompressRules(src, dst, 0)
	require.ErrorContains(t, err, "scale 0")
}

// A harness's Fatal ends only the function Session.Run runs, and Close
// runs the cleanups last first.
func TestSession(t *testing.T) {
	var log bytes.Buffer
	s := NewSession(&log)
	var order []int
	reached := false
	failures := s.Run(func(tb testing.TB) {
		tb.Cleanup(func() { order = append(order, 1) })
		tb.Cleanup(func() { order = append(order, 2) })
		dir := tb.TempDir()
		require.DirExists(t, dir)
		tb.Fatalf("boom %d", 7)
		reached = true
	})
	require.False(t, reached)
	require.Equal(t, []string{"boom 7"}, failures)
	require.True(t, s.Failed())
	require.Nil(t, s.Close(), "the cleanups recorded no failure")
	require.Equal(t, []int{2, 1}, order)
	require.Nil(t, NewSession(&log).Run(func(testing.TB) {}))
}

// Close reports what the cleanups record, which Run's result cannot
// include, and a cleanup's Fatal does not keep the earlier-registered
// ones from running.
func TestSessionCloseReportsCleanupFailures(t *testing.T) {
	var log bytes.Buffer
	s := NewSession(&log)
	ran := false
	require.Nil(t, s.Run(func(tb testing.TB) {
		tb.Cleanup(func() { ran = true })
		tb.Cleanup(func() { tb.Errorf("%s did not stop", "prometheus") })
		tb.Cleanup(func() { tb.Fatal("cleanup gave up") })
	}))
	require.Equal(t, []string{"cleanup gave up", "prometheus did not stop"}, s.Close())
	require.True(t, ran)
}
