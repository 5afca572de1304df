package looptest

import (
	"path/filepath"
	"runtime"
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
