package workerstate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// helperEnv carries a helperSpec to TestHelperSample, which the test binary
// runs as another user.
const helperEnv = "REFLEX_WORKERSTATE_HELPER"

// helperMarker starts the helper's result line.
const helperMarker = "HELPER_RESULT "

type helperSpec struct {
	Master  procinfo.Identity
	Timeout time.Duration
}

type helperResult struct {
	State AppState
	Err   string
}

// TestHelperSample is not a test on its own: TestRealPermissionDenied runs
// the test binary as nobody with only this test selected.
func TestHelperSample(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process for TestRealPermissionDenied")
	}
	var in helperSpec
	require.NoError(t, json.Unmarshal([]byte(spec), &in))
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	st, err := NewSampler(fs, Options{}).Sample("perm", in.Master, in.Timeout, "sync")
	res := helperResult{State: st}
	if err != nil {
		res.Err = err.Error()
	}
	b, err := json.Marshal(res)
	require.NoError(t, err)
	_, _ = os.Stdout.Write(append([]byte(helperMarker), append(b, '\n')...))
}

// TestRealPermissionDenied samples a root Gunicorn as nobody: every
// worker's fds, syscall and memory are refused, which must show as
// PermissionDenied and unreadable workers, never as idle workers or a zero
// heartbeat age.
func TestRealPermissionDenied(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it runs Gunicorn as root and samples it as nobody")
	}
	_, m := realApp(t, gunicorntest.Options{Workers: 2})

	// A copy of the test binary that nobody may execute.
	dir, err := os.MkdirTemp("", "workerstate-perm-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "workerstate.test")
	copyFile(t, os.Args[0], bin, 0o755)

	spec, err := json.Marshal(helperSpec{Master: m, Timeout: realTimeout})
	require.NoError(t, err)
	out, err := testenv.CombinedOutputOfCopy(t, func() *exec.Cmd {
		cmd := exec.Command(bin, "-test.run=^TestHelperSample$", "-test.count=1")
		cmd.Dir = dir
		cmd.Env = []string{helperEnv + "=" + string(spec), "PATH=/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return cmd
	})
	require.NoError(t, err, "%s", out)

	var res helperResult
	found := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), helperMarker); ok {
			require.NoError(t, json.Unmarshal([]byte(line), &res))
			found = true
		}
	}
	require.True(t, found, "no result from the helper:\n%s", out)
	st := res.State
	require.Empty(t, res.Err)
	require.True(t, st.PermissionDenied, describe(st))
	require.Equal(t, 2, st.Workers, describe(st))
	require.Equal(t, 2, st.UnreadableWorkers, describe(st))
	require.Equal(t, 2, st.UnknownActivity, describe(st))
	require.Zero(t, st.Busy+st.Idle+st.Booting, describe(st))
	require.Zero(t, st.HeartbeatsRead, describe(st))
	require.Zero(t, st.MaxHeartbeatAge, describe(st))
	// stat is world-readable: RSS and CPU time are still there.
	require.NotZero(t, st.RSSBytesSum, describe(st))
	require.Equal(t, m.StartTime, st.MasterStartTime.In(m.StartTime.Location()))
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
