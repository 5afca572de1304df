package main_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// Requests of known duration against a real Gunicorn with a custom access
// log format land in the right latency buckets, and counts by method and
// status class are exact.
func TestAccessLogLatencyBuckets(t *testing.T) {
	const format = `%(h)s %(t)s "%(r)s" %(s)s %(B)s %(L)s "%({x-request-id}i)s" pid=%(p)s D=%(D)s`
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 4, Timeout: 5, AccessLogFormat: format})
	cfg := filepath.Join(t.TempDir(), "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`apps:
  - name: lat
    error_log: %s
    access_log: %s
    access_log_format: '%s'
    routes:
      enabled: true
      max_routes: 5
logs:
  poll_interval: 100ms
`, g.ErrorLog, g.AccessLog, format)), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)
	exp.WaitValue(t, 10*time.Second, 1, "reflex_log_file_up", "app", "lat", "log", "access")

	// Durations sit in the middle of their buckets, far from the edges, so
	// scheduling noise cannot move them: 0.15 s in (0.1, 0.25], 0.35 s in
	// (0.25, 0.5], 0.7 s in (0.5, 1], 1.5 s in (1, 2.5].
	sleeps := map[string]int{"0.15": 3, "0.35": 2, "0.7": 2, "1.5": 1}
	var wg sync.WaitGroup
	for s, n := range sleeps {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, _, err := g.Get("/sleep?s=" + s)
				require.NoError(t, err)
				require.Equal(t, 200, status)
			}()
		}
		wg.Wait() // one duration at a time: 4 workers serve each batch at once
	}
	for i := 0; i < 5; i++ {
		status, _, err := g.Get("/ok")
		require.NoError(t, err)
		require.Equal(t, 200, status)
	}
	resp, err := http.Post(g.BaseURL+"/ok", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	status, _, err := g.Get("/error")
	require.NoError(t, err)
	require.Equal(t, 500, status)
	status, _, err = g.Get("/no-such-page")
	require.NoError(t, err)
	require.Equal(t, 404, status)

	// GET 2xx: 8 sleeps + 5 /ok = 13. The /error 500 is written by
	// Gunicorn's error handler: a request, but no trusted duration.
	// Gunicorn writes an access line after the response, so a later
	// request's line (from another worker) can come first: wait for each.
	exp.WaitValue(t, 10*time.Second, 13, "gunicorn_http_requests_total", "app", "lat", "method", "GET", "status_class", "2xx")
	exp.WaitValue(t, 10*time.Second, 1, "gunicorn_http_requests_total", "app", "lat", "method", "POST", "status_class", "2xx")
	exp.WaitValue(t, 10*time.Second, 1, "gunicorn_http_requests_total", "app", "lat", "method", "GET", "status_class", "5xx")
	m := exp.WaitValue(t, 10*time.Second, 1, "gunicorn_http_requests_total", "app", "lat", "method", "GET", "status_class", "4xx")
	for _, c := range []struct {
		method, class string
		want          float64
	}{{"GET", "2xx", 13}, {"POST", "2xx", 1}, {"GET", "5xx", 1}, {"GET", "4xx", 1}, {"PUT", "2xx", 0}} {
		v, ok := m.Value("gunicorn_http_requests_total", "app", "lat", "method", c.method, "status_class", c.class)
		require.True(t, ok)
		require.Equal(t, c.want, v, "%s %s", c.method, c.class)
	}
	buckets := histogramBuckets(t, m, "gunicorn_http_request_duration_seconds", "app", "lat")
	// Cumulative: the 7 fast requests (5 GET /ok, POST /ok, the 404) are
	// at most 0.1 s; then 3, 2, 2, 1 sleeps.
	fast := 7.0
	require.Equal(t, fast, buckets[0.1], "%v", buckets)
	require.Equal(t, fast+3, buckets[0.25], "%v", buckets)
	require.Equal(t, fast+5, buckets[0.5], "%v", buckets)
	require.Equal(t, fast+7, buckets[1], "%v", buckets)
	require.Equal(t, fast+8, buckets[2.5], "%v", buckets)
	require.Equal(t, fast+8, buckets[300], "%v", buckets)
	untrusted, _ := m.Value("reflex_http_untrusted_durations_total", "app", "lat")
	require.Equal(t, 1.0, untrusted, "the /error line from Gunicorn's error handler")
	parseFailures, _ := m.Value("reflex_log_parse_failures_total", "app", "lat", "log", "access")
	require.Zero(t, parseFailures)
	sleepRoute := histogramBuckets(t, m, "gunicorn_http_route_request_duration_seconds", "app", "lat", "route", "/sleep")
	require.Equal(t, 8.0, sleepRoute[300])
	promtoolCheck(t, m.Text)
}

// histogramBuckets returns le -> cumulative count of one histogram series.
func histogramBuckets(t *testing.T, m *reflextest.Metrics, name string, labels ...string) map[float64]float64 {
	t.Helper()
	fam, ok := m.Families[name]
	require.True(t, ok, "%s missing", name)
	for _, s := range fam.GetMetric() {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range s.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match || s.Histogram == nil {
			continue
		}
		out := map[float64]float64{}
		for _, b := range s.Histogram.GetBucket() {
			out[b.GetUpperBound()] = float64(b.GetCumulativeCount())
		}
		return out
	}
	t.Fatalf("no %s%v series", name, labels)
	return nil
}
