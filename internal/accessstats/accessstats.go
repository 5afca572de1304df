// Package accessstats owns one app's request statistics from its Gunicorn
// access log: requests by method and status class, request duration and
// response size histograms, and optional per-route latency through a
// bounded route table. The pipeline goroutine feeds lines; scrapes read the
// current values concurrently.
//
// The histograms are client_golang Histograms used as lock-free
// aggregators, rather than const metrics built at scrape time, because they
// carry classic and native (sparse) buckets at once and a hand-written
// native-bucket encoder would duplicate the library.
package accessstats

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/routes"
)

// DurationBuckets are the classic buckets of the latency histograms: from a
// few milliseconds to Gunicorn's usual --timeout values and past them.
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// SizeBuckets are the classic buckets of the response-size histogram.
var SizeBuckets = prometheus.ExponentialBuckets(128, 4, 10) // 128 B .. 32 MiB

// Native (sparse) bucket settings: ~10% resolution, bounded bucket count.
// Only the per-app latency histogram has native buckets: each native
// observation costs a concurrent-map lookup, and per-route and size
// histograms are where that cost would buy the least.
const (
	nativeFactor     = 1.1
	nativeMaxBuckets = 160
	nativeMinReset   = time.Hour
)

// StatusClasses label status codes; index = status/100, 0 = "other".
var StatusClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Options configure one app's statistics.
type Options struct {
	Routes    bool
	MaxRoutes int
	Rules     []routes.Rule
}

// Stats aggregates one app's access log.
type Stats struct {
	app    string
	parser *accesslog.Parser
	opts   Options
	rec    accesslog.Record // reused for every line

	requests      [accesslog.NumMethods][len(StatusClasses)]atomic.Uint64
	parseFailures atomic.Uint64
	untrusted     atomic.Uint64 // lines whose duration was left out (error handler)
	duration      prometheus.Histogram
	size          *classicHist

	hasBytes   bool
	table      *routes.Table // owned by the feeding goroutine
	routeGens  []uint32      // slot generation each routeHists entry was made for; feeding goroutine only
	mu         sync.Mutex    // guards routeHists changes against scrapes
	routeHists []*classicHist
	overflow   atomic.Uint64
	evictions  atomic.Uint64
}

// New returns empty statistics for app, parsing lines with parser.
func New(app string, parser *accesslog.Parser, opts Options) *Stats {
	s := &Stats{
		app:    app,
		parser: parser,
		opts:   opts,
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                            "gunicorn_http_request_duration_seconds",
			Help:                            "Request duration from the access log's finest duration atom (%(D)s µs, %(L)s, %(M)s, %(T)s); lines written by Gunicorn's error handler are left out because their duration is not the request's.",
			ConstLabels:                     prometheus.Labels{"app": app},
			Buckets:                         DurationBuckets,
			NativeHistogramBucketFactor:     nativeFactor,
			NativeHistogramMaxBucketNumber:  nativeMaxBuckets,
			NativeHistogramMinResetDuration: nativeMinReset,
		}),
		size: newClassicHist(sizeDesc, SizeBuckets, app),
	}
	for _, f := range parser.Fields() {
		if f == "b" || f == "B" {
			s.hasBytes = true
		}
	}
	if opts.Routes {
		if opts.MaxRoutes < 1 {
			opts.MaxRoutes = 100
		}
		s.table = routes.NewTable(opts.Rules, opts.MaxRoutes)
		s.routeHists = []*classicHist{s.newRouteHist(routes.Other)}
		s.routeGens = []uint32{0}
	}
	return s
}

func (s *Stats) newRouteHist(route string) *classicHist {
	return newClassicHist(routeDesc, DurationBuckets, s.app, route)
}

// Parser is the compiled access-log format.
func (s *Stats) Parser() *accesslog.Parser { return s.parser }

// ObserveLine parses and counts one access-log line. It must be called from
// one goroutine; it allocates nothing for a line of a known route.
func (s *Stats) ObserveLine(line []byte) {
	r := &s.rec
	if err := s.parser.Parse(line, r); err != nil {
		s.parseFailures.Add(1)
		return
	}
	class := 0
	if r.Status >= 100 && r.Status < 600 {
		class = r.Status / 100
	}
	s.requests[r.Method][class].Add(1)
	if r.HasBytes {
		s.size.observe(float64(r.RespBytes))
	}
	if !r.DurationTrusted {
		if r.HasDuration {
			s.untrusted.Add(1)
		}
		return
	}
	d := r.Duration.Seconds()
	s.duration.Observe(d)
	if s.table == nil {
		return
	}
	i := s.table.Index(r.Path)
	if i == 0 {
		s.overflow.Store(s.table.Overflow())
	}
	if i >= len(s.routeGens) || s.routeGens[i] != s.table.Gen(i) {
		s.newSlot(i)
	}
	s.routeHists[i].observe(d)
}

// newSlot starts a histogram for route slot i: a slot seen for the first
// time, or one the route table gave to another route. The evicted route's
// series disappears from the next scrape (see package routes for why it is
// neither frozen nor folded into "other").
func (s *Stats) newSlot(i int) {
	h := s.newRouteHist(s.table.Name(i))
	s.mu.Lock()
	if i >= len(s.routeHists) {
		s.routeHists = append(s.routeHists, h)
		s.routeGens = append(s.routeGens, s.table.Gen(i))
	} else {
		s.routeHists[i] = h
		s.routeGens[i] = s.table.Gen(i)
	}
	s.mu.Unlock()
	s.evictions.Store(s.table.Evictions())
}

// Descriptions of the const metrics Collect builds.
var (
	requestsDesc = prometheus.NewDesc("gunicorn_http_requests_total",
		"Requests in the access log, by method (closed set, others as OTHER) and status class.", []string{"app", "method", "status_class"}, nil)
	untrustedDesc = prometheus.NewDesc("reflex_http_untrusted_durations_total",
		"Access-log lines written by Gunicorn's error handler (400/403/500 it produced itself): counted as requests, but their duration measures the error handling, so it is kept out of the latency histograms.", []string{"app"}, nil)
	overflowDesc = prometheus.NewDesc("reflex_http_route_overflow_requests_total",
		"Requests whose route did not fit under the per-app route cap and were counted in route=\"other\".", []string{"app"}, nil)
	sizeDesc = prometheus.NewDesc("gunicorn_http_response_size_bytes",
		"Response body size from the access log (%(B)s or %(b)s).", []string{"app"}, nil)
	routeDesc = prometheus.NewDesc("gunicorn_http_route_request_duration_seconds",
		"Request duration by route template (configured rules, then ids and numbered or hashed file names collapsed to :id); past the per-app cap the heaviest routes keep their series and the rest are in route=\"other\".",
		[]string{"app", "route"}, nil)
	evictionsDesc = prometheus.NewDesc("reflex_http_route_evictions_total",
		"Routes that lost their latency series to a heavier route once the per-app route cap was reached; a route that wins a slot back starts its series again from 0, which rate() reads as a counter reset.", []string{"app"}, nil)
	routesDesc = prometheus.NewDesc("reflex_http_routes",
		"Distinct routes with their own latency series for this app, \"other\" included; bounded by routes.max_routes.", []string{"app"}, nil)
)

// ParseFailures is the number of lines the access-log parser rejected. The
// collector exports it as reflex_log_parse_failures_total{log="access"}
// beside the error log's count: one name, declared once, in the collector.
func (s *Stats) ParseFailures() uint64 { return s.parseFailures.Load() }

// Collect sends the app's metrics: every method and status class at 0 from
// the start, so increase() sees the first request.
func (s *Stats) Collect(ch chan<- prometheus.Metric) {
	for _, m := range accesslog.AllMethods {
		for c, class := range StatusClasses {
			ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(s.requests[m][c].Load()), s.app, m.String(), class)
		}
	}
	for c, class := range StatusClasses {
		if v := s.requests[accesslog.MethodNone][c].Load(); v > 0 {
			ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(v), s.app, "UNKNOWN", class)
		}
	}
	ch <- prometheus.MustNewConstMetric(untrustedDesc, prometheus.CounterValue, float64(s.untrusted.Load()), s.app)
	if s.parser.HasDuration() {
		ch <- s.duration
	}
	if s.hasBytes {
		sendHist(ch, s.size)
	}
	if s.table != nil {
		s.mu.Lock()
		hists := slices.Clone(s.routeHists) // entries are replaced when a slot changes hands
		s.mu.Unlock()
		for _, h := range hists {
			sendHist(ch, h)
		}
		ch <- prometheus.MustNewConstMetric(overflowDesc, prometheus.CounterValue, float64(s.overflow.Load()), s.app)
		ch <- prometheus.MustNewConstMetric(evictionsDesc, prometheus.CounterValue, float64(s.evictions.Load()), s.app)
		ch <- prometheus.MustNewConstMetric(routesDesc, prometheus.GaugeValue, float64(len(hists)), s.app)
	}
}

func sendHist(ch chan<- prometheus.Metric, h *classicHist) {
	if m, err := h.metric(); err == nil {
		ch <- m
	}
}
