package discovery

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// TestRealTitledSettings starts titled masters (setproctitle installed, so
// their argv and environment are overwritten) whose --timeout 3 is given
// in different places, and checks that Discover recovers it and says from
// where.
func TestRealTitledSettings(t *testing.T) {
	t.Parallel()
	requireSetproctitle(t)
	fs := realFS(t)

	t.Run("GUNICORN_CMD_ARGS, kept readable by SPT_NOENV=1", func(t *testing.T) {
		t.Parallel()
		g := gunicorntest.Start(t, gunicorntest.Options{Name: "set-env", NoTimeoutArg: true, Timeout: 3,
			Env: []string{"GUNICORN_CMD_ARGS=--timeout 3", "SPT_NOENV=1"}})
		m, _ := findMaster(t, fs, g.MasterPID())
		require.True(t, m.Setproctitle)
		require.Equal(t, 3*time.Second, m.Timeout)
		require.Equal(t, FromEnv, m.TimeoutSource)
		require.Empty(t, m.TimeoutNote)
	})

	t.Run("GUNICORN_CMD_ARGS without SPT_NOENV is overwritten: assumed", func(t *testing.T) {
		t.Parallel()
		g := gunicorntest.Start(t, gunicorntest.Options{Name: "set-env-gone", NoTimeoutArg: true, Timeout: 3,
			Env: []string{"GUNICORN_CMD_ARGS=--timeout 3"}})
		m, _ := findMaster(t, fs, g.MasterPID())
		require.Equal(t, DefaultTimeout, m.Timeout)
		require.Equal(t, FromAssumed, m.TimeoutSource)
		require.Contains(t, m.TimeoutNote, "SPT_NOENV=1")
	})

	t.Run("config file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "gunicorn.conf.py"), []byte("timeout = 3\n"), 0o644))
		g := gunicorntest.Start(t, gunicorntest.Options{Name: "set-conf", NoTimeoutArg: true, Timeout: 3, Dir: dir})
		m, _ := findMaster(t, fs, g.MasterPID())
		require.Equal(t, 3*time.Second, m.Timeout)
		require.Equal(t, FromConfig, m.TimeoutSource)
		require.Equal(t, filepath.Join(dir, "gunicorn.conf.py"), m.ConfigFile)
	})

	t.Run("debug-level configuration dump", func(t *testing.T) {
		t.Parallel()
		g := gunicorntest.Start(t, gunicorntest.Options{Name: "set-debug", Timeout: 3, LogLevel: "debug"})
		m, _ := findMaster(t, fs, g.MasterPID())
		require.Equal(t, 3*time.Second, m.Timeout)
		require.Equal(t, FromDebugLog, m.TimeoutSource)
		require.Equal(t, g.Pidfile, m.Pidfile, "the dump also gives the pidfile")
	})

	t.Run("systemd unit", func(t *testing.T) {
		t.Parallel()
		g := gunicorntest.Start(t, gunicorntest.Options{Name: "set-unit", Timeout: 3})
		unit := fmt.Sprintf("reflex-test-%d.service", g.MasterPID())
		moveToCgroup(t, g, unit)

		// The unit that would have started this master: its real argv.
		root := t.TempDir()
		etc, lib := filepath.Join(root, "etc/systemd/system"), filepath.Join(root, "lib/systemd/system")
		writeFile(t, filepath.Join(lib, unit), "[Unit]\nDescription=test\n\n[Service]\nType=notify\nWorkingDirectory="+g.Dir+"\nExecStart="+unitCommand(g.Argv)+"\n")
		opts := Options{UnitDirs: []string{etc, lib}}

		ms, err := DiscoverWith(fs, opts)
		require.NoError(t, err)
		m := byPID(t, ms, g.MasterPID())
		require.Equal(t, unit, m.Unit)
		require.Equal(t, 3*time.Second, m.Timeout)
		require.Equal(t, FromUnit, m.TimeoutSource)
		require.Equal(t, g.Pidfile, m.Pidfile)
		require.Equal(t, "sync", m.WorkerClass)

		// Without the unit file the same master's timeout is assumed.
		ms, err = DiscoverWith(fs, Options{UnitDirs: []string{etc}})
		require.NoError(t, err)
		m = byPID(t, ms, g.MasterPID())
		require.Equal(t, FromAssumed, m.TimeoutSource)
		require.True(t, hasNote(m, "whose unit file is not in"), m.Notes)
	})
}

// TestRealControlSocketSettings asks a real titled Gunicorn 25.x master
// (run from the source tree REFLEX_GUNICORN25_SRC names) over its control
// socket.
func TestRealControlSocketSettings(t *testing.T) {
	t.Parallel()
	src := os.Getenv("REFLEX_GUNICORN25_SRC")
	if src == "" {
		t.Skip("REFLEX_GUNICORN25_SRC is not set: no Gunicorn >= 25.1 source tree to run")
	}
	requireSetproctitle(t)
	fs := realFS(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "g.ctl")
	g := gunicorntest.Start(t, gunicorntest.Options{Name: "set-ctl", UsePythonM: true, Timeout: 3, Dir: dir,
		Env: []string{"PYTHONPATH=" + src}, ExtraArgs: []string{"--control-socket", sock}})
	var m Master
	// The master (re)opens its control socket after forking workers.
	require.Eventually(t, func() bool {
		ms, err := Discover(fs)
		if err != nil {
			return false
		}
		m = byPID(t, ms, g.MasterPID())
		return m.TimeoutSource == FromControlSocket
	}, 10*time.Second, 100*time.Millisecond)
	require.True(t, m.Setproctitle)
	require.Equal(t, 3*time.Second, m.Timeout)
	require.Equal(t, sock, m.ControlSocket)
	require.Equal(t, []string{g.Addr}, m.Listen, "the control socket is not a listener")
	require.Equal(t, 2, m.WorkersTarget)
	require.Equal(t, g.Pidfile, m.Pidfile)
}

// unitCommand quotes argv for ExecStart= ("..." with \ and " escaped, % as
// %%).
func unitCommand(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		a = strings.ReplaceAll(strings.ReplaceAll(a, `\`, `\\`), `"`, `\"`)
		q[i] = `"` + strings.ReplaceAll(a, "%", "%%") + `"`
	}
	return strings.Join(q, " ")
}

// moveToCgroup puts g's master in a real cgroup named like a system
// service, system.slice/<unit>, in the hierarchy systemd uses (name=systemd
// on a hybrid host, else cgroup v2), and removes it after g stops. It needs
// root and a writable cgroup filesystem.
func moveToCgroup(t *testing.T, g *gunicorntest.Gunicorn, unit string) {
	t.Helper()
	if os.Getuid() != 0 {
		testenv.Missing(t, "needs root to create a cgroup")
	}
	var base string
	for _, c := range []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(c, "cgroup.procs")); err == nil {
			base = c
			break
		}
	}
	if base == "" {
		testenv.Missing(t, "no cgroup filesystem at /sys/fs/cgroup")
	}
	dir := filepath.Join(base, "system.slice", unit)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		testenv.Missing(t, "cannot create a cgroup: "+err.Error())
	}
	t.Cleanup(func() {
		g.Stop()
		// The cgroup is empty once the master has exited.
		for i := 0; i < 100; i++ {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("cgroup %s not removed", dir)
	})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(g.MasterPID())), 0o644))
	b, err := os.ReadFile("/proc/" + strconv.Itoa(g.MasterPID()) + "/cgroup")
	require.NoError(t, err)
	require.Equal(t, unit, cgroupUnit(b), "the master's cgroup names the unit: %s", b)
}
