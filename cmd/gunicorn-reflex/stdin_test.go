package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// `gunicorn --error-logfile - --access-logfile - 2>&1 | gunicorn-reflex
// --log.stdin-app=piped`: a real Gunicorn's output through a real pipe
// into the real binary gives its lifecycle and request counts, and the
// input still reaches stdout.
func TestStdinAppCountsAPipedGunicorn(t *testing.T) {
	bin := testenv.LookPath(t, "gunicorn")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "reflexapp.py"), gunicorntest.AppSource, 0o644))
	cfg := filepath.Join(dir, "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("discovery:\n  enabled: false\nlogs:\n  poll_interval: 50ms\n"), 0o600))

	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	e := reflextest.StartWithStdin(t, pr, "--config.file="+cfg, "--log.stdin-app=piped")
	require.NoError(t, pr.Close())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	g := exec.Command(bin, "--bind", "127.0.0.1:"+strconv.Itoa(port), "--workers", "2", "--timeout", "1",
		"--error-logfile", "-", "--access-logfile", "-", "--chdir", dir, gunicorntest.AppModule)
	g.Stdout, g.Stderr = pw, pw
	g.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, g.Start())
	require.NoError(t, pw.Close())
	t.Cleanup(func() {
		_ = syscall.Kill(-g.Process.Pid, syscall.SIGTERM)
		_ = g.Wait()
	})

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(base + "/ok")
		if err == nil {
			require.NoError(t, resp.Body.Close())
			break
		}
		require.True(t, time.Now().Before(deadline), "gunicorn not serving: %v\n%s", err, e.Stderr.Tail(20))
		time.Sleep(50 * time.Millisecond)
	}
	for range 3 {
		resp, err := client.Get(base + "/ok")
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	if resp, err := client.Get(base + "/sleep?s=3"); err == nil { // the worker times out
		require.NoError(t, resp.Body.Close())
	}

	e.WaitValue(t, 20*time.Second, 1, "gunicorn_worker_timeouts_total", "app", "piped")
	e.WaitValue(t, 20*time.Second, 4, "gunicorn_http_requests_total", "app", "piped", "method", "GET", "status_class", "2xx")
	m := e.WaitValue(t, 20*time.Second, 3, "gunicorn_worker_boots_total", "app", "piped") // two at start, one replacing the timed-out worker
	src, ok := m.Value("reflex_log_source_info", "app", "piped", "log", "error", "source", "stdin")
	require.True(t, ok)
	require.Equal(t, 1.0, src)
	up, _ := m.Value("reflex_log_file_up", "app", "piped", "log", "error")
	require.Equal(t, 1.0, up, "the pipe is open")
	require.Contains(t, e.Stderr.String(), "Booting worker with pid", "the input is copied to stdout")
}
