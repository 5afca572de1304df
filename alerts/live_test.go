package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgtest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/promtest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// liveApp is the app name of the live test's Gunicorn.
const liveApp = "live"

// TestLivePrometheus runs the shipped rules and the dashboard's queries in a
// real Prometheus (1 s scrape and evaluation) scraping a real exporter in
// front of a real Gunicorn (--timeout 2), PostgreSQL and PgBouncer, with
// the remediation receiver enabled in dry-run (its metrics exist only
// then), drives timeouts, traffic and one webhook alert, and requires that
//
//	(a) every rule expression and dashboard query parses in Prometheus, and
//	    each query of a Gunicorn row returns at least one series;
//	(b) every metric name they read is on the exporter's live /metrics (or
//	    is Prometheus's own `up`, or a recording rule defined in alerts/),
//	    and rate()/increase() read only what /metrics types as a counter or
//	    a histogram;
//	(c) GunicornWorkerTimeouts fires with the labels the receiver keys on.
func TestLivePrometheus(t *testing.T) {
	// Before the other real parts start: a missing Prometheus skips (or
	// fails) the test at once.
	testenv.LookPath(t, "prometheus")
	rules := loadRules(t)
	queries := panelQueries(t)
	varMetrics := variableMetrics(t)

	c := pgtest.Start(t, pgtest.Options{})
	bouncer := pgtest.StartBouncer(t, c, pgtest.BouncerOptions{})
	// A client through the bouncer, so SHOW POOLS has a pool to report.
	pool := c.Connect(t, bouncer.DSN(pgtest.Superuser, "postgres"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pool.Exec(ctx, "SELECT 1")
	require.NoError(t, err)

	const accessFormat = `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s`
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 2, Timeout: 2, Name: liveApp, AccessLogFormat: accessFormat})
	dir := t.TempDir()
	pgDSN := filepath.Join(dir, "pg.dsn")
	require.NoError(t, os.WriteFile(pgDSN, []byte(c.DSN(pgtest.Superuser)), 0o600))
	bnDSN := filepath.Join(dir, "pgbouncer.dsn")
	require.NoError(t, os.WriteFile(bnDSN, []byte(bouncer.AdminDSN(pgtest.Superuser)), 0o600))
	// The receiver, in dry-run (it decides and audits, signals nothing), so
	// its metrics are on /metrics for the rules and panels that read them.
	token := filepath.Join(dir, "receiver.token")
	require.NoError(t, os.WriteFile(token, []byte("live-test-token\n"), 0o600))
	cfg := filepath.Join(dir, "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`apps:
  - name: %s
    error_log: %s
    access_log: %s
    # setproctitle may hide the master's --access-logformat.
    access_log_format: '%s'
    pidfile: %s
    timeout: 2s
postgres:
  - name: main
    dsn_file: %s
pgbouncer:
  - name: pool
    dsn_file: %s
logs:
  poll_interval: 100ms
# Prometheus scrapes with a 1 s timeout: leave the database queries 0.9 s.
scrape_timeout_offset: 100ms
receiver:
  enabled: true
  dry_run: true
  bearer_token_file: %s
  state_file: %s
  audit_log: %s
  # The CPU guard is off: this test's machine may be busy, and a refusal
  # would hide the dry_run decision the annotation shows.
  guard:
    cpu_busy_above: 1.01
  apps:
    - name: %s
      min_workers: 1
      max_workers: 4
`, liveApp, g.ErrorLog, g.AccessLog, accessFormat, g.Pidfile, pgDSN, bnDSN,
		token, filepath.Join(dir, "receiver-state.json"), filepath.Join(dir, "audit.jsonl"), liveApp)), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)
	exp.WaitValue(t, 20*time.Second, 1, "reflex_proc_up", "app", liveApp)
	exp.WaitValue(t, 20*time.Second, 1, "reflex_pg_up", "target", "main")
	exp.WaitValue(t, 20*time.Second, 1, "reflex_pgbouncer_up", "target", "pool")
	target := strings.TrimPrefix(exp.URL, "http://")

	// Every rule file of alerts/, as a glob Prometheus expands.
	rulesGlob, err := filepath.Abs("*.yml")
	require.NoError(t, err)
	prom := promtest.StartPrometheus(t, promtest.PromOptions{Targets: []string{target}, RuleFiles: []string{rulesGlob}})
	// Prometheus has the counters at 0 before anything happens, so the
	// timeouts below are an increase it sees.
	prom.WaitSeries(t, fmt.Sprintf(`gunicorn_worker_timeouts_total{app=%q} == 0`, liveApp), 30*time.Second)

	prom.WaitSeries(t, fmt.Sprintf(`reflex_remediation_decisions_total{app=%q, action="scale_up", outcome="dry_run"} == 0`, liveApp), 30*time.Second)

	start := time.Now()
	// The receiver's webhook on the exporter's listener (the URL of
	// deploy/alertmanager.example.yml): a request without the token is
	// refused, one with it is decided dry_run, for the remediation
	// annotation and the receiver's series.
	postAlert(t, exp.URL+config.ReceiverPath, "", http.StatusUnauthorized)
	postAlert(t, exp.URL+config.ReceiverPath, "live-test-token", http.StatusOK)
	exp.WaitValue(t, 20*time.Second, 1, "reflex_remediation_decisions_total", "app", liveApp, "action", "scale_up", "outcome", "dry_run")
	exp.WaitValue(t, 20*time.Second, 1, "reflex_receiver_requests_total", "code", "401")

	// A HUP reload, for the reload annotation.
	require.NoError(t, g.Signal(syscall.SIGHUP))
	require.NoError(t, g.WaitLog("Hang up: Master", 1, 10*time.Second))
	require.NoError(t, g.WaitWorkers(2, 20*time.Second))
	exp.WaitValue(t, 20*time.Second, 1, "gunicorn_master_reloads_total", "app", liveApp)

	// Traffic (2xx and 5xx), then two requests that outlive --timeout 2.
	for i := 0; i < 20; i++ {
		status, _, err := g.Get("/ok")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
	}
	for i := 0; i < 3; i++ {
		status, _, _ := g.Get("/error")
		require.Equal(t, http.StatusInternalServerError, status)
	}
	slow := []<-chan gunicorntest.Result{g.GetAsync("/sleep?s=6"), g.GetAsync("/sleep?s=6")}
	require.NoError(t, g.WaitLog("WORKER TIMEOUT", 2, 20*time.Second))
	for _, r := range slow {
		<-r // aborted by the master: an error or a short read, whatever the client saw
	}
	require.NoError(t, g.WaitWorkers(2, 20*time.Second))
	// At least 2: on a loaded machine Gunicorn may time out a starved
	// worker of its own accord, which changes nothing below.
	for deadline := time.Now().Add(20 * time.Second); ; {
		v, _ := exp.Scrape(t).Value("gunicorn_worker_timeouts_total", "app", liveApp)
		if v >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gunicorn_worker_timeouts_total = %v after 20s, want >= 2\n%s", v, exp.Stderr.Tail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A busy worker while the queries run, so the busy series are not all 0.
	busy := g.GetAsync("/sleep?s=1")
	defer func() { <-busy }()
	// The replacement workers have been sampled out of "booting" (every 2 s)
	// and the busy ratio recorded from that sample.
	prom.WaitSeries(t, fmt.Sprintf(`app:gunicorn_workers_busy:ratio{app=%q}`, liveApp), 30*time.Second)

	// (c) The timeout alert fires with the labels the receiver keys on.
	alert := prom.WaitAlert(t, 30*time.Second, "GunicornWorkerTimeouts", "firing")
	for k, want := range map[string]string{"app": liveApp, "instance": target, "job": "gunicorn-reflex", "severity": "warning"} {
		require.Equal(t, want, alert.Labels[k], "label %s of %v", k, alert.Labels)
	}
	// The count is increase() over 10 minutes of a few seconds of samples:
	// extrapolated, so about 2, not exactly.
	require.Regexp(t, `^`+regexp.QuoteMeta(liveApp+" on "+target+": about ")+`[0-9]+ WORKER TIMEOUT\(s\)`, alert.Annotations["description"])
	require.Equal(t, runbookBase+"gunicornworkertimeouts", alert.Annotations["runbook_url"])

	// (b) Every metric name is on the live /metrics or a defined recording
	// rule; rate() and increase() read counters and histograms only.
	families := map[string]dto.MetricType{}
	for name, fam := range exp.Scrape(t).Families {
		families[name] = fam.GetType()
	}
	records := map[string]bool{}
	for _, r := range rules {
		if r.Record != "" {
			records[r.Record] = true
		}
	}
	var exprs []dashboardQuery
	for _, r := range rules {
		exprs = append(exprs, dashboardQuery{where: "rule " + r.Alert + r.Record, expr: r.Expr})
	}
	exprs = append(exprs, queries...)
	checked := map[string]bool{}
	check := func(where, name string) {
		if checked[name] {
			return
		}
		checked[name] = true
		switch {
		case strings.Contains(name, ":"):
			require.True(t, records[name], "%s: %s is no recording rule defined in alerts/", where, name)
		case name == "up":
			// Prometheus's own series for the scrape, not the exporter's.
			require.NotEmpty(t, prom.QueryRaw(t, `up{job="gunicorn-reflex"} == 1`), "%s: up", where)
		default:
			_, ok := families[name]
			if base, hist := histogramFamily(name); hist && !ok {
				ok = families[base] == dto.MetricType_HISTOGRAM
			}
			require.True(t, ok, "%s reads %s, which the exporter does not expose; it exposes %s", where, name, strings.Join(sortedKeys(families), " "))
		}
	}
	for _, q := range exprs {
		names, err := metricNames(q.expr)
		require.NoError(t, err, q.where)
		for _, n := range names {
			check(q.where, n)
		}
		for _, m := range counterFuncRe.FindAllStringSubmatch(q.expr, -1) {
			name := m[2]
			typ, ok := families[name]
			if base, hist := histogramFamily(name); hist && !ok {
				typ, ok = families[base], true
			}
			require.True(t, ok, "%s: %s of %s", q.where, m[1], name)
			require.Contains(t, []dto.MetricType{dto.MetricType_COUNTER, dto.MetricType_HISTOGRAM}, typ,
				"%s: %s() of %s, which /metrics types as %v", q.where, m[1], name, typ)
		}
	}
	for v, names := range varMetrics {
		for _, n := range names {
			check("variable "+v, n)
		}
	}

	// (a) Everything parses in Prometheus; the Gunicorn rows' queries
	// return series.
	subst := strings.NewReplacer("$__rate_interval", "10s", "$job", "gunicorn-reflex", "$instance", target,
		"$app", liveApp, "$target", "main|pool")
	for _, r := range rules {
		prom.QueryRaw(t, r.Expr)
	}
	gunicornRows := map[string]bool{"Timeouts and exits": true, "Workers": true, "Requests and latency": true, "Memory and CPU": true, "Logs followed": true}
	for _, q := range queries {
		run := func() []json.RawMessage {
			if strings.HasPrefix(q.where, "annotation ") {
				// An annotation marks events: it has series where
				// they happened, during the test.
				return prom.QueryRange(t, subst.Replace(q.expr), start, time.Now().Add(time.Second), time.Second)
			}
			return prom.QueryRaw(t, subst.Replace(q.expr))
		}
		res := run()
		// On a loaded machine a scrape can miss its 1 s timeout, and its
		// staleness markers empty every instant query for a second: poll.
		for deadline := time.Now().Add(15 * time.Second); len(res) == 0 && time.Now().Before(deadline); {
			time.Sleep(500 * time.Millisecond)
			res = run()
		}
		if q.row == "" || gunicornRows[q.row] {
			require.NotEmpty(t, res, "%s (%s): no series for %s", q.where, q.row, subst.Replace(q.expr))
		} else if len(res) == 0 {
			t.Logf("%s (%s): no series now", q.where, q.row)
		}
	}
}

// postAlert sends the receiver one firing scale_up alert for liveApp, as
// Alertmanager's webhook does (v4 payload), with token as the bearer token
// ("" for none), and requires the status code want.
func postAlert(t *testing.T, url, token string, want int) {
	t.Helper()
	body := fmt.Sprintf(`{"receiver":"gunicorn-reflex","status":"firing","version":"4","groupKey":"{}:{app=\"%[1]s\"}","truncatedAlerts":0,
"alerts":[{"status":"firing","labels":{"alertname":"GunicornWorkersSaturatedScaleUp","app":"%[1]s","reflex_action":"scale_up","severity":"warning"},
"annotations":{},"startsAt":%[2]q,"endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"0123456789abcdef"}],
"groupLabels":{"app":"%[1]s"},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://127.0.0.1:9093"}`,
		liveApp, time.Now().UTC().Format(time.RFC3339))
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, want, resp.StatusCode, "POST %s: %s", url, b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
