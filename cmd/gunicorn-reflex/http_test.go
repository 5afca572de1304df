package main_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// oneAppConfig writes a config following one app whose log does not exist,
// so no discovery runs and no event is recorded.
func oneAppConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("apps:\n  - name: one\n    error_log: "+filepath.Join(dir, "one.log")+"\n"), 0o600))
	return cfg
}

// The landing page links the pprof endpoints only when they are served,
// which is only with --web.enable-pprof, on the exporter's own mux.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	cfg := oneAppConfig(t)
	off := reflextest.Start(t, "--config.file="+cfg)
	status, landing, err := off.Get("/")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, landing, "/metrics")
	require.NotContains(t, landing, "debug/pprof", "no link to an endpoint that answers 404")
	status, _, err = off.Get("/debug/pprof/heap")
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, status)
	off.Stop()

	on := reflextest.Start(t, "--config.file="+cfg, "--web.enable-pprof")
	_, landing, err = on.Get("/")
	require.NoError(t, err)
	require.Contains(t, landing, "debug/pprof/heap")
	require.Contains(t, landing, "debug/pprof/profile")
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		status, _, err := on.Get(path)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, path)
	}
}

// No events is an empty list, so `jq '.events[]'` works on it.
func TestEventsNoneIsEmptyList(t *testing.T) {
	exp := reflextest.Start(t, "--config.file="+oneAppConfig(t))
	status, body, err := exp.Get("/api/v1/events?app=no-such-app")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	var got map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(body), &got), body)
	require.JSONEq(t, `[]`, string(got["events"]), body)
}

// --config.check names the YAML field at fault, not a Go type, suggests
// the key a typo was meant to be, and counts apps in good English.
func TestConfigCheckSpeaksYAML(t *testing.T) {
	bin := reflextest.Binary(t)
	dir := t.TempDir()
	for _, tc := range []struct{ yaml, want string }{
		{"apps:\n  - name: shop\n    eror_log: /x.log\n", `:3: apps[0]: unknown key "eror_log" (did you mean "error_log"?)`},
		{"apps: shop\n", ":1: apps: must be a list, not !!str `shop`"},
		{"", ": the file holds no configuration"},
	} {
		bad := filepath.Join(dir, "bad.yml")
		require.NoError(t, os.WriteFile(bad, []byte(tc.yaml), 0o600))
		out, err := exec.Command(bin, "--config.file="+bad, "--config.check").CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s", out)
		require.Equal(t, 1, exit.ExitCode())
		require.Contains(t, string(out), bad+tc.want)
		require.NotContains(t, string(out), "config.", "no Go type names: %s", out)
	}
	good := filepath.Join(dir, "good.yml")
	require.NoError(t, os.WriteFile(good, []byte("apps:\n  - name: shop\n    error_log: /x.log\n"), 0o600))
	out, err := exec.Command(bin, "--config.file="+good, "--config.check").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "configuration OK (1 app, discovery off)")
	require.False(t, strings.Contains(string(out), "1 apps"))
}
