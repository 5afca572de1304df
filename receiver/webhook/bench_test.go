package webhook

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/benchtest"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// dedupIntake stands in for the engine in benchmarks: an in-memory set of
// idempotency keys, so the first delivery is queued and every later one is
// a duplicate. (The engine's durable store adds its own cost; its benchmark
// belongs to the engine.)
type dedupIntake struct {
	mu     sync.Mutex
	seen   map[string]struct{}
	queued int
	dups   int
}

func (d *dedupIntake) Submit(_ context.Context, alerts []intent.Alert, _ []Ignored) (Receipt, error) {
	var r Receipt
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range alerts {
		k := a.Key()
		if _, ok := d.seen[k]; ok {
			r.Deduplicated++
			continue
		}
		d.seen[k] = struct{}{}
		r.Queued++
	}
	d.queued += r.Queued
	d.dups += r.Deduplicated
	return r, nil
}

func benchPayload(b *testing.B) []byte {
	body, err := os.ReadFile("testdata/am-0.25-firing.json")
	if err != nil {
		b.Fatal(err)
	}
	return body
}

func benchHandler(b *testing.B, in Intake) *Handler {
	h, err := New(Options{
		Token:    []byte(testToken),
		Known:    func(app string) bool { return app == "web" },
		Identity: []string{"web1.example"},
	}, in)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkServeDuplicate is the handler's own cost per delivery of a real
// Alertmanager 0.25 notification that is a duplicate: auth, body read,
// decode, validation, Intake, JSON answer; no network.
func BenchmarkServeDuplicate(b *testing.B) {
	body := benchPayload(b)
	in := &dedupIntake{seen: map[string]struct{}{}}
	h := benchHandler(b, in)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r, _ := http.NewRequest(http.MethodPost, "/api/v1/alerts", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+testToken)
		w.Body.Reset()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("code %d", w.Code)
		}
	}
	if in.queued != 1 {
		b.Fatalf("queued %d actions, want exactly 1", in.queued)
	}
}

// BenchmarkDuplicateDeliveries500PerSecond sends the same notification at
// 500 requests a second over loopback HTTP (keep-alive, 8 client
// connections) for REFLEX_BENCH_SECONDS (default 5; the figure in
// BENCHMARKS.md uses 60) and reports latency percentiles measured from
// each request's scheduled send time (so a stall is not hidden by the
// pacing), the number queued (must be 1) and the process's peak RSS. It
// runs once whatever b.N is.
func BenchmarkDuplicateDeliveries500PerSecond(b *testing.B) {
	body := benchPayload(b)
	in := &dedupIntake{seen: map[string]struct{}{}}
	srv := httptest.NewUnstartedServer(benchHandler(b, in))
	Harden(srv.Config)
	srv.Start()
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = benchtest.Senders

	total, elapsed := benchtest.Paced(b, 500, func() bool {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/alerts", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if in.queued != 1 || in.dups != total-1 {
		b.Fatalf("queued %d, deduplicated %d; want 1 and %d", in.queued, in.dups, total-1)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(in.queued), "queued")
}
