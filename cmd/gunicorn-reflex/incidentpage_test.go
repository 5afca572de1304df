package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

var chartSamples = regexp.MustCompile(`data-series="(\d+)"`)

// Through the binary, on a real Gunicorn: after a HUP reload, a request
// past the 2 s timeout opens an incident, and its page, served by the
// daemon and loaded in a real headless Chromium, shows the engine's
// verdict and every evidence item, lists the reload as a deploy marker and
// draws the chart from the daemon's own samples (busy workers, heartbeat
// age, the timeout) with the marker on it. The screenshot is an artifact.
func TestIncidentPageThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Gunicorn, the exporter and a browser")
	}
	chrome := os.Getenv("REFLEX_CHROMIUM")
	if chrome == "" {
		chrome = testenv.LookPath(t, "chromium")
	}
	const format = `%(h)s %(t)s "%(r)s" %(s)s %(B)s D=%(D)s`
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 2, Timeout: 2, AccessLogFormat: format})
	cfg := filepath.Join(t.TempDir(), "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`apps:
  - name: paged
    timeout: 2s
    pidfile: %s
    error_log: %s
    access_log: %s
    access_log_format: '%s'
logs:
  poll_interval: 100ms
`, g.Pidfile, g.ErrorLog, g.AccessLog, format)), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)
	exp.WaitValue(t, 15*time.Second, 1, "reflex_proc_up", "app", "paged")
	for range 3 {
		status, _, err := g.Get("/ok")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
	}

	require.NoError(t, g.Signal(syscall.SIGHUP))
	exp.WaitValue(t, 15*time.Second, 1, "gunicorn_master_reloads_total", "app", "paged")
	// The reload's new workers must be up before the request is sent to one.
	exp.WaitValue(t, 15*time.Second, 2, "gunicorn_workers_by_activity", "app", "paged", "activity", "idle")

	stuck := g.GetAsync("/sleep?s=8")
	var inc incident.Incident
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got := getIncidents(t, exp, "?app=paged"); len(got) > 0 {
			inc = got[0]
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	<-stuck // the worker was killed at its timeout; the request failed
	require.NotEmpty(t, inc.ID, "an incident opened:\n%s", exp.Stderr.Tail(30))

	// The daemon samples its numbers every 2 s: wait for a chart of at
	// least six samples, so it has lines, not a dot.
	var page string
	deadline = time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		status, body, err := exp.Get("/incidents/" + inc.ID)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, body)
		page = body
		if m := chartSamples.FindStringSubmatch(body); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 6 {
				break
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	require.Regexp(t, `data-series="([6-9]|\d\d+)"`, page, "the daemon sampled the app around the incident")
	inc = getIncidents(t, exp, "?app=paged")[0]
	require.Contains(t, page, `<span class="kind">deploy</span> HUP reload</li>`, "the reload is a marker")

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-extensions", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1600))
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	defer cancelCtx()
	// Bounds a hang of the browser; nothing here is timed.
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(exp.URL+"/incidents/"+inc.ID),
		chromedp.WaitVisible(chromedp.CSS(`#chart[data-drawn]`)),
	))
	cause, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("cause")))
	require.NoError(t, err)
	summary, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("summary")))
	require.NoError(t, err)
	items, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#evidence li')).map(function (li) { return li.textContent; })`))
	require.NoError(t, err)
	ink, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`Array.from(document.querySelectorAll('#chart canvas')).map(function (c) {
  var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;
  for (var i = 3; i < d.length; i += 4) { if (d[i] !== 0) { n++; } }
  return n;
})`))
	require.NoError(t, err)
	markers, err := chromedp.Run(ctx, chromedp.Evaluate[int](`JSON.parse(document.getElementById('chart-data').textContent).markers.length`))
	require.NoError(t, err)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)

	title := strings.ReplaceAll(string(inc.Cause), "_", " ")
	require.Equal(t, strings.ToUpper(title[:1])+title[1:], cause)
	require.Equal(t, inc.Summary, strings.TrimSpace(summary))
	require.GreaterOrEqual(t, len(items), len(inc.Evidence))
	joined := strings.Join(items, "\n")
	require.Contains(t, joined, "worker_timeout", "the WORKER TIMEOUT is evidence on the page")
	require.GreaterOrEqual(t, len(ink), 2, "at least the workers and seconds panels")
	require.GreaterOrEqual(t, markers, 1, "the reload is on the chart")
	for i, n := range ink {
		require.Greater(t, n, 5000, "panel %d drew", i)
	}

	dir := os.Getenv("REFLEX_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, "incident-page-binary.png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s; verdict %s: %s", path, inc.Cause, inc.Summary)
}
