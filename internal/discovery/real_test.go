package discovery

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// requireSetproctitle skips (or, under REFLEX_REQUIRE_REAL=1, fails) when
// the Python that runs gunicorn cannot import setproctitle
// (apt-get install python3-setproctitle).
func requireSetproctitle(t *testing.T) {
	t.Helper()
	bin := testenv.LookPath(t, "gunicorn")
	f, err := os.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	py := "python3"
	if s, ok := strings.CutPrefix(strings.TrimSpace(line), "#!"); ok {
		if fields := strings.Fields(s); len(fields) > 0 {
			py = fields[0]
			if strings.HasSuffix(py, "/env") && len(fields) > 1 {
				py = fields[1]
			}
		}
	}
	if err := exec.Command(py, "-c", "import setproctitle").Run(); err != nil {
		testenv.Missing(t, "setproctitle is not importable by "+py+" (apt-get install python3-setproctitle)")
	}
}

func realFS(t *testing.T) procinfo.FS {
	t.Helper()
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	return fs
}

// findMaster runs Discover and returns the master with pid; other tests'
// Gunicorns may be running too, so only pids are compared.
func findMaster(t *testing.T, fs procinfo.FS, pid int) (Master, []Master) {
	t.Helper()
	ms, err := Discover(fs)
	require.NoError(t, err)
	for _, m := range ms {
		if m.Identity.PID == pid {
			return m, ms
		}
	}
	t.Fatalf("master %d not discovered; found %v", pid, names(ms))
	return Master{}, nil
}

func portOf(t *testing.T, g *gunicorntest.Gunicorn) string {
	t.Helper()
	i := strings.LastIndexByte(g.Addr, ':')
	require.Positive(t, i)
	return g.Addr[i+1:]
}

// requireName accepts the name with a port suffix too: another test may run
// a master with the same name at the same time.
func requireName(t *testing.T, want, port string, m Master) {
	t.Helper()
	require.Contains(t, []string{want, want + "-" + port}, m.Name)
}

// TestDiscoverReal starts two apps with no config, one titled by
// setproctitle and one not, then a third, and checks what Discover finds
// against what the harness knows.
func TestDiscoverReal(t *testing.T) {
	t.Parallel()
	requireSetproctitle(t)
	fs := realFS(t)

	a := gunicorntest.Start(t, gunicorntest.Options{Name: "disc-alpha", Workers: 2, Timeout: 2})
	b := gunicorntest.Start(t, gunicorntest.Options{
		NoSetproctitle: true, Workers: 3, Timeout: 7, AccessLogFormat: `%(h)s "%(r)s" %(s)s %(D)s`,
	})

	am, all := findMaster(t, fs, a.MasterPID())
	for _, w := range append(a.WorkerPIDs(), b.WorkerPIDs()...) {
		for _, m := range all {
			require.NotEqual(t, w, m.Identity.PID, "worker %d reported as a master", w)
		}
	}

	t.Run("titled", func(t *testing.T) {
		requireName(t, "disc-alpha", portOf(t, a), am)
		require.Equal(t, SourceProcTitle, am.NameSource)
		require.True(t, am.Setproctitle)
		require.Equal(t, a.ErrorLog, am.ErrorLog)
		// No request yet: the empty access log is found by its name.
		require.Equal(t, a.AccessLog, am.AccessLog)
		require.Equal(t, a.WorkerPIDs(), am.Workers)
		require.Equal(t, []string{a.Addr}, am.Listen)
		require.Equal(t, "sync", am.WorkerClass)
		// --timeout 2 is in the overwritten argv: not visible.
		require.Equal(t, DefaultTimeout, am.Timeout)
		require.Contains(t, am.TimeoutNote, "timeout not visible")
		require.Equal(t, FromAssumed, am.TimeoutSource)
		require.Empty(t, am.Pidfile)
		require.NoError(t, fs.Verify(am.Identity))

		status, _, err := a.Get("/ok")
		require.NoError(t, err)
		require.Equal(t, 200, status)
		require.Eventually(t, func() bool {
			st, err := os.Stat(a.AccessLog)
			return err == nil && st.Size() > 0
		}, 5*time.Second, 20*time.Millisecond)
		am2, _ := findMaster(t, fs, a.MasterPID())
		require.Equal(t, a.AccessLog, am2.AccessLog, "now found by its content")
		require.False(t, hasNote(am2, "chosen by its name"), am2.Notes)
	})

	t.Run("untitled", func(t *testing.T) {
		bm, _ := findMaster(t, fs, b.MasterPID())
		requireName(t, gunicorntest.AppModule, portOf(t, b), bm)
		require.Equal(t, SourceAppModule, bm.NameSource)
		require.False(t, bm.Setproctitle)
		require.Equal(t, b.ErrorLog, bm.ErrorLog)
		require.Equal(t, b.AccessLog, bm.AccessLog)
		require.Equal(t, `%(h)s "%(r)s" %(s)s %(D)s`, bm.AccessLogFormat)
		require.Equal(t, 7*time.Second, bm.Timeout)
		require.Equal(t, b.Pidfile, bm.Pidfile)
		require.Equal(t, b.WorkerPIDs(), bm.Workers)
		require.Len(t, bm.Workers, 3)
		require.Equal(t, []string{b.Addr}, bm.Listen)
	})

	t.Run("heartbeat ctime advances for an idle worker", func(t *testing.T) {
		w := a.WorkerPIDs()[0]
		first, ok, err := fs.HeartbeatFD(w)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 1, first.Count)
		master, err := fs.HeartbeatFDs(a.MasterPID())
		require.NoError(t, err)
		require.Len(t, master, 2)
		require.Contains(t, []uint64{master[0].Inode, master[1].Inode}, first.Inode)
		// An idle sync worker notifies every timeout/2 = 1 s.
		require.Eventually(t, func() bool {
			hb, ok, err := fs.HeartbeatFD(w)
			return err == nil && ok && hb.Inode == first.Inode && hb.Ctime.After(first.Ctime)
		}, 5*time.Second, 50*time.Millisecond)
		hb, _, err := fs.HeartbeatFD(w)
		require.NoError(t, err)
		require.WithinDuration(t, time.Now(), hb.Ctime, 3*time.Second)
	})

	t.Run("a master started later is found by the next Discover", func(t *testing.T) {
		c := gunicorntest.Start(t, gunicorntest.Options{
			NoSetproctitle: true, UsePythonM: true, Name: "disc-gamma", ErrorLogToStderr: true, NoAccessLog: true,
		})
		cm, ms := findMaster(t, fs, c.MasterPID())
		requireName(t, "disc-gamma", portOf(t, c), cm)
		require.Equal(t, SourceNameFlag, cm.NameSource)
		require.Equal(t, c.ErrorLog, cm.ErrorLog)
		require.Equal(t, c.Stderr, cm.ErrorLog)
		require.Empty(t, cm.AccessLog)
		require.Equal(t, c.WorkerPIDs(), cm.Workers)
		pids := map[int]bool{}
		for _, m := range ms {
			pids[m.Identity.PID] = true
		}
		require.True(t, pids[a.MasterPID()] && pids[b.MasterPID()], "the first two are still found")

		worker, err := fs.Identify(c.WorkerPIDs()[0])
		require.NoError(t, err)
		c.Stop()
		require.ErrorIs(t, fs.Verify(cm.Identity), procinfo.ErrGone)
		require.ErrorIs(t, fs.Verify(worker), procinfo.ErrGone)
		ms, err = Discover(fs)
		require.NoError(t, err)
		for _, m := range ms {
			require.NotEqual(t, cm.Identity.PID, m.Identity.PID)
		}
	})
}

// TestDiscoverRealUSR2 follows a binary upgrade: the re-exec'd master is
// the old master's UpgradeChild until the old one exits, then it is the
// master.
func TestDiscoverRealUSR2(t *testing.T) {
	t.Parallel()
	requireSetproctitle(t)
	fs := realFS(t)
	g := gunicorntest.Start(t, gunicorntest.Options{Name: "disc-usr2", Workers: 2})
	old := g.MasterPID()
	oldWorkers := g.WorkerPIDs()
	require.NoError(t, g.Signal(syscall.SIGUSR2))
	child := waitUpgradeChild(t, g, old)

	m, ms := findMaster(t, fs, old)
	requireName(t, "disc-usr2", portOf(t, g), m)
	require.Equal(t, child, m.UpgradeChild)
	require.Equal(t, oldWorkers, m.Workers)
	for _, x := range ms {
		require.NotEqual(t, child, x.Identity.PID, "the USR2 child is not a separate app")
	}
	cid, err := fs.Identify(child)
	require.NoError(t, err)
	require.Equal(t, []string{"gunicorn: master [disc-usr2.2]"}, cid.Cmdline)

	// TERM the old master: the child is promoted and retitled.
	require.NoError(t, g.Signal(syscall.SIGTERM))
	require.NoError(t, g.WaitLog("Master has been promoted.", 1, 10*time.Second))
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(g.Pidfile)
		return err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(child)
	}, 10*time.Second, 20*time.Millisecond)
	require.ErrorIs(t, fs.Verify(m.Identity), procinfo.ErrGone)
	require.NoError(t, fs.Verify(cid), "the promoted master is still the same process despite its new title")

	m, _ = findMaster(t, fs, child)
	requireName(t, "disc-usr2", portOf(t, g), m)
	require.Zero(t, m.UpgradeChild)
	require.Len(t, m.Workers, 2)
	require.Equal(t, g.ErrorLog, m.ErrorLog)
}

// discoverHelperEnv makes the test binary, re-run as nobody, print what
// Discover returns.
const discoverHelperEnv = "DISCOVERY_HELPER"

type helperResult struct {
	Masters []Master
	Err     string
	Perm    bool
}

func TestMain(m *testing.M) {
	if os.Getenv(discoverHelperEnv) != "" {
		fs, err := procinfo.NewFS("/proc")
		if err != nil {
			os.Exit(2)
		}
		ms, err := Discover(fs)
		r := helperResult{Masters: ms, Perm: errors.Is(err, procinfo.ErrPermission)}
		if err != nil {
			r.Err = err.Error()
		}
		_ = json.NewEncoder(os.Stdout).Encode(r)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDiscoverRealUnprivileged runs Discover as nobody against a root
// Gunicorn: the master is still found from the world-readable files, its
// Notes say what could not be read, and the error wraps ErrPermission.
func TestDiscoverRealUnprivileged(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		testenv.Missing(t, "needs root to run a helper as another user")
	}
	g := gunicorntest.Start(t, gunicorntest.Options{NoSetproctitle: true, Name: "disc-nobody", Timeout: 4})

	exe, err := os.Executable()
	require.NoError(t, err)
	dir, err := os.MkdirTemp("", "discovery-nobody-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "discovery.test")
	b, err := os.ReadFile(exe)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))

	cmd := exec.Command(bin)
	cmd.Env = []string{discoverHelperEnv + "=1"}
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	require.NoError(t, err, "helper: %s", out)
	var r helperResult
	require.NoError(t, json.Unmarshal(out, &r), string(out))
	require.True(t, r.Perm, "error %q wraps ErrPermission", r.Err)

	var m *Master
	for i := range r.Masters {
		if r.Masters[i].Identity.PID == g.MasterPID() {
			m = &r.Masters[i]
		}
	}
	require.NotNil(t, m, "master %d found without privilege", g.MasterPID())
	requireName(t, "disc-nobody", portOf(t, g), *m)
	require.Equal(t, 4*time.Second, m.Timeout)
	require.Equal(t, g.ErrorLog, m.ErrorLog, "from argv, no fd access needed")
	require.Equal(t, g.Pidfile, m.Pidfile)
	require.Equal(t, g.WorkerPIDs(), m.Workers)
	require.Empty(t, m.Identity.Exe)
	require.True(t, hasNote(*m, "CAP_SYS_PTRACE"), m.Notes)
}
