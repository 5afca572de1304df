package webhook

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/exporter-toolkit/web"
	"github.com/stretchr/testify/require"
)

// basicHash is a bcrypt hash (cost 4, to keep the test fast) of basicPass.
const (
	basicUser = "alertmanager"
	basicPass = "basic-pw-7c1d"
	basicHash = "$2a$04$01xq/XPLyBPhWly2gTB02OwlkqlH4TBhpSNFvWxgFRRogEw3oorqS"
)

// TestBasicAuthThroughExporterToolkit is the documented alternative to the
// bearer token: exporter-toolkit's web config authenticates with
// basic_auth_users before the handler (built with AllowNoToken) runs, so a
// wrong password or none never reaches the body or the Intake (C9).
func TestBasicAuthThroughExporterToolkit(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("basic_auth_users:\n  "+basicUser+": "+basicHash+"\n"), 0o600))
	in := &recIntake{}
	opts := testOptions()
	opts.Token = nil
	opts.AllowNoToken = true
	srv := &http.Server{Handler: newTestHandler(t, opts, in)}
	Harden(srv)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() {
		served <- web.Serve(l, srv, &web.FlagConfig{WebConfigFile: &cfg}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		require.ErrorIs(t, <-served, http.ErrServerClosed)
	})

	do := func(user, pass string) int {
		req, err := http.NewRequest(http.MethodPost, "http://"+l.Addr().String()+"/api/v1/alerts",
			bytes.NewReader(payload(t, firing(scaleUpLabels()))))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, do("", ""))
	require.Equal(t, http.StatusUnauthorized, do(basicUser, "wrong"))
	calls, _, _ := in.snapshot()
	require.Zero(t, calls)
	require.Equal(t, http.StatusOK, do(basicUser, basicPass))
	calls, alerts, _ := in.snapshot()
	require.Equal(t, 1, calls)
	require.Len(t, alerts, 1)
}

// TestNoProgramCanBeStarted: whatever an alert carries, this package cannot
// spawn anything, because os/exec is nowhere in its import graph, its
// dependencies (Alertmanager's template package) included. The module's
// import rules check only the module's own packages.
func TestNoProgramCanBeStarted(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command in PATH: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("go list: %v\n%s", err, ee.Stderr)
	}
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/prometheus/alertmanager/template")
	require.False(t, slices.Contains(deps, "os/exec"), "receiver/webhook reaches os/exec")
}
