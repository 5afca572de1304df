package receiver

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/benchtest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/audit"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/state"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/webhook"
)

const benchToken = "bench-token-3c5e7a9b"

// webHost is the app of the recorded Alertmanager 0.25 notification.
type webHost struct{ fakeHost }

func (h *webHost) Lookup(app string) (intent.AppView, bool) {
	if app != "web" {
		return intent.AppView{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return intent.AppView{Name: app, Workers: h.workers, DataFresh: true, Master: procinfo.Identity{PID: 4242, StartTicks: 1}}, true
}

// benchServer is the webhook handler in front of a running engine with its
// real durable parts (state file, journal, audit log, all fsync'd) in a
// temporary directory; only the effector is a stand-in that counts.
func benchServer(b *testing.B) (*httptest.Server, *fakeEffector, func()) {
	b.Helper()
	dir := b.TempDir()
	host := &webHost{fakeHost{workers: 2}}
	eff := &fakeEffector{host: &host.fakeHost}
	store, err := state.Open(filepath.Join(dir, "state.json"), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	aud, err := audit.Open(filepath.Join(dir, "audit.jsonl"), nil)
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(Options{
		Apps: []App{{Name: "web", Rules: policy.Rules{MinWorkers: 2, MaxWorkers: 8}}},
		Host: host, Effector: eff, Store: store, Audit: aud, Journal: NewJournal(filepath.Join(dir, "pending.json")),
	})
	if err != nil {
		b.Fatal(err)
	}
	h, err := webhook.New(webhook.Options{Token: []byte(benchToken), Known: e.Known, Identity: []string{"web1.example"}, Observer: e}, e)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { e.Run(ctx) })
	srv := httptest.NewUnstartedServer(h)
	webhook.Harden(srv.Config)
	srv.Start()
	return srv, eff, func() {
		srv.Close()
		cancel()
		wg.Wait()
		store.Close()
		aud.Close()
	}
}

func benchBody(b *testing.B) []byte {
	body, err := os.ReadFile("webhook/testdata/am-0.25-firing.json")
	if err != nil {
		b.Fatal(err)
	}
	return body
}

func post(client *http.Client, url string, body []byte) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/alerts", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+benchToken)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // read to the end, so the connection is reused
	resp.Body.Close()
	return resp.StatusCode, nil
}

// BenchmarkEngineDuplicate is one duplicate delivery through the webhook
// and the engine over loopback HTTP, after the first was recorded.
func BenchmarkEngineDuplicate(b *testing.B) {
	srv, eff, stop := benchServer(b)
	defer stop()
	body := benchBody(b)
	client := srv.Client()
	if code, err := post(client, srv.URL, body); err != nil || code != http.StatusOK {
		b.Fatalf("first delivery: %d %v", code, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if code, err := post(client, srv.URL, body); err != nil || code != http.StatusOK {
			b.Fatalf("%d %v", code, err)
		}
	}
	b.StopTimer()
	waitPerformed(b, eff)
}

func waitPerformed(b *testing.B, eff *fakeEffector) {
	deadline := time.Now().Add(10 * time.Second)
	for eff.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := eff.count(); n != 1 {
		b.Fatalf("%d actions, want exactly 1", n)
	}
}

// BenchmarkEngineDuplicates500PerSecond sends the same notification at 500
// requests a second for REFLEX_BENCH_SECONDS (default 5; BENCHMARKS.md
// uses 60) through the webhook and the running engine, latency measured
// from each request's scheduled send time, and checks that exactly one
// action was performed. It runs once whatever b.N is.
func BenchmarkEngineDuplicates500PerSecond(b *testing.B) {
	srv, eff, stop := benchServer(b)
	defer stop()
	body := benchBody(b)
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = benchtest.Senders
	benchtest.Paced(b, 500, func() bool {
		code, err := post(client, srv.URL, body)
		return err == nil && code == http.StatusOK
	})
	waitPerformed(b, eff)
	b.ReportMetric(float64(eff.count()), "actions")
}
