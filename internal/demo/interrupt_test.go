package demo

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDemoInterruptedLeavesNothingRunning runs `make demo`'s command,
// interrupts it with SIGINT (Ctrl-C) in the middle of the narrative, when
// every kind of process it starts is running, and requires that it exits
// 130 saying so and leaves no process and no temporary directory behind
// (demorun_test.go says how that is checked). A second SIGINT while it
// stops is ignored, as its doc comment says: the test sends one, and the
// demo must still stop everything and exit 130 rather than die of it.
func TestDemoInterruptedLeavesNothingRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs for half a minute before it is interrupted")
	}
	r := startDemo(t)
	r.midNarrative(t)

	require.NoError(t, r.cmd.Process.Signal(syscall.SIGINT))
	sent := time.Now()
	r.waitFor(t, stoppingLine, interruptExitTimeout)
	// A stop that ends before this signal is sent (it takes seconds) makes
	// it ErrProcessDone: Go signals through a pidfd, never a reused pid.
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		require.ErrorIs(t, err, os.ErrProcessDone)
		t.Log("reflex-demo exited before the second SIGINT")
	}
	r.waitExit(t, interruptExitTimeout)
	t.Logf("reflex-demo exited %v after the first SIGINT", time.Since(sent).Round(10*time.Millisecond))
	require.Equal(t, 130, r.cmd.ProcessState.ExitCode(), "exit code after SIGINT\n%s", r)
	require.Contains(t, r.stderr.String(), "reflex-demo: interrupted; everything it started is stopped")
	r.requireNothingLeft(t)
}
