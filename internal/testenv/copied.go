package testenv

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// CombinedOutputOfCopy runs the command mk builds, an executable the test
// has just written (a copy of the test binary run as another user), and
// returns its combined output. A test running in parallel may fork while
// the copy is still open for writing; the forked child holds that
// descriptor until its own exec, and exec of the copy then fails with
// ETXTBSY ("text file busy", golang/go#22315; seen in CI). The window is
// the few microseconds between another test's fork and exec, so the
// known remedy is to try again: up to 20 times, 50 ms apart, each with a
// fresh command from mk.
func CombinedOutputOfCopy(t testing.TB, mk func() *exec.Cmd) ([]byte, error) {
	t.Helper()
	for i := 0; ; i++ {
		out, err := mk().CombinedOutput()
		if !errors.Is(err, syscall.ETXTBSY) || i == 19 {
			return out, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
