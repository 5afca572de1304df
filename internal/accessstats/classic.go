package accessstats

import (
	"math"
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// classicHist is a classic-bucket histogram with a single writer (the
// app's pipeline goroutine) and concurrent readers (scrapes). It exists
// because client_golang's Histogram pays for concurrent writers on every
// observation (hot/cold swap, CAS loop on the sum); with one writer,
// plain atomic adds and stores are enough, which matters at millions of
// lines a second. Collect turns it into a const histogram.
type classicHist struct {
	desc   *prometheus.Desc
	labels []string
	upper  []float64
	counts []atomic.Uint64 // per bucket, not cumulative; last is +Inf
	count  atomic.Uint64
	sum    atomic.Uint64 // float64 bits; written by the single writer only
}

func newClassicHist(desc *prometheus.Desc, upper []float64, labels ...string) *classicHist {
	return &classicHist{desc: desc, labels: labels, upper: upper, counts: make([]atomic.Uint64, len(upper)+1)}
}

// observe must only be called from the single writer.
func (h *classicHist) observe(v float64) {
	i := sort.SearchFloat64s(h.upper, v) // first bucket with upper >= v
	h.counts[i].Add(1)
	h.sum.Store(math.Float64bits(math.Float64frombits(h.sum.Load()) + v))
	h.count.Add(1)
}

// metric snapshots the histogram. Count is read first, so buckets may be
// ahead of it by an observation in flight; the const histogram takes the
// cumulative bucket counts as read.
func (h *classicHist) metric() (prometheus.Metric, error) {
	count := h.count.Load()
	buckets := make(map[float64]uint64, len(h.upper))
	var cum uint64
	for i, u := range h.upper {
		cum += h.counts[i].Load()
		buckets[u] = min(cum, count)
	}
	return prometheus.NewConstHistogram(h.desc, count, math.Float64frombits(h.sum.Load()), buckets, h.labels...)
}
