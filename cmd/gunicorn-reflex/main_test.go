package main_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// TestMain removes the binary the tests build with reflextest.Binary once
// they end: it outlives every test, so no test's cleanup can.
func TestMain(m *testing.M) { reflextest.Main(m) }

func TestConfigCheckNamesFieldAndLine(t *testing.T) {
	bin := reflextest.Binary(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("apps:\n  - name: shop\n    error_log: /x.log\n    timeout: soon\n"), 0o600))
	out, err := exec.Command(bin, "--config.file="+bad, "--config.check").CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 1, exit.ExitCode())
	require.Contains(t, string(out), bad+":4:")
	require.Contains(t, string(out), `"soon" is not a valid duration`)

	good := filepath.Join(dir, "good.yml")
	require.NoError(t, os.WriteFile(good, []byte("apps:\n  - name: shop\n    error_log: /x.log\n"), 0o600))
	out, err = exec.Command(bin, "--config.file="+good, "--config.check").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "configuration OK")

	out, err = exec.Command(bin, "--config.check").CombinedOutput()
	require.NoError(t, err, "embedded defaults must validate: %s", out)

	out, err = exec.Command(bin, "--version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "gunicorn-reflex, version")
}

// A bad file on reload keeps the running config and says so in a metric;
// a good one takes effect; SIGHUP does the same as POST /-/reload.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "reflex.yml")
	write := func(s string) { require.NoError(t, os.WriteFile(cfg, []byte(s), 0o600)) }
	write("apps:\n  - name: one\n    error_log: " + filepath.Join(dir, "one.log") + "\n")
	exp := reflextest.Start(t, "--config.file="+cfg)
	exp.WaitValue(t, 5*time.Second, 1, "reflex_config_last_reload_successful")
	exp.WaitValue(t, 5*time.Second, 0, "gunicorn_worker_timeouts_total", "app", "one")

	status, _, err := exp.Get("/-/reload")
	require.NoError(t, err)
	require.Equal(t, http.StatusMethodNotAllowed, status, "GET must not reload")

	write("apps:\n  - name: one\n    eror_log: typo\n")
	resp, err := http.Post(exp.URL+"/-/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	m := exp.WaitValue(t, 5*time.Second, 0, "reflex_config_last_reload_successful")
	_, stillThere := m.Value("gunicorn_worker_timeouts_total", "app", "one")
	require.True(t, stillThere, "a failed reload must keep the running config")

	write("apps:\n  - name: two\n    error_log: " + filepath.Join(dir, "two.log") + "\n")
	require.NoError(t, exp.Signal(syscall.SIGHUP))
	exp.WaitValue(t, 5*time.Second, 1, "reflex_config_last_reload_successful")
	m = exp.WaitValue(t, 5*time.Second, 0, "gunicorn_worker_timeouts_total", "app", "two")
	_, oneLeft := m.Value("gunicorn_worker_timeouts_total", "app", "one")
	require.False(t, oneLeft, "an app removed from the config is no longer exported")
}

// An unreadable or missing log is a metric and a log line, and the process
// keeps serving. Tests run as root in CI, where mode bits do not stop
// reads, so "unreadable" is a directory where the file should be.
func TestUnreadableLogKeepsServing(t *testing.T) {
	dir := t.TempDir()
	unreadable := filepath.Join(dir, "is-a-directory.log")
	require.NoError(t, os.Mkdir(unreadable, 0o755))
	cfg := filepath.Join(dir, "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("apps:\n  - name: broken\n    error_log: "+unreadable+
		"\n  - name: missing\n    error_log: "+filepath.Join(dir, "not-yet.log")+"\n"), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := exp.Scrape(t)
		errs, _ := m.Value("reflex_log_read_errors_total", "app", "broken", "log", "error")
		up, _ := m.Value("reflex_log_file_up", "app", "broken", "log", "error")
		missingUp, ok := m.Value("reflex_log_file_up", "app", "missing", "log", "error")
		if errs > 0 && up == 0 && ok && missingUp == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want read errors for the unreadable log and file_up 0 for both\n%s\n%s", m.Series("reflex_log_"), exp.Stderr.Tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Contains(t, exp.Stderr.String(), unreadable, "the unreadable log must be named in the exporter's log")
	status, _, err := exp.Get("/-/healthy")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
}

// Started with no config on a host running two Gunicorn apps, one without
// setproctitle, the exporter finds both and their error logs, and counts a
// timeout in the right one.
func TestDiscoveryWithoutConfig(t *testing.T) {
	titled := gunicorntest.Start(t, gunicorntest.Options{Name: "reflex-disc-titled", Workers: 1})
	plain := gunicorntest.Start(t, gunicorntest.Options{Name: "reflex-disc-plain", Workers: 1, NoSetproctitle: true})
	exp := reflextest.Start(t)
	for _, name := range []string{"reflex-disc-titled", "reflex-disc-plain"} {
		exp.WaitValue(t, 10*time.Second, 1, "reflex_log_file_up", "app", name, "log", "error")
	}
	log := exp.Stderr.String()
	require.Contains(t, log, titled.ErrorLog)
	require.Contains(t, log, plain.ErrorLog)

	res := <-plain.GetAsync("/sleep?s=10")
	require.NotEqual(t, 200, res.Status)
	exp.WaitValue(t, 15*time.Second, 1, "gunicorn_worker_timeouts_total", "app", "reflex-disc-plain")
	m := exp.WaitValue(t, 15*time.Second, 1, "gunicorn_worker_exits_total", "app", "reflex-disc-plain", "cause", "timeout")
	v, _ := m.Value("gunicorn_worker_timeouts_total", "app", "reflex-disc-titled")
	require.Zero(t, v)

	// A master that starts after the exporter is found by a later pass; the
	// test does not wait 30 s for it: the interval is exercised in appset.
	require.True(t, strings.Contains(log, "discovered Gunicorn master"))
}

// A master that starts after the exporter is found by the next pass.
func TestDiscoveryPicksUpLateMaster(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("discovery:\n  interval: 1s\n"), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)
	g := gunicorntest.Start(t, gunicorntest.Options{Name: "reflex-disc-late", Workers: 1})
	exp.WaitValue(t, 10*time.Second, 1, "reflex_log_file_up", "app", "reflex-disc-late", "log", "error")
	require.Contains(t, exp.Stderr.String(), g.ErrorLog)
}

// A configured app that names only its pidfile gets its error log from the
// running master, with discovery otherwise off.
func TestPidfileOnlyAppFindsItsErrorLog(t *testing.T) {
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 1})
	cfg := filepath.Join(t.TempDir(), "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("apps:\n  - name: bypid\n    pidfile: "+g.Pidfile+"\n"), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)
	exp.WaitValue(t, 10*time.Second, 1, "reflex_log_file_up", "app", "bypid", "log", "error")
	require.Contains(t, exp.Stderr.String(), g.ErrorLog)
}
