// Package benchtest drives the paced benchmarks: one request scheduled
// every 1/rate seconds for REFLEX_BENCH_SECONDS, sent by a small pool of
// senders, each latency measured from the request's scheduled time (a
// server that falls behind shows as latency, not as a lower rate), and the
// latency percentiles and the process's peak RSS reported as benchmark
// metrics.
package benchtest

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Senders is how many requests are in flight at most: a client's
// MaxIdleConnsPerHost should be as many, so every sender keeps its
// connection.
const Senders = 8

// seconds is REFLEX_BENCH_SECONDS, how long a paced benchmark sends.
func seconds() int {
	if s, err := strconv.Atoi(os.Getenv("REFLEX_BENCH_SECONDS")); err == nil && s > 0 {
		return s
	}
	return 5
}

// Paced calls send rate times a second for REFLEX_BENCH_SECONDS (default
// 5; BENCHMARKS.md uses 60), the i-th call scheduled i/rate seconds after
// the start, from Senders goroutines, with the benchmark timer running
// only meanwhile. send reports whether its request succeeded; b fails when
// any did not. It reports p50-ms, p99-ms and max-ms of the latencies and
// peak-rss-MiB, and returns how many requests it sent and how long sending
// took. It runs once whatever b.N is.
func Paced(b *testing.B, rate int, send func() bool) (total int, elapsed time.Duration) {
	b.Helper()
	total = seconds() * rate
	sched := make(chan time.Time, total)
	lat := make([]time.Duration, 0, total)
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := 0
	for range Senders {
		wg.Go(func() {
			for at := range sched {
				ok := send()
				d := time.Since(at)
				mu.Lock()
				lat = append(lat, d)
				if !ok {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	b.ResetTimer()
	start := time.Now()
	for i := range total {
		at := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
		time.Sleep(time.Until(at))
		sched <- at
	}
	close(sched)
	wg.Wait()
	elapsed = time.Since(start)
	b.StopTimer()
	if failed > 0 {
		b.Fatalf("%d of %d requests failed", failed, total)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
	b.ReportMetric(peakRSSMiB(), "peak-rss-MiB")
	return total, elapsed
}

// peakRSSMiB is VmHWM from /proc/self/status: the peak resident set of the
// whole test process (client, server and handler together); 0 when it
// cannot be read.
func peakRSSMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}
