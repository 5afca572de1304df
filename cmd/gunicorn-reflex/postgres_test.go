package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgtest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// Through the binary: a real PostgreSQL, a hung one, and a Gunicorn worker
// stuck in pg_sleep whose backend is named in the event timeline.
func TestPostgresEndToEnd(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	hung := pgtest.NewBlackhole(t)
	dir := t.TempDir()
	dsnFile := filepath.Join(dir, "pg.dsn")
	require.NoError(t, os.WriteFile(dsnFile, []byte(c.DSN(pgtest.Superuser)), 0o600))
	hungFile := filepath.Join(dir, "hung.dsn")
	require.NoError(t, os.WriteFile(hungFile, []byte(fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=x password=hunter2secret", hung.Port())), 0o600))

	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 2, Timeout: 30, Name: "pgapp",
		Env: []string{gunicorntest.PgDSNEnv + "=" + c.DSN(pgtest.Superuser)}})
	cfg := filepath.Join(dir, "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`apps:
  - name: pgapp
    pidfile: %s
    timeout: 4s
postgres:
  - name: main
    dsn_file: %s
    age_thresholds: [1s, 1h]
  - name: hung
    dsn_file: %s
`, g.Pidfile, dsnFile, hungFile)), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)
	exp.WaitValue(t, 10*time.Second, 1, "reflex_pg_up", "target", "main")

	// A worker stuck in pg_sleep for longer than half its (configured) 4 s
	// timeout: the /proc sampler sees it on a socket to PostgreSQL and the
	// timeline names its backend.
	res := g.GetAsync("/db?s=6")
	m := exp.WaitValue(t, 10*time.Second, 1, "reflex_pg_active_queries_over", "target", "main", "threshold_seconds", "1")
	v, _ := m.Value("reflex_pg_connections", "target", "main", "state", "active")
	require.GreaterOrEqual(t, v, 1.0)
	var linked bool
	deadline := time.Now().Add(10 * time.Second)
	for !linked && time.Now().Before(deadline) {
		_, body, err := exp.Get("/api/v1/events?app=pgapp&kind=worker_waits_on_backend")
		require.NoError(t, err)
		var out struct {
			Events []struct {
				Attrs map[string]string `json:"attrs"`
			} `json:"events"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &out))
		for _, e := range out.Events {
			if e.Attrs["target"] == "main" && e.Attrs["state"] == "active" && e.Attrs["wait_event"] == "PgSleep" {
				linked = true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !linked {
		_, all, _ := exp.Get("/api/v1/events?app=pgapp")
		_, metrics, _ := exp.Get("/metrics")
		t.Fatalf("the stuck worker's backend is not named in the timeline\n%s\n%s\n%s", all, exp.Stderr.Tail(30), grepLines(metrics, "reflex_proc_up", "gunicorn_workers_stuck"))
	}
	<-res

	// The hung server: the scrape keeps Prometheus's deadline (2 s minus
	// the 0.5 s offset) and says up 0.
	req, err := http.NewRequest(http.MethodGet, exp.URL+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "2")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Less(t, time.Since(start), 2*time.Second, "a hung database must not hold the scrape past its deadline")
	m = exp.Scrape(t)
	up, _ := m.Value("reflex_pg_up", "target", "hung")
	require.Zero(t, up)
	require.NotContains(t, m.Text+exp.Stderr.String(), "hunter2secret", "a password leaked into metrics or logs")
	require.True(t, strings.Contains(m.Text, `reflex_pg_up{target="main"} 1`))
	promtoolCheck(t, m.Text)
	doc, err := os.ReadFile("../../docs/metrics.md")
	require.NoError(t, err)
	for name := range m.Families {
		if strings.HasPrefix(name, "reflex_pg") {
			require.Contains(t, string(doc), "`"+name+"`", "docs/metrics.md does not list %s", name)
		}
	}
}

func grepLines(text string, substrs ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, s := range substrs {
			if strings.Contains(l, s) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
