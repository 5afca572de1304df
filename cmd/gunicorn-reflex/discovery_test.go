package main_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// logLines returns the exporter's log lines that contain every one of subs.
func logLines(exp *reflextest.Exporter, subs ...string) []string {
	var out []string
	for _, l := range strings.Split(exp.Stderr.String(), "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

// timeoutSource returns the source label of app's
// gunicorn_timeout_source_info, waiting (bounded) for the first /proc
// sample to export it.
func timeoutSource(t *testing.T, exp *reflextest.Exporter, app string) string {
	t.Helper()
	const name = "gunicorn_timeout_source_info"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		m := exp.Scrape(t)
		var sources []string
		if fam, ok := m.Families[name]; ok {
			for _, s := range fam.GetMetric() {
				labels := map[string]string{}
				for _, lp := range s.GetLabel() {
					labels[lp.GetName()] = lp.GetValue()
				}
				if labels["app"] == app {
					sources = append(sources, labels["source"])
				}
			}
		}
		if len(sources) > 0 || time.Now().After(deadline) {
			require.Len(t, sources, 1, "one %s series for %s:\n%s", name, app, m.Series(name))
			return sources[0]
		}
	}
}

// A titled master's discovery findings are logged once each, at the level
// they deserve, even when the note set changes (a copytruncate rotation
// empties its logs, which adds "is empty" notes); no note about a pidfile
// the app may not use. A reload then logs the number of apps followed,
// discovered ones included.
func TestDiscoveryNotesOncePerMaster(t *testing.T) {
	const app = "reflex-notes-titled"
	g := gunicorntest.Start(t, gunicorntest.Options{Name: app, Workers: 1})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("apps:\n  - name: configured\n    error_log: "+filepath.Join(dir, "c.log")+
		"\ndiscovery:\n  enabled: true\n  interval: 1s\n"), 0o600))
	// Start returned once the worker booted, and Gunicorn retitles its
	// master before it starts workers: every pass sees the title.
	exp := reflextest.Start(t, "--config.file="+cfg)
	exp.WaitValue(t, 10*time.Second, 1, "reflex_log_file_up", "app", app, "log", "error")
	tag := "app=" + app
	if len(logLines(exp, tag, "argv overwritten by setproctitle")) == 0 {
		t.Skipf("Gunicorn is not titled here (python3-setproctitle missing?):\n%s", exp.Stderr.Tail(30))
	}

	require.NoError(t, os.Truncate(g.ErrorLog, 0))
	require.NoError(t, os.Truncate(g.AccessLog, 0))
	deadline := time.Now().Add(15 * time.Second)
	for len(logLines(exp, tag, "is empty: chosen by its name")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no pass noticed the emptied logs:\n%s", exp.Stderr.Tail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// What is exported about the timeout and what is logged agree for the
	// master's whole life, whichever pass saw it first: discovery keeps what
	// a pass read from the command line before setproctitle overwrote it.
	// The "timeout not visible" note is said exactly once, at WARN, iff the
	// exported source is "assumed".
	source := timeoutSource(t, exp, app)
	timeout := logLines(exp, tag, "discovery: timeout not visible")
	discoveryLog := strings.Join(logLines(exp, "discovery"), "\n")
	if source == "assumed" {
		require.Len(t, timeout, 1, "source=%q: the note is logged once per master:\n%s", source, discoveryLog)
		require.Contains(t, timeout[0], "level=WARN", "the assumed timeout needs the user's action")
	} else {
		require.Empty(t, timeout, "source=%q: no note for a timeout that was found:\n%s", source, discoveryLog)
	}
	require.Equal(t, source, timeoutSource(t, exp, app), "the source does not change between passes")
	for _, info := range []string{"log paths taken from open files", "access log format not visible", "error log " + g.ErrorLog + " is empty"} {
		lines := logLines(exp, tag, info)
		require.Len(t, lines, 1, info)
		require.Contains(t, lines[0], "level=INFO", info)
	}
	require.Empty(t, logLines(exp, "pidfile not visible"))
	require.Len(t, logLines(exp, tag, "level=WARN", "discovery:"), len(timeout), "only the timeout asks for action")

	resp, err := http.Post(exp.URL+"/-/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// The exporter's stderr reaches the test through a pipe: the line
	// written before the 200 may arrive a moment after it.
	var reloaded []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if reloaded = logLines(exp, "configuration reloaded"); len(reloaded) > 0 || time.Now().After(deadline) {
			break
		}
	}
	require.Len(t, reloaded, 1)
	m := regexp.MustCompile(` apps=(\d+) apps_configured=1\b`).FindStringSubmatch(reloaded[0])
	require.NotNil(t, m, reloaded[0])
	n, _ := strconv.Atoi(m[1])
	require.GreaterOrEqual(t, n, 2, "the configured app and the discovered one are followed: %s", reloaded[0])
}
