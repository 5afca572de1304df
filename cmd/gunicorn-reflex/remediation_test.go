package main_test

// End-to-end tests of the remediation receiver with a real Alertmanager
// (Debian's prometheus-alertmanager 0.25, run on loopback by
// internal/promtest), the real gunicorn-reflex binary and a real Gunicorn:
// Alertmanager posts to the receiver through a small loopback proxy that
// can fail or delay the first deliveries and counts what arrives. Each test
// reads the effect in /proc (the master's workers) and in the audit log.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/promtest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

const amToken = "am-test-token-6d1f0c9b"

// proxy sits between Alertmanager and the receiver: it answers 500 to the
// first failFirst requests, delays each forwarded one by delay, and
// forwards to whatever target is set (the receiver may restart on another
// port).
type proxy struct {
	srv       *httptest.Server
	target    atomic.Pointer[url.URL]
	failFirst int64
	delay     time.Duration
	requests  atomic.Int64 // every request received
	forwarded atomic.Int64 // requests passed on that the receiver answered 2xx
}

func newProxy(t *testing.T, target string, failFirst int64, delay time.Duration) *proxy {
	t.Helper()
	p := &proxy{failFirst: failFirst, delay: delay}
	p.setTarget(t, target)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.requests.Add(1)
		if n <= p.failFirst {
			_, _ = io.Copy(io.Discard, r.Body)
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		if p.delay > 0 {
			time.Sleep(p.delay)
		}
		rp := httputil.NewSingleHostReverseProxy(p.target.Load())
		rp.ModifyResponse = func(resp *http.Response) error {
			if resp.StatusCode/100 == 2 {
				p.forwarded.Add(1)
			}
			return nil
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *proxy) setTarget(t *testing.T, target string) {
	u, err := url.Parse(target)
	require.NoError(t, err)
	p.target.Store(u)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// remediationRig is a real Gunicorn followed by gunicorn-reflex with the
// receiver enabled.
type remediationRig struct {
	dir, cfg, audit, tokenFile string
	g                          *gunicorntest.Gunicorn
	exp                        *reflextest.Exporter
}

type rigKnobs struct {
	cooldown, keyTTL string
	maxWorkers       int
}

func newRemediationRig(t *testing.T, k rigKnobs) *remediationRig {
	t.Helper()
	testenv.LookPath(t, "prometheus-alertmanager")
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 2, Name: "shop"})
	r := &remediationRig{dir: t.TempDir(), g: g}
	r.tokenFile = filepath.Join(r.dir, "token")
	require.NoError(t, os.WriteFile(r.tokenFile, []byte(amToken+"\n"), 0o600))
	r.audit = filepath.Join(r.dir, "audit.jsonl")
	r.cfg = filepath.Join(r.dir, "reflex.yml")
	// grace equals the cooldown: the same still-firing alert (its startsAt
	// predates every action) may act again once both have passed. The CPU
	// guard is off: this 2-core test machine is shared, and a refusal for
	// a busy CPU is the guard's own test.
	cfg := fmt.Sprintf(`apps:
  - name: shop
    error_log: %s
    pidfile: %s
logs:
  poll_interval: 50ms
receiver:
  enabled: true
  bearer_token_file: %s
  state_file: %s
  audit_log: %s
  identity: [web-1]
  idempotency_ttl: %s
  rate_limit: 1000
  verify_timeout: 30s
  reconcile_interval: 1s
  guard:
    cpu_busy_above: 1.01
  apps:
    - name: shop
      min_workers: 2
      max_workers: %d
      cooldown: %s
      grace: %s
`, g.ErrorLog, g.Pidfile, r.tokenFile, filepath.Join(r.dir, "state.json"), r.audit, k.keyTTL, k.maxWorkers, k.cooldown, k.cooldown)
	require.NoError(t, os.WriteFile(r.cfg, []byte(cfg), 0o600))
	r.start(t)
	return r
}

// start (re)starts gunicorn-reflex and waits until it samples the app.
func (r *remediationRig) start(t *testing.T) {
	t.Helper()
	r.exp = reflextest.Start(t, "--config.file="+r.cfg)
	exp := r.exp
	t.Cleanup(func() {
		if t.Failed() {
			audit, _ := os.ReadFile(r.audit)
			t.Logf("gunicorn master %d, workers %v", r.g.MasterPID(), r.g.WorkerPIDs())
			t.Logf("gunicorn-reflex log (tail):\n%s\naudit log:\n%s", exp.Stderr.Tail(60), audit)
		}
	})
	r.exp.WaitValue(t, 20*time.Second, 1, "reflex_proc_up", "app", "shop")
}

// webhook is the receiver's webhook behind p, with the rig's token, for
// an Alertmanager that posts every alert to it.
func (r *remediationRig) webhook(p *proxy) []promtest.Webhook {
	return []promtest.Webhook{{URL: p.srv.URL + config.ReceiverPath, TokenFile: r.tokenFile}}
}

func scaleUpLabels() map[string]string {
	return map[string]string{"alertname": "GunicornWorkerTimeouts", "app": "shop", "instance": "web-1:9615",
		"reflex_action": "scale_up", "severity": "warning"}
}

type auditLine struct {
	At      time.Time `json:"at"`
	Action  string    `json:"action"`
	Outcome string    `json:"outcome"`
	Workers int       `json:"workers"`
	Target  int       `json:"target"`
}

func readAudit(t *testing.T, path string) []auditLine {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []auditLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l auditLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "audit line %q", sc.Text())
		out = append(out, l)
	}
	return out
}

func count(lines []auditLine, outcome string) int {
	n := 0
	for _, l := range lines {
		if l.Outcome == outcome {
			n++
		}
	}
	return n
}

func outcomes(lines []auditLine) string {
	var s []string
	for _, l := range lines {
		s = append(s, l.Action+":"+l.Outcome)
	}
	return strings.Join(s, " ")
}

// Done when: a firing scale_up alert that Alertmanager keeps re-sending
// raises the worker count by exactly one per cooldown up to max_workers,
// each step verified in /proc and in the audit log (C3: re-sends inside
// the cooldown add nothing).
func TestAlertmanagerScalesOneStepPerCooldown(t *testing.T) {
	const cooldown = 4 * time.Second
	r := newRemediationRig(t, rigKnobs{cooldown: "4s", keyTTL: "1s", maxWorkers: 4})
	p := newProxy(t, r.exp.URL, 0, 0)
	am := promtest.StartAlertmanager(t, promtest.AMOptions{Webhooks: r.webhook(p), GroupInterval: "1s", RepeatInterval: "1s"})
	am.Fire(t, scaleUpLabels(), time.Now().Add(-time.Minute))

	waitFor(t, 90*time.Second, "two verified steps and then max_workers", func() bool {
		a := readAudit(t, r.audit)
		return count(a, "verified") >= 2 && count(a, "out_of_bounds") >= 2
	})
	a := readAudit(t, r.audit)
	require.Equal(t, 2, count(a, "acted"), "2 -> 3 -> 4 and no further: %s", outcomes(a))
	require.Equal(t, 2, count(a, "verified"), outcomes(a))
	require.Zero(t, count(a, "verification_failed")+count(a, "failed"), outcomes(a))
	var acted []auditLine
	for _, l := range a {
		if l.Outcome == "acted" {
			acted = append(acted, l)
		}
	}
	require.Equal(t, []int{3, 4}, []int{acted[0].Target, acted[1].Target})
	require.GreaterOrEqual(t, acted[1].At.Sub(acted[0].At), cooldown, "one step per cooldown")
	require.Positive(t, count(a, "cooling_down")+count(a, "grace"), "re-sends inside the cooldown were decided and refused: %s", outcomes(a))
	require.Len(t, r.g.WorkerPIDs(), 4, "the master's workers in /proc")
	require.Greater(t, p.forwarded.Load(), int64(3), "Alertmanager re-sent the notification")
	m := r.exp.Scrape(t)
	v, _ := m.Value("reflex_remediation_desired_workers", "app", "shop")
	require.Equal(t, 4.0, v)
	v, _ = m.Value("reflex_remediation_decisions_total", "app", "shop", "action", "scale_up", "outcome", "verified")
	require.Equal(t, 2.0, v)
}

// C14: the receiver answers 500 to the first three attempts; Alertmanager
// retries, and the alert acts once.
func TestAlertmanagerRetriesActOnce(t *testing.T) {
	r := newRemediationRig(t, rigKnobs{cooldown: "1h", keyTTL: "15m", maxWorkers: 4})
	p := newProxy(t, r.exp.URL, 3, 0)
	am := promtest.StartAlertmanager(t, promtest.AMOptions{Webhooks: r.webhook(p), GroupInterval: "1s", RepeatInterval: "2s"})
	am.Fire(t, scaleUpLabels(), time.Now().Add(-time.Minute))

	waitFor(t, 60*time.Second, "the action verified", func() bool { return count(readAudit(t, r.audit), "verified") == 1 })
	waitFor(t, 30*time.Second, "two more deliveries after the first success", func() bool { return p.forwarded.Load() >= 3 })
	require.GreaterOrEqual(t, p.requests.Load(), int64(6), "3 failed attempts were retried")
	a := readAudit(t, r.audit)
	require.Equal(t, 1, count(a, "acted"), outcomes(a))
	require.Len(t, r.g.WorkerPIDs(), 3)
	m := r.exp.Scrape(t)
	dup, _ := m.Value("reflex_receiver_alerts_total", "status", "firing", "result", "deduplicated")
	require.GreaterOrEqual(t, dup, 2.0)
}

// C2/C14: two clustered Alertmanagers both notify (the first's delivery is
// slower than the peer timeout, so the second does not see it in the
// notification log); the receiver acts once.
func TestAlertmanagerPeersActOnce(t *testing.T) {
	r := newRemediationRig(t, rigKnobs{cooldown: "1h", keyTTL: "15m", maxWorkers: 4})
	p1 := newProxy(t, r.exp.URL, 0, 3*time.Second)
	p2 := newProxy(t, r.exp.URL, 0, 3*time.Second)
	c1, c2 := promtest.FreeAddr(t, "127.0.0.1"), promtest.FreeAddr(t, "127.0.0.1")
	am1 := promtest.StartAlertmanager(t, promtest.AMOptions{Webhooks: r.webhook(p1), GroupInterval: "1m", RepeatInterval: "1h",
		Cluster: true, ClusterAddr: c1, Peers: []string{c2}})
	am2 := promtest.StartAlertmanager(t, promtest.AMOptions{Webhooks: r.webhook(p2), GroupInterval: "1m", RepeatInterval: "1h",
		Cluster: true, ClusterAddr: c2, Peers: []string{c1}})
	startsAt := time.Now().Add(-time.Minute)
	am1.Fire(t, scaleUpLabels(), startsAt)
	am2.Fire(t, scaleUpLabels(), startsAt)

	waitFor(t, 60*time.Second, "both peers delivered", func() bool { return p1.forwarded.Load() >= 1 && p2.forwarded.Load() >= 1 })
	waitFor(t, 60*time.Second, "the action verified", func() bool { return count(readAudit(t, r.audit), "verified") == 1 })
	a := readAudit(t, r.audit)
	require.Equal(t, 1, count(a, "acted"), outcomes(a))
	require.Len(t, r.g.WorkerPIDs(), 3)
	dup, _ := r.exp.Scrape(t).Value("reflex_receiver_alerts_total", "status", "firing", "result", "deduplicated")
	require.GreaterOrEqual(t, dup, 1.0, "the second peer's copy was deduplicated")
}

// C10: the receiver restarts between deliveries of the same alert; the
// re-sends after the restart are deduplicated against the saved state.
func TestAlertmanagerReceiverRestartActsOnce(t *testing.T) {
	r := newRemediationRig(t, rigKnobs{cooldown: "1h", keyTTL: "15m", maxWorkers: 4})
	p := newProxy(t, r.exp.URL, 0, 0)
	am := promtest.StartAlertmanager(t, promtest.AMOptions{Webhooks: r.webhook(p), GroupInterval: "1s", RepeatInterval: "1s"})
	am.Fire(t, scaleUpLabels(), time.Now().Add(-time.Minute))
	waitFor(t, 60*time.Second, "the action verified", func() bool { return count(readAudit(t, r.audit), "verified") == 1 })

	r.exp.Stop()
	r.start(t)
	p.setTarget(t, r.exp.URL)
	before := p.forwarded.Load()
	waitFor(t, 30*time.Second, "two re-sends to the restarted receiver", func() bool { return p.forwarded.Load() >= before+2 })
	a := readAudit(t, r.audit)
	require.Equal(t, 1, count(a, "acted"), outcomes(a))
	require.Len(t, r.g.WorkerPIDs(), 3)
	dup, _ := r.exp.Scrape(t).Value("reflex_receiver_alerts_total", "status", "firing", "result", "deduplicated")
	require.GreaterOrEqual(t, dup, 2.0, "the restarted receiver deduplicated the re-sends")

	// The people in the loop: the sub-command reads the same state.
	out, err := exec.Command(reflextest.Binary(t), "remediation", "status", "--remediation.url="+r.exp.URL,
		"--remediation.token-file="+r.tokenFile).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "shop")
	require.Regexp(t, `shop\s+false\s+closed\s+3\s+0`, string(out))
	out, err = exec.Command(reflextest.Binary(t), "remediation", "pause", "shop", "--remediation.url="+r.exp.URL).CombinedOutput()
	require.Error(t, err, "no token: refused")
	require.Contains(t, string(out), "401")
	out, err = exec.Command(reflextest.Binary(t), "remediation", "pause", "shop", "--remediation.url="+r.exp.URL,
		"--remediation.token-file="+r.tokenFile).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Regexp(t, `shop\s+true`, string(out))
}

// The receiver refuses to start enabled without a credential: config check
// names the field; insecure is refused on a non-loopback listener and
// accepted on loopback, where the control API then answers without a
// token.
func TestReceiverStartRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	base := "receiver:\n  enabled: true\n  state_file: " + filepath.Join(dir, "state.json") + "\n  audit_log: " +
		filepath.Join(dir, "audit.jsonl") + "\n  apps:\n    - name: shop\n      allow: [reload]\n"
	noCred := write("nocred.yml", base)
	out, err := exec.Command(reflextest.Binary(t), "--config.file="+noCred, "--config.check").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "receiver.bearer_token_file: required when the receiver is enabled")

	insecure := write("insecure.yml", base+"  insecure: true\n")
	out, err = exec.Command(reflextest.Binary(t), "--config.file="+insecure, "--web.listen-address="+promtest.FreeAddr(t, "127.0.0.1"),
		"--web.listen-address=0.0.0.0:0").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "insecure (no bearer_token_file) is allowed only when every --web.listen-address is a loopback address")
	require.NoFileExists(t, filepath.Join(dir, "state.json"), "nothing started")

	exp := reflextest.Start(t, "--config.file="+insecure)
	code, body, err := exp.Get("/api/v1/remediation/status")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"app": "shop"`)
	resp, err := http.Post(exp.URL+"/api/v1/remediation/pause/nope", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	v, ok := exp.Scrape(t).Value("reflex_remediation_circuit_open", "app", "shop")
	require.True(t, ok)
	require.Zero(t, v)
}

// D5 end to end: after the receiver scaled the app to 3, a HUP from
// someone else resets Gunicorn to its --workers (2); the receiver sees the
// reload in the error log and re-applies 3, verified in /proc, without an
// alert asking again.
func TestHUPReappliesDesiredCount(t *testing.T) {
	r := newRemediationRig(t, rigKnobs{cooldown: "1h", keyTTL: "15m", maxWorkers: 4})
	p := newProxy(t, r.exp.URL, 0, 0)
	am := promtest.StartAlertmanager(t, promtest.AMOptions{Webhooks: r.webhook(p), GroupInterval: "1m", RepeatInterval: "1h"})
	am.Fire(t, scaleUpLabels(), time.Now().Add(-time.Minute))
	waitFor(t, 60*time.Second, "the scale-up verified", func() bool { return count(readAudit(t, r.audit), "verified") == 1 })
	require.Len(t, r.g.WorkerPIDs(), 3)

	require.NoError(t, r.g.Signal(syscall.SIGHUP))
	waitFor(t, 60*time.Second, "the desired count re-applied", func() bool { return count(readAudit(t, r.audit), "verified") == 2 })
	a := readAudit(t, r.audit)
	require.Equal(t, 2, count(a, "acted"), outcomes(a))
	require.NoError(t, r.g.WaitWorkers(3, 30*time.Second))
	raw, err := os.ReadFile(r.audit)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"reconcile":true`)
}
