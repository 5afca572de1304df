package procinfo

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

func realFS(t *testing.T) FS {
	t.Helper()
	fs, err := NewFS("/proc")
	require.NoError(t, err)
	return fs
}

func TestRealSelf(t *testing.T) {
	t.Parallel()
	fs := realFS(t)
	id, err := fs.Identify(os.Getpid())
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)
	require.Equal(t, exe, id.Exe)
	require.Equal(t, os.Args, id.Cmdline)
	require.Equal(t, os.Getppid(), id.PPID)
	require.Equal(t, os.Getuid(), id.UID)
	require.WithinDuration(t, time.Now(), id.StartTime, 10*time.Minute)
	require.NoError(t, fs.Verify(id))

	wd, err := os.Getwd()
	require.NoError(t, err)
	cwd, err := fs.Cwd(os.Getpid())
	require.NoError(t, err)
	require.Equal(t, wd, cwd)

	// An open file shows up with its path, as regular and writable.
	f, err := os.Create(filepath.Join(t.TempDir(), "x.log"))
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteString("hello\n")
	require.NoError(t, err)
	files, err := fs.OpenFiles(os.Getpid())
	require.NoError(t, err)
	i := slices.IndexFunc(files, func(o OpenFile) bool { return o.FD == int(f.Fd()) })
	require.GreaterOrEqual(t, i, 0)
	require.Equal(t, f.Name(), files[i].Target)
	require.True(t, files[i].Regular)
	require.True(t, files[i].Writable)
	tail, err := fs.ReadTail(os.Getpid(), files[i], 3)
	require.NoError(t, err)
	require.Equal(t, "lo\n", string(tail))
}

func TestRealChildrenAndVerifyAfterExit(t *testing.T) {
	t.Parallel()
	fs := realFS(t)
	cmd, sleep := startSleep(t)
	pid := cmd.Process.Pid

	kids, err := fs.Children(os.Getpid())
	require.NoError(t, err)
	require.Contains(t, kids, pid)
	id, err := fs.Identify(pid)
	require.NoError(t, err)
	require.Equal(t, []string{sleep, "30"}, id.Cmdline)
	require.Equal(t, "sleep", id.Comm)
	require.NoError(t, fs.Verify(id))

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	// A zombie (not yet reaped) is already gone.
	require.Eventually(t, func() bool { return errors.Is(fs.Verify(id), ErrGone) }, 5*time.Second, 10*time.Millisecond)
	_ = cmd.Wait()
	require.ErrorIs(t, fs.Verify(id), ErrGone)
	_, err = fs.Identify(pid)
	require.ErrorIs(t, err, ErrGone)
}

// startSleep starts `sleep 30` as a child, killed and reaped at cleanup.
func startSleep(t *testing.T) (cmd *exec.Cmd, sleep string) {
	t.Helper()
	sleep = testenv.LookPath(t, "sleep")
	cmd = exec.Command(sleep, "30")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, sleep
}

// permHelperEnv makes the test binary, re-run as nobody, inspect the pid
// in it and print what each call returned.
const permHelperEnv = "PROCINFO_PERM_HELPER_PID"

type permResult struct {
	Identify, OpenFiles, Cwd, Heartbeat, Verify string
	IdentifyPerm, OpenFilesPerm, CwdPerm        bool
	HeartbeatPerm, VerifyPerm                   bool
}

func TestMain(m *testing.M) {
	if os.Getenv(blankArgvHelperEnv) != "" {
		runBlankArgvHelper()
	}
	if s := os.Getenv(permHelperEnv); s != "" {
		pid, _ := strconv.Atoi(s)
		fs, err := NewFS("/proc")
		if err != nil {
			os.Exit(2)
		}
		var r permResult
		str := func(err error) string {
			if err == nil {
				return ""
			}
			return err.Error()
		}
		_, err = fs.Identify(pid)
		r.Identify, r.IdentifyPerm = str(err), errors.Is(err, ErrPermission)
		_, err = fs.OpenFiles(pid)
		r.OpenFiles, r.OpenFilesPerm = str(err), errors.Is(err, ErrPermission)
		_, err = fs.Cwd(pid)
		r.Cwd, r.CwdPerm = str(err), errors.Is(err, ErrPermission)
		_, _, err = fs.HeartbeatFD(pid)
		r.Heartbeat, r.HeartbeatPerm = str(err), errors.Is(err, ErrPermission)
		err = fs.Verify(Identity{PID: pid, StartTicks: 1})
		r.Verify, r.VerifyPerm = str(err), errors.Is(err, ErrPermission)
		_ = json.NewEncoder(os.Stdout).Encode(r)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRealPermission runs this test binary as nobody against the (root)
// test process: every call must return ErrPermission, not an empty result.
func TestRealPermission(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		testenv.Missing(t, "needs root to run a helper as another user")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	// The helper must be able to execute a copy of the binary.
	dir, err := os.MkdirTemp("", "procinfo-perm-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "procinfo.test")
	b, err := os.ReadFile(exe)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))

	cmd := exec.Command(bin)
	cmd.Env = []string{permHelperEnv + "=" + strconv.Itoa(os.Getpid())}
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	require.NoError(t, err, "helper: %s", out)
	var r permResult
	require.NoError(t, json.Unmarshal(out, &r), string(out))
	require.True(t, r.IdentifyPerm, "Identify: %s", r.Identify)
	require.True(t, r.OpenFilesPerm, "OpenFiles: %s", r.OpenFiles)
	require.True(t, r.CwdPerm, "Cwd: %s", r.Cwd)
	require.True(t, r.HeartbeatPerm, "HeartbeatFD: %s", r.Heartbeat)
	require.True(t, r.VerifyPerm, "Verify: %s", r.Verify)
}
