package gunicorntest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxBody bounds how much of a response body Get reads.
const maxBody = 1 << 20

func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             nil, // loopback only, whatever HTTP_PROXY says
			DialContext:       (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			DisableKeepAlives: true, // sync workers close anyway; one connection per request keeps GetAsync requests on separate workers
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Get requests path (which must start with "/") from this Gunicorn,
// bounded by Opts.ClientTimeout, and returns the status and body.
func (g *Gunicorn) Get(path string) (status int, body string, err error) {
	return g.get(path, g.Opts.ClientTimeout)
}

// GetAsync runs Get in a goroutine; the channel yields exactly one Result.
// Use it to hold several requests open at once.
func (g *Gunicorn) GetAsync(path string) <-chan Result {
	ch := make(chan Result, 1)
	go func() {
		start := time.Now()
		status, body, err := g.Get(path)
		ch <- Result{Status: status, Body: body, Err: err, Elapsed: time.Since(start)}
	}()
	return ch
}

func (g *Gunicorn) get(path string, timeout time.Duration) (int, string, error) {
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return 0, "", fmt.Errorf("gunicorntest: path %q must start with a single /", path)
	}
	u, err := url.Parse(g.BaseURL + path)
	if err != nil {
		return 0, "", fmt.Errorf("gunicorntest: %w", err)
	}
	if u.Host != g.Addr {
		return 0, "", fmt.Errorf("gunicorntest: %q does not address %s", path, g.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, "", fmt.Errorf("gunicorntest: %w", err)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("gunicorntest: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, string(b), fmt.Errorf("gunicorntest: GET %s: read body: %w", path, err)
	}
	return resp.StatusCode, string(b), nil
}

// Hold keeps n requests to path in flight on g, each started again as
// soon as it ends (a worker timeout aborts it), until stop is called; a
// cleanup of t calls stop too. The load tests' bound is stop: callers
// stop it when their step ends.
func (g *Gunicorn) Hold(t testing.TB, n int, path string) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				case <-g.GetAsync(path):
				}
			}
		}()
	}
	stop = sync.OnceFunc(func() { close(done); wg.Wait() })
	t.Cleanup(stop)
	return stop
}
