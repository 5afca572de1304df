package demo

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDemoInterruptedLeavesNothingRunning runs `make demo`'s command,
// interrupts it with SIGINT (Ctrl-C) in the middle of the narrative, when
// every kind of process it starts is running, and requires that it exits
// 130 saying so and leaves no process and no temporary directory behind
// (demorun_test.go says how that is checked).
func TestDemoInterruptedLeavesNothingRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs for half a minute before it is interrupted")
	}
	r := startDemo(t)
	r.midNarrative(t)

	require.NoError(t, r.cmd.Process.Signal(syscall.SIGINT))
	sent := time.Now()
	r.waitExit(t, interruptExitTimeout)
	t.Logf("reflex-demo exited %v after SIGINT", time.Since(sent).Round(10*time.Millisecond))
	require.Equal(t, 130, r.cmd.ProcessState.ExitCode(), "exit code after SIGINT\n%s", r)
	require.Contains(t, r.stderr.String(), "reflex-demo: interrupted; everything it started is stopped")
	r.requireNothingLeft(t)
}
