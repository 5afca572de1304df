package procinfo

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSignal signals a real child through its pidfd after re-verifying
// its identity, and refuses a recycled identity, pid 1, pid 0 and an exited
// process without signalling anything.
func TestSignal(t *testing.T) {
	t.Parallel()
	fs := realFS(t)
	cmd, sleep := startSleep(t)
	pid := cmd.Process.Pid
	var id Identity
	require.Eventually(t, func() bool {
		var err error
		id, err = fs.Identify(pid)
		return err == nil && len(id.Cmdline) == 2
	}, 10*time.Second, 5*time.Millisecond)

	// A recycled pid: another start time, or another program in the same
	// process. Neither is signalled.
	reused := id
	reused.StartTicks++
	require.ErrorIs(t, fs.Signal(reused, syscall.SIGTERM), ErrPIDReused)
	other := id
	other.Cmdline = []string{sleep, "31"}
	require.ErrorIs(t, fs.Signal(other, syscall.SIGTERM), ErrPIDReused)
	st, err := fs.Stat(pid)
	require.NoError(t, err)
	require.False(t, st.Zombie(), "the refused signals were not sent")

	for _, p := range []int{1, 0, -1} {
		refused := id
		refused.PID = p
		require.ErrorIs(t, fs.Signal(refused, syscall.SIGTERM), ErrRefused, "pid %d", p)
		called := false
		require.ErrorIs(t, SignalChecked(p, syscall.SIGTERM, func() error { called = true; return nil }), ErrRefused)
		require.False(t, called, "pid %d is refused before any check", p)
	}

	require.NoError(t, fs.Signal(id, syscall.SIGTERM))
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	ws := exit.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled())
	require.Equal(t, syscall.SIGTERM, ws.Signal())

	// Reaped: the pid names nothing (or, much later, someone else).
	require.ErrorIs(t, fs.Signal(id, syscall.SIGTERM), ErrGone)
}
