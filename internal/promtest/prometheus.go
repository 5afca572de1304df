package promtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// Job is the scrape job of every target, the job the shipped dashboard and
// the deploy examples use.
const Job = "gunicorn-reflex"

// PromOptions configures a Prometheus. The zero value is a Prometheus that
// scrapes nothing and evaluates no rules.
type PromOptions struct {
	// Addr is the loopback address to listen on; default 127.0.0.1.
	Addr string
	// Targets (host:port) are scraped as job Job.
	Targets []string
	// Alertmanagers (host:port) get every alert.
	Alertmanagers []string
	// RuleFiles are loaded as they are: paths, or globs Prometheus expands.
	RuleFiles []string
	// Interval is the scrape and evaluation interval (and the scrape
	// timeout); default 1s.
	Interval string
}

// Prometheus is one running Prometheus.
type Prometheus struct {
	server
}

// StartPrometheus runs Prometheus on a free port with a temporary TSDB and
// waits until it is ready; a cleanup stops it by pid. It skips (or fails
// under REFLEX_REQUIRE_REAL=1) when prometheus is missing.
func StartPrometheus(t testing.TB, o PromOptions) *Prometheus {
	t.Helper()
	bin := testenv.LookPath(t, "prometheus")
	if o.Addr == "" {
		o.Addr = "127.0.0.1"
	}
	if o.Interval == "" {
		o.Interval = "1s"
	}
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %[1]s\n  scrape_timeout: %[1]s\n  evaluation_interval: %[1]s\nrule_files: [%s]\n",
		o.Interval, quoteList(o.RuleFiles))
	if len(o.Alertmanagers) > 0 {
		fmt.Fprintf(&b, "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [%s]\n", quoteList(o.Alertmanagers))
	}
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: %s\n    static_configs:\n      - targets: [%s]\n", Job, quoteList(o.Targets))
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("promtest: %v", err)
	}
	addr := FreeAddr(t, o.Addr)
	p := &Prometheus{server: server{name: "prometheus", URL: "http://" + addr}}
	p.start(t, bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	return p
}

// get fetches a Prometheus API path and decodes the data of a successful
// answer into out.
func (p *Prometheus) get(path string, out any) error {
	resp, err := client.Get(p.URL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("GET %s: %w: %s", path, err, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("GET %s: %s", path, env.Error)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("GET %s: %w: %s", path, err, body)
	}
	return nil
}

// Sample is one series of an instant vector.
type Sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// QueryRaw runs an instant query of any result type and returns its
// series undecoded: those of a vector or a matrix, or a scalar's or a
// string's [time, value] as the only one. The test fails when Prometheus
// rejects the query.
func (p *Prometheus) QueryRaw(t testing.TB, expr string) []json.RawMessage {
	t.Helper()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		t.Fatalf("promtest: query %s: %v", expr, err)
	}
	if data.ResultType != "vector" && data.ResultType != "matrix" {
		return []json.RawMessage{data.Result}
	}
	var series []json.RawMessage
	if err := json.Unmarshal(data.Result, &series); err != nil {
		t.Fatalf("promtest: query %s: %v: %s", expr, err, data.Result)
	}
	return series
}

// Query runs an instant query and returns its vector; the test fails when
// Prometheus rejects it or its result is a scalar or a string.
func (p *Prometheus) Query(t testing.TB, expr string) []Sample {
	t.Helper()
	raw := p.QueryRaw(t, expr)
	out := make([]Sample, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			t.Fatalf("promtest: query %s: %v: %s", expr, err, r)
		}
	}
	return out
}

// QueryRange runs a range query from from to to (both truncated to the
// second) at step and returns the series of its matrix undecoded; the test
// fails when Prometheus rejects it.
func (p *Prometheus) QueryRange(t testing.TB, expr string, from, to time.Time, step time.Duration) []json.RawMessage {
	t.Helper()
	var data struct {
		Result []json.RawMessage `json:"result"`
	}
	v := url.Values{"query": {expr}, "start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix(), 10)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	if err := p.get("/api/v1/query_range?"+v.Encode(), &data); err != nil {
		t.Fatalf("promtest: query_range %s: %v", expr, err)
	}
	return data.Result
}

// WaitSeries polls until expr returns a series or timeout passes.
func (p *Prometheus) WaitSeries(t testing.TB, expr string, timeout time.Duration) []Sample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if s := p.Query(t, expr); len(s) > 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("promtest: no series for %s after %v", expr, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// PromAlert is one alert of /api/v1/alerts.
type PromAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
}

// Alerts returns Prometheus's pending and firing alerts.
func (p *Prometheus) Alerts(t testing.TB) []PromAlert {
	t.Helper()
	var data struct {
		Alerts []PromAlert `json:"alerts"`
	}
	if err := p.get("/api/v1/alerts", &data); err != nil {
		t.Fatalf("promtest: %v", err)
	}
	return data.Alerts
}

// FindAlert returns the alert named name in state ("pending" or "firing")
// whose labels include every given name=value pair.
func (p *Prometheus) FindAlert(t testing.TB, name, state string, labels ...string) (PromAlert, bool) {
	t.Helper()
	for _, a := range p.Alerts(t) {
		if a.Labels["alertname"] == name && a.State == state && hasLabels(a.Labels, labels) {
			return a, true
		}
	}
	return PromAlert{}, false
}

// WaitAlert polls /api/v1/alerts until FindAlert finds the alert.
func (p *Prometheus) WaitAlert(t testing.TB, timeout time.Duration, name, state string, labels ...string) PromAlert {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if a, ok := p.FindAlert(t, name, state, labels...); ok {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("promtest: %s%v not %s after %v; alerts: %+v", name, labels, state, timeout, p.Alerts(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hasLabels(have map[string]string, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if have[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}
