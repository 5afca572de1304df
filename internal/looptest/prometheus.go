package looptest

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/promtest"
)

// The loop's Prometheus is promtest's; these names keep the loop's callers
// in one package.
type (
	// PromOptions configures a Prometheus; StartPrometheus reads a nil
	// RuleFiles as ShippedRules.
	PromOptions = promtest.PromOptions
	// Prometheus is one running Prometheus.
	Prometheus = promtest.Prometheus
)

// ShippedRules are the rule files of the module's alerts/ directory.
func ShippedRules(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(moduleRoot(), "alerts", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("looptest: no rule files in alerts/: %v", err)
	}
	return files
}

// RulesWithFor copies files into a temporary directory with the `for:` of
// the named alerts replaced (alert name to duration, e.g. "0s"), and
// returns the copies. Nothing else of a rule changes; an alert named in
// overrides that no file holds, or that has no `for:`, fails the test. It
// exists for loops that cannot wait a shipped `for: 10m`: a caller says so
// where it uses it.
func RulesWithFor(t testing.TB, files []string, overrides map[string]string) []string {
	t.Helper()
	dir := t.TempDir()
	done := map[string]bool{}
	alertRe := regexp.MustCompile(`^\s*-\s*(alert|record):\s*(\S+)`)
	forRe := regexp.MustCompile(`^(\s*)for:\s*\S+\s*$`)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("looptest: %v", err)
		}
		lines := strings.Split(string(b), "\n")
		current := ""
		for i, l := range lines {
			if m := alertRe.FindStringSubmatch(l); m != nil {
				current = ""
				if m[1] == "alert" {
					current = m[2]
				}
				continue
			}
			if d, ok := overrides[current]; ok && current != "" {
				if m := forRe.FindStringSubmatch(l); m != nil {
					lines[i] = m[1] + "for: " + d
					done[current] = true
				}
			}
		}
		p := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatalf("looptest: %v", err)
		}
		out = append(out, p)
	}
	for name := range overrides {
		if !done[name] {
			t.Fatalf("looptest: no `for:` of alert %s in %v", name, files)
		}
	}
	return out
}

// StartPrometheus is promtest.StartPrometheus loading the shipped rules
// when o.RuleFiles is nil: targets are scraped as job "gunicorn-reflex",
// every 1s by default, and every alert goes to o.Alertmanagers.
func StartPrometheus(t testing.TB, o PromOptions) *Prometheus {
	t.Helper()
	if o.RuleFiles == nil {
		o.RuleFiles = ShippedRules(t)
	}
	return promtest.StartPrometheus(t, o)
}

// moduleRoot is the directory of go.mod, found from this file's path.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
