// Package testenv holds what the tests that need real external programs
// (gunicorn, logrotate, postgres, prometheus) share: it decides whether a
// missing program is a skip (a developer laptop) or a failure (CI, where
// REFLEX_REQUIRE_REAL=1), and gives the harnesses one buffer to capture a
// program's output in.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireRealEnv is the environment variable CI sets to turn every missing
// real part into a test failure instead of a skip.
const RequireRealEnv = "REFLEX_REQUIRE_REAL"

// RealRequired reports whether missing real parts must fail the test run.
func RealRequired() bool { return os.Getenv(RequireRealEnv) == "1" }

// LookPath returns the absolute path of the named program. When the program
// is missing it skips the test, or fails it when RealRequired is true.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	Missing(t, name+" not found in PATH: "+err.Error())
	return ""
}

// Missing reports that a real part the test needs is unavailable: a skip on a
// developer machine, a failure under REFLEX_REQUIRE_REAL=1.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if RealRequired() {
		t.Fatalf("%s (and %s=1, so this is a failure, not a skip; run `make deps` as root)", reason, RequireRealEnv)
	}
	t.Skip(reason)
}
