package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// flakyIntake answers ErrUnavailable to the first fail calls, then records.
type flakyIntake struct {
	recIntake
	fail  int32
	tries atomic.Int32
}

func (f *flakyIntake) Submit(ctx context.Context, alerts []intent.Alert, ignored []Ignored) (Receipt, error) {
	if f.tries.Add(1) <= f.fail {
		return Receipt{}, fmt.Errorf("test says not now: %w", ErrUnavailable)
	}
	return f.recIntake.Submit(ctx, alerts, ignored)
}

// countHandler counts requests reaching h.
type countHandler struct {
	h http.Handler
	n atomic.Int32
}

func (c *countHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.h.ServeHTTP(w, r)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// waitFor polls cond every 100ms until it holds or a minute has passed. It
// waits for Alertmanager's real timers (group_wait, retry backoff); the
// minute is a liveness bound, not a speed assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRealAlertmanager has Debian's prometheus-alertmanager (0.25) post to
// three handlers on loopback, one per route: the right bearer token from
// authorization.credentials_file is accepted and the alert decoded; a
// wrong token gets 401, which Alertmanager does not retry (one request,
// then the notification fails); an Intake that answers ErrUnavailable
// twice gets 503 twice and the notification is retried until recorded.
func TestRealAlertmanager(t *testing.T) {
	bin := testenv.LookPath(t, "prometheus-alertmanager")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600))
	wrongFile := filepath.Join(dir, "wrong")
	require.NoError(t, os.WriteFile(wrongFile, []byte("not-"+testToken+"\n"), 0o600))
	tok, err := ReadTokenFile(tokenFile)
	require.NoError(t, err)

	opts := testOptions()
	opts.Token = tok
	okIn, denyIn := &recIntake{}, &recIntake{}
	flaky := &flakyIntake{fail: 2}
	serveOn := func(in Intake) (*countHandler, string) {
		c := &countHandler{h: newTestHandler(t, opts, in)}
		srv := httptest.NewUnstartedServer(c)
		Harden(srv.Config)
		srv.Start()
		t.Cleanup(srv.Close)
		return c, srv.URL + "/api/v1/alerts"
	}
	okH, okURL := serveOn(okIn)
	denyH, denyURL := serveOn(denyIn)
	flakyH, flakyURL := serveOn(flaky)

	cfg := fmt.Sprintf(`route:
  receiver: ok
  group_by: [alertname, app, instance]
  group_wait: 1s
  group_interval: 10m
  repeat_interval: 4h
  routes:
    - {receiver: ok, matchers: ['case="ok"']}
    - {receiver: deny, matchers: ['case="deny"']}
    - {receiver: flaky, matchers: ['case="flaky"']}
receivers:
  - name: ok
    webhook_configs: [{url: %q, send_resolved: true, http_config: {authorization: {credentials_file: %q}}}]
  - name: deny
    webhook_configs: [{url: %q, send_resolved: true, http_config: {authorization: {credentials_file: %q}}}]
  - name: flaky
    webhook_configs: [{url: %q, send_resolved: true, http_config: {authorization: {credentials_file: %q}}}]
`, okURL, tokenFile, denyURL, wrongFile, flakyURL, tokenFile)
	cfgFile := filepath.Join(dir, "am.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(cfg), 0o600))
	web := freePort(t)
	var amLog bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = &amLog, &amLog
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", amLog.String())
		}
	})
	base := "http://" + web
	waitFor(t, "alertmanager ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	var alerts []string
	for _, c := range []string{"ok", "deny", "flaky"} {
		alerts = append(alerts, fmt.Sprintf(`{"labels":{"alertname":"GunicornWorkerTimeouts","reflex_action":"scale_up","app":"web","instance":"web1.example:9100","case":%q},"annotations":{"pidfile":"/run/other.pid"},"startsAt":"2026-11-25T10:00:00Z"}`, c))
	}
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", strings.NewReader("["+strings.Join(alerts, ",")+"]"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	waitFor(t, "the right token's delivery", func() bool { c, _, _ := okIn.snapshot(); return c > 0 })
	_, got, ignored := okIn.snapshot()
	require.Empty(t, ignored)
	require.Len(t, got, 1)
	require.Equal(t, intent.ScaleUp, got[0].Action)
	require.Equal(t, "web", got[0].App)
	require.Equal(t, "web1.example:9100", got[0].Instance)
	require.True(t, validFingerprint(got[0].Fingerprint))
	require.Equal(t, int32(1), okH.n.Load())

	waitFor(t, "the retried delivery", func() bool { c, _, _ := flaky.snapshot(); return c > 0 })
	require.Equal(t, int32(3), flakyH.n.Load(), "two 503s, then the retry that was recorded")

	waitFor(t, "alertmanager to give up on the 401", func() bool {
		return notificationsFailed(t, base, "webhook") >= 1
	})
	require.Equal(t, int32(1), denyH.n.Load(), "a 401 is not retried")
	c, _, _ := denyIn.snapshot()
	require.Zero(t, c)
}

// notificationsFailed reads alertmanager_notifications_failed_total for an
// integration from Alertmanager's own /metrics.
func notificationsFailed(t *testing.T, base, integration string) int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	total := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, "alertmanager_notifications_failed_total{") ||
			!strings.Contains(line, `integration="`+integration+`"`) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			total += int(v)
		}
	}
	return total
}
