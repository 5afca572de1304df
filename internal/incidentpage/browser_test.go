package incidentpage

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// chromium starts a real headless Chromium (Debian's chromium) with a
// fresh profile and nothing that reaches the network on its own, and
// returns a browser context; the browser is stopped at cleanup.
func chromium(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("REFLEX_CHROMIUM")
	if path == "" {
		path = testenv.LookPath(t, "chromium")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI; the page is our own, on loopback
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1600),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	// Generous: a cold Chromium start on a loaded 2-core machine takes
	// seconds; this bounds a hang, it does not time the page.
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx() // closes the tab and the browser
		cancelAlloc()
	})
	return ctx
}

// artifactDir is $REFLEX_ARTIFACTS when set (CI keeps it), else the
// test's own temporary directory.
func artifactDir(t *testing.T) string {
	if dir := os.Getenv("REFLEX_ARTIFACTS"); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	return t.TempDir()
}

// inkJS counts the drawn (non-transparent) pixels of each chart canvas.
const inkJS = `Array.from(document.querySelectorAll('#chart canvas')).map(function (c) {
  var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;
  for (var i = 3; i < d.length; i += 4) { if (d[i] !== 0) { n++; } }
  return n;
})`

// markerInkJS counts, in the first panel's canvas, the pixels of the
// deploy marker's colour (#8250df) in the column where the marker at t
// belongs: proof the marker was drawn at its time, not just somewhere.
const markerInkJS = `(function (t) {
  var u = window.incidentCharts[0], c = u.ctx.canvas, x = Math.round(u.valToPos(t, 'x', true)), n = 0;
  var d = u.ctx.getImageData(x - 2, 0, 5, c.height).data;
  for (var i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - 0x82) < 40 && Math.abs(d[i+1] - 0x50) < 40 && Math.abs(d[i+2] - 0xdf) < 40 && d[i+3] > 100) { n++; }
  }
  return n;
})`

// TestIncidentPageInChromium loads the incident page in a real headless
// Chromium: the verdict and the evidence are in the DOM, the chart drew
// its three panels with ink on every canvas and the deploy marker at its
// time, and a screenshot is written as an artifact.
func TestIncidentPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	srv := testPages(t)
	ctx := chromium(t)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/incidents/inc-7"),
		chromedp.WaitVisible(chromedp.CSS(`#chart[data-drawn]`)),
	))
	verdict := run(ctx, t, chromedp.Text(chromedp.ID("verdict")))
	summary := run(ctx, t, chromedp.Text(chromedp.ID("summary")))
	action := run(ctx, t, chromedp.Text(chromedp.ID("action")))
	evidence := run(ctx, t, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#evidence li')).map(function (li) { return li.textContent; })`))
	drawn := run(ctx, t, chromedp.AttributeValue(chromedp.ID("chart"), "data-drawn"))
	ink := run(ctx, t, chromedp.Evaluate[[]int](inkJS))
	deployAt := opened.Add(-3 * time.Minute).Unix()
	markerInk := run(ctx, t, chromedp.Evaluate[int](markerInkJS+"("+strconv.FormatInt(deployAt, 10)+")"))
	png := run(ctx, t, chromedp.FullScreenshot(100))

	inc := lockIncident()
	require.Contains(t, verdict, "Database lock")
	require.Contains(t, verdict, "90% confidence")
	require.Equal(t, inc.Summary, strings.TrimSpace(summary))
	require.Contains(t, action, "pg_terminate_backend(4242)")
	require.Len(t, evidence, len(inc.Evidence))
	for i, e := range inc.Evidence {
		require.Contains(t, evidence[i], e.Text, "evidence item %d", i)
	}
	require.Equal(t, "3", drawn.Value, "workers, seconds and database panels")
	require.Len(t, ink, 3)
	for i, n := range ink {
		// An empty canvas has 0; the series, band and markers add tens
		// of thousands of pixels.
		require.Greater(t, n, 5000, "panel %d drew", i)
	}
	require.Greater(t, markerInk, 20, "the deploy marker is drawn at its time")

	path := filepath.Join(artifactDir(t), "incident-page.png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	require.Greater(t, len(png), 10000)
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// run runs one action and fails the test on its error.
func run[T any](ctx context.Context, t *testing.T, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

// scripts switches the page's JavaScript on or off.
func scripts(on bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !on})
		return err
	})
}

// TestIncidentPageWithJavaScriptOff: the same page with scripts disabled
// still shows the verdict, what to do, every evidence item and the
// decision; only the chart is missing, and the page says where its
// numbers are.
func TestIncidentPageWithJavaScriptOff(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	srv := testPages(t)
	ctx := chromium(t)

	require.NoError(t, chromedp.Do(ctx,
		scripts(false),
		chromedp.Navigate(srv.URL+"/incidents/inc-7"),
		chromedp.WaitVisible(chromedp.ID("verdict")),
	))
	verdict := run(ctx, t, chromedp.Text(chromedp.ID("verdict")))
	noscript := run(ctx, t, chromedp.Text(chromedp.ID("chart")))
	decisions := run(ctx, t, chromedp.Text(chromedp.ID("decisions")))
	evidence := run(ctx, t, chromedp.Nodes(chromedp.CSSAll(`#evidence li`)))
	png := run(ctx, t, chromedp.FullScreenshot(100))
	// The probes below are the test's own script, so scripts go back on
	// only after the page has been read as it was without them.
	require.NoError(t, chromedp.Do(ctx, scripts(true)))
	canvases := run(ctx, t, chromedp.Evaluate[int](`document.querySelectorAll('#chart canvas').length`))
	drawn := run(ctx, t, chromedp.Evaluate[bool](`document.getElementById('chart').hasAttribute('data-drawn')`))

	require.Contains(t, verdict, "Database lock")
	require.Len(t, evidence, len(lockIncident().Evidence))
	require.Contains(t, decisions, "verdict database_lock: more workers would wait on the same lock")
	require.Contains(t, noscript, "The chart needs JavaScript")
	require.Zero(t, canvases, "no script of the page ran")
	require.False(t, drawn)
	require.NoError(t, os.WriteFile(filepath.Join(artifactDir(t), "incident-page-nojs.png"), png, 0o644))
}

// TestListPageInChromium: the list links to the incident page.
func TestListPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	srv := testPages(t)
	ctx := chromium(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/incidents"),
		chromedp.WaitVisible(chromedp.CSS(`table.incidents`)),
	))
	rows := run(ctx, t, chromedp.Evaluate[int](`document.querySelectorAll('table.incidents tbody tr').length`))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="/incidents/inc-7"]`)),
		chromedp.WaitVisible(chromedp.ID("verdict")),
	))
	verdict := run(ctx, t, chromedp.Text(chromedp.ID("verdict")))
	require.Equal(t, 2, rows)
	require.Contains(t, verdict, "Database lock")
}

// TestVerdictHistoryInChromium: in a real headless Chromium, under the
// page's Content-Security-Policy, with JavaScript on and off, the verdict
// history is in the DOM (the first cause with its span and summary, the
// cap's note, the current one marked) and each decision row names the
// verdict it was taken under.
func TestVerdictHistoryInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	srv := testServer(t, fakeSource{twoFaults()})
	ctx := chromium(t)
	for _, js := range []bool{false, true} {
		ready := chromedp.WaitVisible(chromedp.ID("causes"))
		if js {
			ready = chromedp.WaitVisible(chromedp.CSS(`#chart[data-drawn]`))
		}
		require.NoError(t, chromedp.Do(ctx, scripts(js), chromedp.Navigate(srv.URL+"/incidents/inc-9"), ready))
		items := run(ctx, t, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#causes li')).map(function (li) { return li.textContent; })`))
		current := run(ctx, t, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#causes li.current')).map(function (li) { return li.textContent; })`))
		rows := run(ctx, t, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#decisions tbody tr')).map(function (tr) { return tr.textContent; })`))
		bold := run(ctx, t, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('#causes li.current')).fontWeight`))
		// Read with the page's scripts as they were; the probe below is
		// the test's own script.
		require.NoError(t, chromedp.Do(ctx, scripts(true)))
		drawn := run(ctx, t, chromedp.Evaluate[bool](`document.getElementById('chart').hasAttribute('data-drawn')`))

		require.Equal(t, js, drawn, "the page's scripts ran only with JavaScript on")
		require.Len(t, items, 3, "js %v: %q", js, items)
		require.Equal(t, "10:05:00–10:05:07 External call (80%): 2 stuck worker(s) of shop wait on a socket to 127.0.0.1:9999, which is not a known database.", items[0])
		require.Equal(t, "1 more verdict(s) left out by the cap", items[1])
		require.Equal(t, []string{"10:05:07–10:08:00 Database slow query (90%) · the verdict above"}, current)
		require.Equal(t, "600", bold, "page.css is applied under the CSP")
		require.Len(t, rows, 2)
		require.Contains(t, rows[0], "acted")
		require.Contains(t, rows[0], "External call")
		require.Contains(t, rows[1], "refused")
		require.Contains(t, rows[1], "Database slow query")
	}
	png := run(ctx, t, chromedp.FullScreenshot(100))
	path := filepath.Join(artifactDir(t), "incident-page-history.png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}
