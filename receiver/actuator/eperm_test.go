package actuator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/actuator"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/verify"
)

const epermEnv = "REFLEX_ACTUATOR_EPERM_IDENTITY"

// TestSignalRefusedByTheKernelIsReported (E3): an actuator running as
// another user, with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (so it can
// read and verify the master in /proc) but without CAP_KILL, gets EPERM
// from the kernel: Perform reports ErrPermission (outcome failed) and the
// master receives nothing. The test binary re-runs itself as uid 65534
// for that, so it needs root.
func TestSignalRefusedByTheKernelIsReported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as another user")
	}
	r := newRig(t, 1, actuator.Options{})
	idJSON, err := json.Marshal(r.id)
	require.NoError(t, err)

	// A copy of the test binary that uid 65534 may execute.
	dir, err := os.MkdirTemp("", "actuator-eperm-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "actuator.test")
	copyFile(t, os.Args[0], bin)

	out, err := testenv.CombinedOutputOfCopy(t, func() *exec.Cmd {
		cmd := exec.Command(bin, "-test.run=^TestEPERMHelper$", "-test.count=1")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), epermEnv+"="+string(idJSON))
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: 65534, Gid: 65534},
			AmbientCaps: []uintptr{unix.CAP_SYS_PTRACE, unix.CAP_DAC_READ_SEARCH},
		}
		return cmd
	})
	require.NoError(t, err, "helper: %s", out)
	require.Contains(t, string(out), "outcome=failed permission=true")

	// Gunicorn logs each signal it handles, in order: after one TTIN sent
	// with permission, exactly one has arrived.
	_, err = r.act.Perform(context.Background(), intent.ScaleUp, r.target())
	require.NoError(t, err)
	v, err := verify.WorkerCount(context.Background(), r.probe(), 2, verify.Options{Deadline: realDeadline})
	require.NoError(t, err)
	require.True(t, v.Verified(), v.Evidence)
	require.Equal(t, 1, r.g.LogCount("Handling signal: ttin"))
}

// TestEPERMHelper is the unprivileged half of
// TestSignalRefusedByTheKernelIsReported; it does nothing unless run by it.
func TestEPERMHelper(t *testing.T) {
	raw := os.Getenv(epermEnv)
	if raw == "" {
		t.Skip("run by TestSignalRefusedByTheKernelIsReported only")
	}
	var id procinfo.Identity
	require.NoError(t, json.Unmarshal([]byte(raw), &id))
	act, err := actuator.New(actuator.Options{})
	require.NoError(t, err)
	require.NoError(t, act.CheckMaster(id), "the helper can verify the master")
	_, err = act.Perform(context.Background(), intent.ScaleUp, actuator.Target{App: "rx", Master: id})
	require.Error(t, err)
	require.True(t, errors.Is(err, syscall.EPERM), "the kernel's EPERM is in the chain: %v", err)
	out, _ := actuator.Outcome(err)
	fmt.Printf("outcome=%s permission=%v\n", out, errors.Is(err, actuator.ErrPermission))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
}
