package looptest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// PromOptions configures a Prometheus. Targets are the gunicorn-reflex
// exporters (host:port) scraped as job "gunicorn-reflex"; Alertmanagers
// (host:port) get every alert.
type PromOptions struct {
	// Addr is the loopback address to listen on; default 127.0.0.1.
	Addr          string
	Targets       []string
	Alertmanagers []string
	// RuleFiles are loaded as they are; default every *.yml of the
	// module's alerts/ (the shipped rules, unchanged).
	RuleFiles []string
	// Interval is the scrape and evaluation interval (and the scrape
	// timeout); default 1s.
	Interval string
}

// Prometheus is one running Prometheus.
type Prometheus struct {
	server
	client *http.Client
}

// ShippedRules are the rule files of the module's alerts/ directory.
func ShippedRules(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(moduleRoot(), "alerts", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("looptest: no rule files in alerts/: %v", err)
	}
	return files
}

// RulesWithFor copies files into a temporary directory with the `for:` of
// the named alerts replaced (alert name to duration, e.g. "0s"), and
// returns the copies. Nothing else of a rule changes; an alert named in
// overrides that no file holds, or that has no `for:`, fails the test. It
// exists for loops that cannot wait a shipped `for: 10m`: a caller says so
// where it uses it.
func RulesWithFor(t testing.TB, files []string, overrides map[string]string) []string {
	t.Helper()
	dir := t.TempDir()
	done := map[string]bool{}
	alertRe := regexp.MustCompile(`^\s*-\s*(alert|record):\s*(\S+)`)
	forRe := regexp.MustCompile(`^(\s*)for:\s*\S+\s*$`)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("looptest: %v", err)
		}
		lines := strings.Split(string(b), "\n")
		current := ""
		for i, l := range lines {
			if m := alertRe.FindStringSubmatch(l); m != nil {
				current = ""
				if m[1] == "alert" {
					current = m[2]
				}
				continue
			}
			if d, ok := overrides[current]; ok && current != "" {
				if m := forRe.FindStringSubmatch(l); m != nil {
					lines[i] = m[1] + "for: " + d
					done[current] = true
				}
			}
		}
		p := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatalf("looptest: %v", err)
		}
		out = append(out, p)
	}
	for name := range overrides {
		if !done[name] {
			t.Fatalf("looptest: no `for:` of alert %s in %v", name, files)
		}
	}
	return out
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
	if o.RuleFiles == nil {
		o.RuleFiles = ShippedRules(t)
	}
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %[1]s\n  scrape_timeout: %[1]s\n  evaluation_interval: %[1]s\nrule_files:\n", o.Interval)
	for _, f := range o.RuleFiles {
		fmt.Fprintf(&b, "  - %q\n", f)
	}
	if len(o.Alertmanagers) > 0 {
		b.WriteString("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [")
		b.WriteString(quoteList(o.Alertmanagers))
		b.WriteString("]\n")
	}
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: gunicorn-reflex\n    static_configs:\n      - targets: [%s]\n", quoteList(o.Targets))
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("looptest: %v", err)
	}
	addr := freeAddr(t, o.Addr)
	p := &Prometheus{server: server{name: "prometheus", URL: "http://" + addr},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	p.start(t, bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	return p
}

// get fetches a Prometheus API path and decodes its data into out.
func (p *Prometheus) get(path string, out any) error {
	resp, err := p.client.Get(p.URL + path)
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
	return json.Unmarshal(env.Data, out)
}

// Sample is one series of an instant vector.
type Sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// Query runs an instant query and returns its vector; the test fails when
// Prometheus rejects it.
func (p *Prometheus) Query(t testing.TB, expr string) []Sample {
	t.Helper()
	var data struct {
		ResultType string   `json:"resultType"`
		Result     []Sample `json:"result"`
	}
	if err := p.get("/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		t.Fatalf("looptest: query %s: %v", expr, err)
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
			t.Fatalf("looptest: no series for %s after %v", expr, timeout)
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
		t.Fatalf("looptest: %v", err)
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
			t.Fatalf("looptest: %s%v not %s after %v; alerts: %+v", name, labels, state, timeout, p.Alerts(t))
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

// moduleRoot is the directory of go.mod, found from this file's path.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
