package alerts

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// runbookBase is where every runbook_url points: a section of docs/runbook.md.
const runbookBase = "https://github.com/gunicorn-reflex/gunicorn-reflex/blob/main/docs/runbook.md#"

// reflexActions is the receiver's closed set of actions.
var reflexActions = map[string]bool{"scale_up": true, "scale_down": true, "reload": true, "restart": true}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	file        string
	group       string
	index       int // position in the group
}

// ruleFiles returns the shipped rule files, sorted.
func ruleFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("*.yml")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no rule files in alerts/")
	sort.Strings(files)
	return files
}

// loadRules parses every shipped rule file strictly.
func loadRules(t testing.TB) []rule {
	t.Helper()
	var all []rule
	for _, f := range ruleFiles(t) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var rf ruleFile
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		require.NoError(t, dec.Decode(&rf), f)
		for _, g := range rf.Groups {
			for i, r := range g.Rules {
				r.file, r.group, r.index = f, g.Name, i
				all = append(all, r)
			}
		}
	}
	return all
}

func promtool(t testing.TB, args ...string) string {
	t.Helper()
	bin := testenv.LookPath(t, "promtool")
	out, err := exec.Command(bin, args...).CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	for _, f := range ruleFiles(t) {
		out := promtool(t, "check", "rules", f)
		require.Contains(t, out, "SUCCESS", f)
	}
}

// TestPromtoolUnitTests runs every promtool unit test, and requires one
// for every alert of every file.
func TestPromtoolUnitTests(t *testing.T) {
	tests, err := filepath.Glob(filepath.Join("tests", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, tests)
	out := promtool(t, append([]string{"test", "rules"}, tests...)...)
	require.Contains(t, out, "SUCCESS")
	require.NotContains(t, out, "FAILED")

	var text strings.Builder
	for _, f := range tests {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		text.Write(b)
	}
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		// A "now" case names the alert with expected alerts; a "not yet"
		// case names it with none.
		now := regexp.MustCompile(`alertname: ` + r.Alert + `\n\s+exp_alerts:\n`)
		notYet := regexp.MustCompile(`alertname: ` + r.Alert + `\n\s+exp_alerts: \[\]`)
		require.Regexp(t, now, text.String(), "no \"now\" case for %s", r.Alert)
		require.Regexp(t, notYet, text.String(), "no \"not yet\" case for %s", r.Alert)
	}
}

var (
	camelCase  = regexp.MustCompile(`^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$`)
	recordName = regexp.MustCompile(`^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z0-9_]+$`)
	headingRe  = regexp.MustCompile(`(?m)^##+ (\S+)\s*$`)
	stateExpr  = regexp.MustCompile(`== [01]\s*$`)
)

// TestRuleConventions checks what every shipped rule promises: names,
// labels, annotations, runbook sections, counter-only rate() and the
// remediation contract.
func TestRuleConventions(t *testing.T) {
	runbook, err := os.ReadFile(filepath.Join("..", "docs", "runbook.md"))
	require.NoError(t, err)
	sections := map[string]bool{}
	for _, m := range headingRe.FindAllStringSubmatch(string(runbook), -1) {
		sections[strings.ToLower(m[1])] = true
	}
	rules := loadRules(t)
	records := map[string]rule{}
	for _, r := range rules {
		if r.Record != "" {
			records[r.Record] = r
		}
	}
	seen := map[string]bool{}
	for _, r := range rules {
		names, err := metricNames(r.Expr)
		require.NoError(t, err, r.Alert+r.Record)
		for _, n := range names {
			def, isRecord := records[n]
			if !strings.Contains(n, ":") {
				continue
			}
			require.True(t, isRecord, "%s reads %s, which no rule records", r.Alert+r.Record, n)
			// Groups run independently; within one, rules run in order.
			// A rule of the same file reads the record of the same
			// evaluation only if it comes after it in the same group.
			if def.file == r.file {
				require.True(t, def.group == r.group && def.index < r.index,
					"%s (%s) reads %s: put the recording rule before it in group %s", r.Alert+r.Record, r.file, n, r.group)
			}
		}
	}
	for _, r := range rules {
		name := r.Alert + r.Record
		require.False(t, seen[name], "%s defined twice", name)
		seen[name] = true
		require.NoError(t, counterOnly(r.Expr), "%s (%s)", name, r.file)
		_, err := metricNames(r.Expr)
		require.NoError(t, err, name)
		if r.Record != "" {
			require.Regexp(t, recordName, r.Record, "recording rules are named level:metric:operation")
			continue
		}
		require.Regexp(t, camelCase, r.Alert)
		require.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], "%s: severity", r.Alert)
		for _, a := range []string{"summary", "description", "runbook_url"} {
			require.NotEmpty(t, r.Annotations[a], "%s: annotation %s", r.Alert, a)
		}
		desc := r.Annotations["description"]
		if !strings.HasPrefix(strings.TrimSpace(r.Expr), "absent(") {
			require.Contains(t, desc, "$labels.instance", "%s: the description names the instance", r.Alert)
		}
		if strings.Contains(r.Expr, "gunicorn_") || strings.Contains(r.Expr, "app:") {
			require.Contains(t, desc, "$labels.app", "%s: the description names the app", r.Alert)
		}
		// A state (== 0, == 1) or absent() has no value worth printing.
		if !stateExpr.MatchString(r.Expr) && !strings.HasPrefix(strings.TrimSpace(r.Expr), "absent(") {
			require.Contains(t, desc, "$value", "%s: the description gives the value", r.Alert)
		}
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
		require.True(t, ok, "%s: runbook_url %q is not under %s", r.Alert, r.Annotations["runbook_url"], runbookBase)
		require.Equal(t, strings.ToLower(r.Alert), anchor, "%s: the runbook section is the alert's name", r.Alert)
		require.True(t, sections[anchor], "%s: docs/runbook.md has no section \"## %s\"", r.Alert, r.Alert)

		action, acts := r.Labels["reflex_action"]
		if !acts {
			continue
		}
		require.True(t, reflexActions[action], "%s: reflex_action %q is not one of the receiver's actions", r.Alert, action)
		// One slow request must not act: either the alert waits (a `for:`
		// of 10 minutes or more) or its expression asks for repeated
		// evidence (two timeouts or more) instead of waiting.
		if !repeatedTimeouts.MatchString(r.Expr) {
			d, err := time.ParseDuration(r.For)
			require.NoError(t, err, "%s: for", r.Alert)
			require.GreaterOrEqual(t, d, 10*time.Minute, "%s: a remediation waits long enough that one slow request does not act, or counts two timeouts or more", r.Alert)
		}
		require.Contains(t, r.Expr, "unless on", "%s: a remediation has guards in its expression", r.Alert)
		require.Contains(t, string(runbook), "`"+action+"`", "docs/runbook.md does not explain %s", action)
	}
}

// repeatedTimeouts matches an expression that acts only on two worker
// timeouts or more in its window.
var repeatedTimeouts = regexp.MustCompile(`increase\(gunicorn_worker_timeouts_total\[[0-9]+[smh]\]\)\)\s*>=\s*([2-9]|[1-9][0-9]+)\b`)

// counterOnly reports rate()/irate()/increase()/resets() applied to a
// series that is not a counter or a classic histogram's series, judged by
// name (the live test judges by the exporter's TYPE lines).
func counterOnly(expr string) error {
	var errs []error
	for _, m := range counterFuncRe.FindAllStringSubmatch(expr, -1) {
		n := m[2]
		if _, hist := histogramFamily(n); hist || strings.HasSuffix(n, "_total") {
			continue
		}
		errs = append(errs, fmt.Errorf("%s() of %s, which is not a counter", m[1], n))
	}
	return errors.Join(errs...)
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="gunicorn-reflex"} == 0`, []string{"up"}},
		{`absent(up{job="gunicorn-reflex"})`, []string{"up"}},
		{`sum by (job, instance, app) (rate(gunicorn_worker_timeouts_total{app=~"$app"}[$__rate_interval])) * 60 >= 1`, []string{"gunicorn_worker_timeouts_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(gunicorn_http_request_duration_seconds_bucket[5m])))`, []string{"gunicorn_http_request_duration_seconds_bucket"}},
		{"app:gunicorn_workers_busy:ratio >= 0.9\n and on (job, instance, app) (reflex_proc_up == 1)\n unless on (job, instance) (max by (job, instance) (reflex_pg_up) == 0)", []string{"app:gunicorn_workers_busy:ratio", "reflex_pg_up", "reflex_proc_up"}},
		{`max_over_time(foo2[30m:1m]) > 1e3 or bar offset 5m`, []string{"bar", "foo2"}},
		{`label_replace(x, "dst", "$1", "src", "(or)")`, []string{"x"}},
	} {
		got, err := metricNames(tc.expr)
		require.NoError(t, err, tc.expr)
		require.Equal(t, tc.want, got, tc.expr)
	}
	_, err := metricNames(`{__name__=~"gunicorn_.+"}`)
	require.Error(t, err)
	require.Error(t, counterOnly(`rate(gunicorn_workers_cpu_seconds[5m])`), "rate() of a gauge")
	require.NoError(t, counterOnly(`increase(gunicorn_worker_timeouts_total[5m]) + rate(x_bucket[1m])`))
}
