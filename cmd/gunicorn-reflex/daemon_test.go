package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// appendLine appends one line to the file at path.
func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	require.NoError(t, err)
	_, err = f.WriteString(line + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func timeoutLine(pid int) string {
	return fmt.Sprintf("[2026-11-24 17:50:20 +0000] [20865] [CRITICAL] WORKER TIMEOUT (pid:%d)", pid)
}

// A config file truncated by an editor or a deploy tool is refused on
// reload, by POST /-/reload and by SIGHUP alike: the reason is given, the
// metric says the reload failed, and the running configuration goes on
// following its app, counting the lines written meanwhile.
func TestReloadRefusesTruncatedFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "reflex.yml")
	errorLog := filepath.Join(dir, "one.log")
	good := "apps:\n  - name: one\n    error_log: " + errorLog + "\nlogs:\n  poll_interval: 50ms\n"
	require.NoError(t, os.WriteFile(cfg, []byte(good), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)
	// The log does not exist yet, so it is read from its first byte.
	exp.WaitValue(t, 10*time.Second, 0, "gunicorn_worker_timeouts_total", "app", "one")
	appendLine(t, errorLog, timeoutLine(100))
	exp.WaitValue(t, 10*time.Second, 1, "gunicorn_worker_timeouts_total", "app", "one")

	for i, truncated := range []string{"", "# apps:\n#   - name: one\n"} {
		require.NoError(t, os.WriteFile(cfg, []byte(truncated), 0o600))
		resp, err := http.Post(exp.URL+"/-/reload", "", nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.GreaterOrEqual(t, resp.StatusCode, 400, "a truncated file must not reload: %s", body)
		require.Contains(t, string(body), "holds no configuration")
		exp.WaitValue(t, 5*time.Second, 0, "reflex_config_last_reload_successful")

		appendLine(t, errorLog, timeoutLine(200+i))
		exp.WaitValue(t, 10*time.Second, float64(2+i), "gunicorn_worker_timeouts_total", "app", "one")
	}

	// SIGHUP with a truncated file, after a good reload set the metric to 1.
	require.NoError(t, os.WriteFile(cfg, []byte(good), 0o600))
	require.NoError(t, exp.Signal(syscall.SIGHUP))
	exp.WaitValue(t, 5*time.Second, 1, "reflex_config_last_reload_successful")
	require.NoError(t, os.WriteFile(cfg, nil, 0o600))
	require.NoError(t, exp.Signal(syscall.SIGHUP))
	exp.WaitValue(t, 5*time.Second, 0, "reflex_config_last_reload_successful")
	appendLine(t, errorLog, timeoutLine(300))
	exp.WaitValue(t, 10*time.Second, 4, "gunicorn_worker_timeouts_total", "app", "one")
	require.Contains(t, exp.Stderr.String(), "holds no configuration")
}
