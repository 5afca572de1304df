package accessstats

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
)

const formatD = accesslog.DefaultFormat + ` %(D)s`

func line(method, path string, status int, micros int) string {
	return fmt.Sprintf(`127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "%s %s HTTP/1.1" %d 2 "-" "curl/7.88.1" %d`, method, path, status, micros)
}

func newStats(t *testing.T, format string, opts Options) *Stats {
	t.Helper()
	p, err := accesslog.Compile(format)
	require.NoError(t, err)
	return New("shop", p, opts)
}

type collectorOf struct{ s *Stats }

func (c collectorOf) Describe(chan<- *prometheus.Desc)    {}
func (c collectorOf) Collect(ch chan<- prometheus.Metric) { c.s.Collect(ch) }

func TestCountsAndHistogram(t *testing.T) {
	s := newStats(t, formatD, Options{})
	s.ObserveLine([]byte(line("GET", "/ok", 200, 3_000)))         // 3 ms
	s.ObserveLine([]byte(line("POST", "/users/1", 201, 300_000))) // 0.3 s
	s.ObserveLine([]byte(line("BREW", "/pot", 418, 20)))
	s.ObserveLine([]byte("garbage"))
	want := `
# HELP gunicorn_http_request_duration_seconds Request duration from the access log's finest duration atom (%(D)s µs, %(L)s, %(M)s, %(T)s); lines written by Gunicorn's error handler are left out because their duration is not the request's.
# TYPE gunicorn_http_request_duration_seconds histogram
gunicorn_http_request_duration_seconds_bucket{app="shop",le="0.005"} 2
gunicorn_http_request_duration_seconds_bucket{app="shop",le="0.01"} 2
gunicorn_http_request_duration_seconds_bucket{app="shop",le="0.025"} 2
gunicorn_http_request_duration_seconds_bucket{app="shop",le="0.05"} 2
gunicorn_http_request_duration_seconds_bucket{app="shop",le="0.1"} 2
gunicorn_http_request_duration_seconds_bucket{app="shop",le="0.25"} 2
gunicorn_http_request_duration_seconds_bucket{app="shop",le="0.5"} 3
gunicorn_http_request_duration_seconds_bucket{app="shop",le="1"} 3
gunicorn_http_request_duration_seconds_bucket{app="shop",le="2.5"} 3
gunicorn_http_request_duration_seconds_bucket{app="shop",le="5"} 3
gunicorn_http_request_duration_seconds_bucket{app="shop",le="10"} 3
gunicorn_http_request_duration_seconds_bucket{app="shop",le="30"} 3
gunicorn_http_request_duration_seconds_bucket{app="shop",le="60"} 3
gunicorn_http_request_duration_seconds_bucket{app="shop",le="120"} 3
gunicorn_http_request_duration_seconds_bucket{app="shop",le="300"} 3
gunicorn_http_request_duration_seconds_bucket{app="shop",le="+Inf"} 3
gunicorn_http_request_duration_seconds_sum{app="shop"} 0.30302
gunicorn_http_request_duration_seconds_count{app="shop"} 3
`
	require.NoError(t, testutil.CollectAndCompare(collectorOf{s}, strings.NewReader(want),
		"gunicorn_http_request_duration_seconds"))
	require.Equal(t, uint64(1), s.ParseFailures(), "exported by the collector as reflex_log_parse_failures_total")
	m := gather(t, s)
	require.Equal(t, 1.0, m[`gunicorn_http_requests_total{app="shop",method="GET",status_class="2xx"}`])
	require.Equal(t, 1.0, m[`gunicorn_http_requests_total{app="shop",method="POST",status_class="2xx"}`])
	require.Equal(t, 1.0, m[`gunicorn_http_requests_total{app="shop",method="OTHER",status_class="4xx"}`])
	require.Contains(t, m, `gunicorn_http_requests_total{app="shop",method="DELETE",status_class="5xx"}`, "every series exported at 0")
}

// A 500 written by Gunicorn's error handler counts as a request but its
// duration stays out of the histogram.
func TestErrorHandlerDurationIsKeptOut(t *testing.T) {
	s := newStats(t, formatD, Options{})
	// handle_error lines: status 500 with a body of 0 bytes... as the
	// accesslog package recognises them; take one from its own rule.
	l := `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET /error HTTP/1.1" 500 0 "-" "curl/7.88.1" 1774`
	var r accesslog.Record
	require.NoError(t, s.Parser().Parse([]byte(l), &r))
	s.ObserveLine([]byte(l))
	m := gather(t, s)
	require.Equal(t, 1.0, m[`gunicorn_http_requests_total{app="shop",method="GET",status_class="5xx"}`])
	if r.ErrorHandler {
		require.Equal(t, 0.0, m[`gunicorn_http_request_duration_seconds_count{app="shop"}`])
		require.Equal(t, 1.0, m[`reflex_http_untrusted_durations_total{app="shop"}`])
	} else {
		require.Equal(t, 1.0, m[`gunicorn_http_request_duration_seconds_count{app="shop"}`])
	}
}

// 10,000 distinct raw paths never make more than the cap of route series.
func TestRouteCap(t *testing.T) {
	s := newStats(t, formatD, Options{Routes: true, MaxRoutes: 50})
	for i := 0; i < 10000; i++ {
		s.ObserveLine([]byte(line("GET", fmt.Sprintf("/section%d/items/%d", i, i), 200, 1000)))
	}
	m := gather(t, s)
	routes := 0
	for k := range m {
		if strings.HasPrefix(k, "gunicorn_http_route_request_duration_seconds_count") {
			routes++
		}
	}
	require.Equal(t, 51, routes, "50 routes plus other")
	require.Equal(t, 51.0, m[`reflex_http_routes{app="shop"}`])
	require.Equal(t, float64(10000-50), m[`reflex_http_route_overflow_requests_total{app="shop"}`])
	require.Equal(t, float64(10000-50), m[`gunicorn_http_route_request_duration_seconds_count{app="shop",route="other"}`])
	require.Equal(t, 1.0, m[`gunicorn_http_route_request_duration_seconds_count{app="shop",route="/section0/items/:id"}`])
}

func TestNoDurationFormatStillCounts(t *testing.T) {
	s := newStats(t, accesslog.DefaultFormat, Options{Routes: true})
	s.ObserveLine([]byte(`127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET /ok HTTP/1.1" 200 2 "-" "curl/7.88.1"`))
	m := gather(t, s)
	require.Equal(t, 1.0, m[`gunicorn_http_requests_total{app="shop",method="GET",status_class="2xx"}`])
	_, has := m[`gunicorn_http_request_duration_seconds_count{app="shop"}`]
	require.False(t, has, "no latency series without a duration atom")
}

func TestNoAllocationPerLine(t *testing.T) {
	s := newStats(t, formatD, Options{Routes: true})
	b := []byte(line("GET", "/users/42/orders", 200, 1234))
	s.ObserveLine(b)
	require.Zero(t, testing.AllocsPerRun(1000, func() { s.ObserveLine(b) }))
}

func BenchmarkObserveLine(b *testing.B) {
	p, _ := accesslog.Compile(formatD)
	s := New("shop", p, Options{Routes: true})
	l := []byte(line("GET", "/api/v1/users/123456/orders", 200, 43210))
	b.ReportAllocs()
	b.SetBytes(int64(len(l)))
	for i := 0; i < b.N; i++ {
		s.ObserveLine(l)
	}
}

// gather flattens the text exposition into "name{labels}" -> value.
func gather(t *testing.T, s *Stats) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collectorOf{s})
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			key := func(suffix string) string { return mf.GetName() + suffix + "{" + strings.Join(labels, ",") + "}" }
			switch {
			case m.Counter != nil:
				out[key("")] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key("")] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key("_count")] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}
