package gunicorntest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// requireGone asserts that none of pids is still a process of session sid
// (a pid may have been reused by an unrelated process, which is fine).
func requireGone(t *testing.T, sid int, pids []int) {
	t.Helper()
	for _, pid := range pids {
		st, err := readStat(pid)
		if err == nil {
			require.NotEqual(t, sid, st.session, "pid %d of session %d still exists (state %c)", pid, sid, st.state)
		} else {
			require.ErrorIs(t, err, os.ErrNotExist)
		}
	}
	members, err := sessionMembers(sid)
	require.NoError(t, err)
	require.Empty(t, members, "session %d not empty", sid)
}

func TestStartStopLeavesNoProcess(t *testing.T) {
	t.Parallel()
	g := Start(t, Options{})
	master := g.MasterPID()
	require.Equal(t, g.SessionID(), master, "the pidfile names the master the harness started")
	workers := g.WorkerPIDs()
	require.Len(t, workers, 2)
	for _, w := range workers {
		st, err := readStat(w)
		require.NoError(t, err)
		require.Equal(t, master, st.ppid)
		require.Equal(t, master, st.session)
	}

	start := time.Now()
	g.Stop()
	g.Stop() // idempotent
	t.Logf("graceful stop took %v", time.Since(start))

	requireGone(t, master, append([]int{master}, workers...))
	require.NoFileExists(t, g.Pidfile, "gunicorn unlinks its pidfile on a clean exit")
	require.True(t, g.ProcessState().Success(), "master exit: %v", g.ProcessState())
	require.Contains(t, g.ErrorLogText(), "Shutting down: Master")
	require.Empty(t, g.WorkerPIDs())
	require.ErrorIs(t, g.Signal(syscall.SIGHUP), ErrNoMaster)
}

func TestRequests(t *testing.T) {
	t.Parallel()
	g := Start(t, Options{Timeout: 10, Env: []string{PgDSNEnv + "="}})

	peer, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = peer.Close() })
	go func() {
		for {
			c, err := peer.Accept()
			if err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
			_, _ = c.Write([]byte("hi"))
			_ = c.Close()
		}
	}()
	peerPort := peer.Addr().(*net.TCPAddr).Port

	tests := []struct {
		path       string
		status     int
		body       string // exact, or prefix when it ends in "*"
		minElapsed time.Duration
	}{
		{path: "/ok", status: 200, body: "ok"},
		{path: "/error", status: 500},
		{path: "/nope", status: 404, body: "not found"},
		{path: "/sleep?s=0.4", status: 200, body: "slept 0.4", minElapsed: 400 * time.Millisecond},
		{path: "/sleep?s=abc", status: 400, body: "s must be a number"},
		{path: "/spin?s=0.2", status: 200, body: "spun 0.2 *", minElapsed: 200 * time.Millisecond},
		{path: "/alloc?mb=8", status: 200, body: "allocated 8 MiB"},
		{path: "/lock?s=0.2", status: 200, body: "locked 0.2", minElapsed: 200 * time.Millisecond},
		{path: fmt.Sprintf("/recv?port=%d", peerPort), status: 200, body: "received 2 bytes", minElapsed: 100 * time.Millisecond},
		{path: "/db?s=0.1", status: 500}, // no DSN: RuntimeError before psycopg2 is touched
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			start := time.Now()
			status, body, err := g.Get(tc.path)
			elapsed := time.Since(start)
			require.NoError(t, err)
			require.Equal(t, tc.status, status, "body %q", body)
			if prefix, ok := strings.CutSuffix(tc.body, "*"); ok {
				require.True(t, strings.HasPrefix(body, prefix), "body %q", body)
			} else if tc.body != "" {
				require.Equal(t, tc.body, body)
			}
			require.GreaterOrEqual(t, elapsed, tc.minElapsed)
			require.Less(t, elapsed, tc.minElapsed+3*time.Second)
		})
	}

	t.Run("/pid is a worker", func(t *testing.T) {
		status, body, err := g.Get("/pid")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, g.WorkerPIDs(), mustAtoi(t, body))
	})
	t.Run("held requests", func(t *testing.T) {
		// Two workers: two concurrent sleeps finish together, not one after
		// the other.
		start := time.Now()
		a, b := g.GetAsync("/sleep?s=0.5"), g.GetAsync("/sleep?s=0.5")
		for _, r := range []Result{<-a, <-b} {
			require.NoError(t, r.Err)
			require.Equal(t, http.StatusOK, r.Status)
		}
		require.Less(t, time.Since(start), 950*time.Millisecond)
	})
	t.Run("logs", func(t *testing.T) {
		require.NoError(t, g.WaitLog("Error handling request /error", 1, 2*time.Second))
		require.NoError(t, g.WaitLog("RuntimeError: reflexapp: /error requested", 1, 2*time.Second))
		access, err := os.ReadFile(g.AccessLog)
		require.NoError(t, err)
		require.Contains(t, string(access), `"GET /ok HTTP/1.1" 200 2`)
	})
	t.Run("path must be local", func(t *testing.T) {
		for _, p := range []string{"ok", "//example.com/", "@example.com/"} {
			_, _, err := g.Get(p)
			require.Error(t, err, p)
		}
	})
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	_, err := fmt.Sscanf(s, "%d", &n)
	require.NoError(t, err, "%q", s)
	return n
}

func TestWorkerTimeout(t *testing.T) {
	t.Parallel()
	g := Start(t, Options{Timeout: 2})
	before := g.WorkerPIDs()

	res := g.GetAsync("/sleep?s=10")
	require.NoError(t, g.WaitLog("WORKER TIMEOUT", 1, 6*time.Second))
	r := <-res
	require.Error(t, r.Err, "the worker is killed mid-request, so no response (status %d)", r.Status)
	t.Logf("request cut after %v", r.Elapsed)
	// The sync worker notifies right before accepting, so the heartbeat age
	// is the request's age; the master kills at age > 2 s on its next
	// once-a-second check (ctime is jiffy-coarse, hence the slack).
	require.Greater(t, r.Elapsed, 1900*time.Millisecond)
	require.Less(t, r.Elapsed, 5*time.Second)

	// The client sees the connection close before the master has reaped
	// the worker: wait for that pid to leave the worker list, then for its
	// replacement.
	m := regexp.MustCompile(`WORKER TIMEOUT \(pid:(\d+)\)`).FindStringSubmatch(g.ErrorLogText())
	require.NotNil(t, m)
	killed, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	require.Contains(t, before, killed, "the timed-out worker was one of the workers")
	require.Eventually(t, func() bool { return !slices.Contains(g.WorkerPIDs(), killed) }, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, g.WaitWorkers(2, 5*time.Second))
	require.NotContains(t, g.WorkerPIDs(), killed, "the timed-out worker was replaced")
}

func TestTTINAndTTOU(t *testing.T) {
	t.Parallel()
	g := Start(t, Options{})
	require.NoError(t, g.Signal(syscall.SIGTTIN))
	require.NoError(t, g.WaitWorkers(3, 5*time.Second))
	require.NoError(t, g.WaitLog("Handling signal: ttin", 1, time.Second))
	require.NoError(t, g.Signal(syscall.SIGTTOU))
	require.NoError(t, g.WaitWorkers(2, 5*time.Second))
}

func TestSignalWorker(t *testing.T) {
	t.Parallel()
	g := Start(t, Options{})
	master := g.MasterPID()
	for _, pid := range []int{0, -1, os.Getpid(), master, 1} {
		err := g.SignalWorker(pid, syscall.SIGKILL)
		require.ErrorIs(t, err, ErrNotWorker, "pid %d", pid)
	}
	require.True(t, alive(master))

	victim := g.WorkerPIDs()[0]
	require.NoError(t, g.SignalWorker(victim, syscall.SIGKILL))
	// 20.1 logs a WARNING; 21+ an ERROR with different wording.
	require.Eventually(t, func() bool {
		return g.LogCount(fmt.Sprintf("Worker with pid %d was terminated due to signal 9", victim)) > 0 ||
			g.LogCount(fmt.Sprintf("Worker (pid:%d) was sent SIGKILL!", victim)) > 0
	}, 5*time.Second, pollInterval)
	require.NoError(t, g.WaitWorkers(2, 5*time.Second))
	require.NotContains(t, g.WorkerPIDs(), victim)
}

// hasSetproctitle reports whether the Python that runs gunicorn can import
// setproctitle.
func hasSetproctitle(t *testing.T) bool {
	t.Helper()
	py, err := interpreter(t, testenv.LookPath(t, "gunicorn"))
	require.NoError(t, err)
	return exec.Command(py, "-c", "import setproctitle").Run() == nil
}

func TestProcessTitles(t *testing.T) {
	t.Parallel()
	t.Run("setproctitle", func(t *testing.T) {
		t.Parallel()
		if !hasSetproctitle(t) {
			testenv.Missing(t, "python3-setproctitle is not installed")
		}
		g := Start(t, Options{Name: "reflextest"})
		args, err := Cmdline(g.MasterPID())
		require.NoError(t, err)
		require.Equal(t, []string{"gunicorn: master [reflextest]"}, args)
		for _, w := range g.WorkerPIDs() {
			args, err := Cmdline(w)
			require.NoError(t, err)
			require.Equal(t, []string{"gunicorn: worker [reflextest]"}, args)
		}
	})
	t.Run("NoSetproctitle", func(t *testing.T) {
		t.Parallel()
		g := Start(t, Options{NoSetproctitle: true})
		py, err := interpreter(t, g.Argv[0])
		require.NoError(t, err)
		// The kernel runs the #! script as "<interpreter> <script> args...".
		want := append([]string{py}, g.Argv...)
		for _, pid := range append([]int{g.MasterPID()}, g.WorkerPIDs()...) {
			args, err := Cmdline(pid)
			require.NoError(t, err)
			require.Equal(t, want, args, "pid %d", pid)
		}
	})
}

func TestErrorLogToStderr(t *testing.T) {
	t.Parallel()
	g := Start(t, Options{ErrorLogToStderr: true, NoAccessLog: true})
	require.Equal(t, g.Stderr, g.ErrorLog)
	require.NoFileExists(t, filepath.Join(g.Dir, "error.log"))
	require.NoFileExists(t, filepath.Join(g.Dir, "access.log"))
	require.Empty(t, g.AccessLog)
	require.Contains(t, g.Argv, "-")
	require.NoError(t, g.WaitLog("Listening at: "+g.BaseURL, 1, time.Second))
	require.NoError(t, g.WaitLog("Booting worker with pid", 2, time.Second))
}

func TestUsePythonM(t *testing.T) {
	t.Parallel()
	g := Start(t, Options{UsePythonM: true, NoSetproctitle: true})
	require.Equal(t, []string{"-m", "gunicorn"}, g.Argv[1:3])
	args, err := Cmdline(g.MasterPID())
	require.NoError(t, err)
	require.Equal(t, g.Argv, args)
	status, body, err := g.Get("/ok")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "ok", body)
}

func TestUSR2StopCleansBothMasters(t *testing.T) {
	t.Parallel()
	g := Start(t, Options{})
	old := g.MasterPID()
	oldWorkers := g.WorkerPIDs()
	require.NoError(t, g.Signal(syscall.SIGUSR2))

	var newMaster int
	require.Eventually(t, func() bool {
		pid, err := readPidfile(g.Pidfile + ".2")
		if err != nil {
			return false
		}
		newMaster = pid
		kids, err := children(pid)
		return err == nil && len(kids) == 2
	}, 10*time.Second, pollInterval, "new master with 2 workers")
	require.Equal(t, old, g.MasterPID(), "the old master keeps the pidfile until it exits")
	require.Equal(t, oldWorkers, g.WorkerPIDs(), "the re-exec master is not a worker")
	newWorkers, err := children(newMaster)
	require.NoError(t, err)

	g.Stop()
	requireGone(t, old, slices.Concat([]int{old, newMaster}, oldWorkers, newWorkers))
}

func TestForcedStop(t *testing.T) {
	t.Parallel()
	g := Start(t, Options{StopTimeout: 500 * time.Millisecond})
	master := g.MasterPID()
	workers := g.WorkerPIDs()
	// A stopped master cannot handle SIGTERM, so Stop must fall back to
	// SIGKILL and reap the orphaned workers itself.
	require.NoError(t, g.Signal(syscall.SIGSTOP))
	start := time.Now()
	g.Stop()
	t.Logf("forced stop took %v", time.Since(start))
	requireGone(t, master, append([]int{master}, workers...))
	ws, ok := g.ProcessState().Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.Equal(t, syscall.SIGKILL, ws.Signal())
}

// TestPortInUseRetry is not parallel: it replaces pickPort, and parallel
// tests only resume once every sequential test has finished.
func TestPortInUseRetry(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	calls := 0
	orig := pickPort
	pickPort = func() (int, error) {
		calls++
		if calls == 1 {
			return busyPort, nil
		}
		return orig()
	}
	t.Cleanup(func() { pickPort = orig })

	start := time.Now()
	g := Start(t, Options{})
	t.Logf("start with one retry took %v", time.Since(start))
	require.Equal(t, 2, calls)
	require.NotEqual(t, fmt.Sprintf("127.0.0.1:%d", busyPort), g.Addr)
	status, _, err := g.Get("/ok")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
}

func TestBuildEnv(t *testing.T) {
	tests := []struct {
		name       string
		base       []string
		extra      []string
		pythonPath string
		want       []string
	}{
		{
			name:  "extra overrides and keeps order",
			base:  []string{"A=1", "B=2"},
			extra: []string{"B=3", "C=4"},
			want:  []string{"A=1", "B=3", "C=4"},
		},
		{
			name: "gunicorn variables dropped",
			base: []string{"GUNICORN_CMD_ARGS=--workers 9", "LISTEN_FDS=3", "GUNICORN_PID=1", "X=1", "broken"},
			want: []string{"X=1"},
		},
		{
			name:       "PYTHONPATH prepended",
			base:       []string{"PYTHONPATH=/a"},
			pythonPath: "/shim",
			want:       []string{"PYTHONPATH=/shim:/a"},
		},
		{
			name:       "PYTHONPATH added",
			base:       []string{"X=1"},
			pythonPath: "/shim",
			want:       []string{"X=1", "PYTHONPATH=/shim"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, buildEnv(tc.base, tc.extra, tc.pythonPath))
		})
	}
}

func TestHeartbeatRE(t *testing.T) {
	tests := []struct {
		link string
		want bool
	}{
		{"/tmp/wgunicorn-a1b2_c3d (deleted)", true},
		{"/dev/shm/wgunicorn-abcdefgh (deleted)", true},
		{"/tmp/wgunicorn-abcdefgh", false},
		{"/tmp/wgunicorn-abc (deleted)", false},
		{"socket:[12345]", false},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, heartbeatRE.MatchString(tc.link), tc.link)
	}
}

func TestReadStat(t *testing.T) {
	st, err := readStat(os.Getpid())
	require.NoError(t, err)
	require.Equal(t, os.Getppid(), st.ppid)
	require.Equal(t, syscall.Getpgrp(), st.pgrp)
	_, err = readStat(-5)
	require.True(t, errors.Is(err, os.ErrNotExist))
}

// TestDB runs /db against the PostgreSQL in REFLEX_TEST_PG_DSN when the
// test environment provides one; otherwise it points /db at a closed port to
// show the app imports psycopg2 lazily and reports the failure as a 500.
func TestDB(t *testing.T) {
	t.Parallel()
	if dsn := os.Getenv(PgDSNEnv); dsn != "" {
		g := Start(t, Options{Env: []string{PgDSNEnv + "=" + dsn}})
		start := time.Now()
		status, body, err := g.Get("/db?s=0.3")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, "body %q\n%s", body, g.ErrorLogText())
		require.Equal(t, "db slept 0.3", body)
		require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
		return
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := closed.Addr().(*net.TCPAddr).Port
	require.NoError(t, closed.Close())
	g := Start(t, Options{Env: []string{fmt.Sprintf("%s=host=127.0.0.1 port=%d connect_timeout=2", PgDSNEnv, port)}})
	status, _, err := g.Get("/db?s=0.1")
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, status)
	require.NoError(t, g.WaitLog("Error handling request /db", 1, 2*time.Second))
	if g.LogCount("ModuleNotFoundError: No module named 'psycopg2'") == 0 {
		require.Positive(t, g.LogCount("psycopg2.OperationalError"), g.ErrorLogText())
	}
}
