package alerts

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// dashboardPath is the committed dashboard, grafana/gen's output.
var dashboardPath = filepath.Join("..", "grafana", "gunicorn-reflex.json")

// TestDashboardIsGenerated requires the committed JSON to equal what the
// generator writes now, so nobody edits the JSON by hand and the generator
// never drifts from it.
func TestDashboardIsGenerated(t *testing.T) {
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = filepath.Join("..", "grafana", "gen")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go run ./grafana/gen: %s", stderr.String())
	// The generator is its own module, outside the root's `go vet ./...`.
	vet := exec.Command("go", "vet", "./...")
	vet.Dir = cmd.Dir
	b, err := vet.CombinedOutput()
	require.NoError(t, err, "go vet in grafana/gen:\n%s", b)
	committed, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	if !bytes.Equal(out, committed) {
		t.Fatalf("%s differs from the generator's output; regenerate it with\n  cd grafana/gen && go run . > ../gunicorn-reflex.json", dashboardPath)
	}
}

// dashboardQuery is one PromQL expression of the dashboard and where it is.
type dashboardQuery struct {
	where string // panel title, or "annotation NAME", or "variable NAME"
	row   string // the row the panel is in; "" for annotations and variables
	expr  string
}

type dashboardJSON struct {
	UID    string `json:"uid"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Type  string `json:"type"`
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

func loadDashboard(t testing.TB) (dashboardJSON, []byte) {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	var d dashboardJSON
	require.NoError(t, json.Unmarshal(b, &d))
	return d, b
}

// panelQueries returns every panel and annotation query of the dashboard.
func panelQueries(t testing.TB) []dashboardQuery {
	t.Helper()
	d, _ := loadDashboard(t)
	var qs []dashboardQuery
	row := ""
	for _, p := range d.Panels {
		if p.Type == "row" {
			row = p.Title
			continue
		}
		for _, tg := range p.Targets {
			qs = append(qs, dashboardQuery{where: p.Title, row: row, expr: tg.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		qs = append(qs, dashboardQuery{where: "annotation " + a.Name, expr: a.Expr})
	}
	return qs
}

// variableMetrics returns the metric names the variables' label_values()
// queries read, including the alternatives of a {__name__=~"a|b"} selector.
func variableMetrics(t testing.TB) map[string][]string {
	t.Helper()
	d, _ := loadDashboard(t)
	labelValues := regexp.MustCompile(`^label_values\((.*), *[a-z_]+\)$`)
	nameAlternatives := regexp.MustCompile(`^\{__name__=~"([a-z_:|]+)"`)
	out := map[string][]string{}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, ok := v.Query.(string)
		require.True(t, ok, "variable %s: query is not a string", v.Name)
		m := labelValues.FindStringSubmatch(q)
		require.NotNil(t, m, "variable %s: %q is not label_values(selector, label)", v.Name, q)
		if alt := nameAlternatives.FindStringSubmatch(m[1]); alt != nil {
			out[v.Name] = strings.Split(alt[1], "|")
			continue
		}
		names, err := metricNames(m[1])
		require.NoError(t, err, "variable %s", v.Name)
		out[v.Name] = names
	}
	return out
}

// TestDashboardLint checks the dashboard in the spirit of Grafana's
// dashboard linter: a fixed uid; the datasource, job, instance, app and
// target variables; every query selects through job, instance and app (or
// target) and takes ranges as $__rate_interval; rate() only on counters; no
// hard-coded data source anywhere.
func TestDashboardLint(t *testing.T) {
	d, raw := loadDashboard(t)
	require.Equal(t, "gunicorn-reflex", d.UID)

	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	require.Equal(t, map[string]string{"datasource": "datasource", "job": "query", "instance": "query", "app": "query", "target": "query"}, vars)

	// Every data source reference is the variable.
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "datasource" {
					ds, ok := c.(map[string]any)
					require.True(t, ok, "%s.datasource is %T, want an object referencing ${datasource}", path, c)
					require.Equal(t, "${datasource}", ds["uid"], "%s.datasource is hard-coded", path)
					continue
				}
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range v {
				walk(path+"["+strconv.Itoa(i)+"]", c)
			}
		}
	}
	var generic any
	require.NoError(t, json.Unmarshal(raw, &generic))
	walk("$", generic)

	ids := map[int]bool{}
	rows := []string{}
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Title)
		require.False(t, ids[p.ID], "panel id %d used twice", p.ID)
		ids[p.ID] = true
		if p.Type == "row" {
			rows = append(rows, p.Title)
		} else {
			require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		}
	}
	require.Equal(t, []string{"Timeouts and exits", "Workers", "Requests and latency", "Memory and CPU", "PostgreSQL", "PgBouncer", "Remediation", "Logs followed"}, rows)

	queries := panelQueries(t)
	require.NotEmpty(t, queries)
	for _, q := range queries {
		require.NoError(t, lintQuery(q.expr), "%s: %s", q.where, q.expr)
	}
	for name, metrics := range variableMetrics(t) {
		require.NotEmpty(t, metrics, "variable %s reads no metric", name)
	}
}

// lintQuery returns what is wrong with one dashboard query.
func lintQuery(expr string) error {
	var problems []string
	for _, sel := range matchersRe.FindAllString(expr, -1) {
		for _, want := range []string{`job=~"$job"`, `instance=~"$instance"`} {
			if !strings.Contains(sel, want) {
				problems = append(problems, "selector "+sel+" lacks "+want)
			}
		}
		if !strings.Contains(sel, `app=~"$app"`) && !strings.Contains(sel, `target=~"$target"`) {
			problems = append(problems, "selector "+sel+` selects neither app=~"$app" nor target=~"$target"`)
		}
	}
	if len(matchersRe.FindAllString(expr, -1)) == 0 {
		problems = append(problems, "no selector with the dashboard's variables")
	}
	for _, m := range rangeUseRe.FindAllStringSubmatch(expr, -1) {
		if m[1] != "$__rate_interval" {
			problems = append(problems, "range ["+m[1]+"] is not [$__rate_interval]")
		}
	}
	if err := counterOnly(expr); err != nil {
		problems = append(problems, err.Error())
	}
	if _, err := metricNames(expr); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return &lintError{problems}
	}
	return nil
}

type lintError struct{ problems []string }

func (e *lintError) Error() string { return strings.Join(e.problems, "; ") }

func TestLintQuery(t *testing.T) {
	good := `sum by (app) (rate(gunicorn_worker_timeouts_total{job=~"$job", instance=~"$instance", app=~"$app"}[$__rate_interval]))`
	require.NoError(t, lintQuery(good))
	for _, bad := range []string{
		`sum by (app) (rate(gunicorn_worker_timeouts_total{job=~"$job", instance=~"$instance", app=~"$app"}[5m]))`,
		`sum by (app) (rate(gunicorn_worker_timeouts_total{instance=~"$instance", app=~"$app"}[$__rate_interval]))`,
		`gunicorn_workers{job=~"$job", instance=~"$instance"}`,
		`rate(gunicorn_workers_cpu_seconds{job=~"$job", instance=~"$instance", app=~"$app"}[$__rate_interval])`,
		`gunicorn_workers`,
	} {
		require.Error(t, lintQuery(bad), bad)
	}
}
