// Package collector turns gunicorn-reflex's in-memory state into Prometheus
// metrics at scrape time. Each Collector snapshots state it does not own
// (the app pipelines, the timeline, the pgmon.Set of database targets)
// into const metrics; the Exporter runs them, isolates their failures and
// reports per-collector success and duration, as node_exporter does.
package collector

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespaces: gunicorn_* for what Gunicorn does, reflex_* for what this
// tool measures about itself and everything else.
const (
	gunicornNS = "gunicorn"
	reflexNS   = "reflex"
)

// Collector is one source of metrics, updated on every scrape.
type Collector interface {
	Update(ch chan<- prometheus.Metric) error
}

// ContextCollector is a Collector that queries at scrape time (PostgreSQL)
// and so must stop at the scrape's deadline. The Exporter calls
// UpdateContext instead of Update, with the context given to Bind.
type ContextCollector interface {
	Collector
	UpdateContext(ctx context.Context, ch chan<- prometheus.Metric) error
}

var (
	scrapeDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(reflexNS, "scrape", "collector_duration_seconds"),
		"gunicorn-reflex: time a collector took to produce its metrics during this scrape.",
		[]string{"collector"}, nil)
	scrapeSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(reflexNS, "scrape", "collector_success"),
		"gunicorn-reflex: 1 if the collector produced its metrics without error during this scrape.",
		[]string{"collector"}, nil)
)

// Exporter runs named collectors; it is the one prometheus.Collector
// registered for them. It is unchecked (Describe sends nothing) because the
// apps, and so the label sets, change at runtime. Registered as is, it runs
// ContextCollectors without a deadline; an HTTP handler that knows the
// scrape's deadline registers Bind(ctx) in a per-scrape registry instead.
type Exporter struct {
	logger     *slog.Logger
	collectors map[string]Collector
}

// NewExporter returns an Exporter over the named collectors.
func NewExporter(logger *slog.Logger, collectors map[string]Collector) *Exporter {
	return &Exporter{logger: logger, collectors: collectors}
}

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) { e.collect(context.Background(), ch) }

// Bind returns a prometheus.Collector that runs every collector of e for
// one scrape, handing ctx (the scrape's deadline) to ContextCollectors.
func (e *Exporter) Bind(ctx context.Context) prometheus.Collector { return boundExporter{e, ctx} }

type boundExporter struct {
	e   *Exporter
	ctx context.Context
}

func (b boundExporter) Describe(chan<- *prometheus.Desc)    {}
func (b boundExporter) Collect(ch chan<- prometheus.Metric) { b.e.collect(b.ctx, ch) }

func (e *Exporter) collect(ctx context.Context, ch chan<- prometheus.Metric) {
	names := make([]string, 0, len(e.collectors))
	for n := range e.collectors {
		names = append(names, n)
	}
	sort.Strings(names)
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func(name string, c Collector) {
			defer wg.Done()
			e.run(ctx, name, c, ch)
		}(name, e.collectors[name])
	}
	wg.Wait()
}

func (e *Exporter) run(ctx context.Context, name string, c Collector, ch chan<- prometheus.Metric) {
	start := time.Now()
	err := safeUpdate(ctx, c, ch)
	success := 1.0
	if err != nil {
		success = 0
		e.logger.Error("collector failed", "collector", name, "err", err)
	}
	ch <- prometheus.MustNewConstMetric(scrapeDurationDesc, prometheus.GaugeValue, time.Since(start).Seconds(), name)
	ch <- prometheus.MustNewConstMetric(scrapeSuccessDesc, prometheus.GaugeValue, success, name)
}

// Standalone adapts one Collector to an unchecked prometheus.Collector
// without the Exporter's per-collector series, for a one-off exposition
// (the one-shot mode). An error or panic of the collector becomes an
// invalid metric, so Gather reports it.
func Standalone(c Collector) prometheus.Collector { return standalone{c} }

type standalone struct{ c Collector }

func (s standalone) Describe(chan<- *prometheus.Desc) {}

func (s standalone) Collect(ch chan<- prometheus.Metric) {
	if err := safeUpdate(context.Background(), s.c, ch); err != nil {
		ch <- prometheus.NewInvalidMetric(scrapeSuccessDesc, err)
	}
}

// safeUpdate turns a panic in a collector into an error: a scrape must
// never take the process down.
func safeUpdate(ctx context.Context, c Collector, ch chan<- prometheus.Metric) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	if cc, ok := c.(ContextCollector); ok {
		return cc.UpdateContext(ctx, ch)
	}
	return c.Update(ch)
}

// emitter sends const metrics, sanitising label values and collecting the
// first construction error instead of panicking.
type emitter struct {
	ch  chan<- prometheus.Metric
	err error
}

func (e *emitter) send(desc *prometheus.Desc, vt prometheus.ValueType, v float64, labels ...string) {
	for i, l := range labels {
		labels[i] = sanitizeLabel(l)
	}
	m, err := prometheus.NewConstMetric(desc, vt, v, labels...)
	if err != nil {
		if e.err == nil {
			e.err = err
		}
		return
	}
	e.ch <- m
}

func (e *emitter) counter(desc *prometheus.Desc, v uint64, labels ...string) {
	e.send(desc, prometheus.CounterValue, float64(v), labels...)
}

func (e *emitter) gauge(desc *prometheus.Desc, v float64, labels ...string) {
	e.send(desc, prometheus.GaugeValue, v, labels...)
}

// sanitizeLabel keeps label values valid UTF-8 (values from logs and /proc
// are not) and bounded in length.
func sanitizeLabel(s string) string {
	const maxLen = 128
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) > maxLen {
		s = s[:maxLen]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

func newDesc(ns, subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(ns, subsystem, name), help, labels, nil)
}
