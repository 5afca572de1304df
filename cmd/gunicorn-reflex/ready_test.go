package main_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// Ready means the scrapes are true: the first scrape after /-/ready
// answers 200 already has every running app's /proc state, never a false
// reflex_proc_up 0 with no gunicorn_workers. Checked for an app configured
// by pidfile and for one found by discovery.
func TestFirstScrapeAfterReadyHasProcState(t *testing.T) {
	byPid := gunicorntest.Start(t, gunicorntest.Options{Workers: 2, Timeout: 20})
	discovered := gunicorntest.Start(t, gunicorntest.Options{Workers: 1, Name: "reflex-ready-disc"})
	for _, tc := range []struct {
		name, app string
		workers   float64
		config    string
	}{
		{"pidfile", "readyapp", 2, "apps:\n  - name: readyapp\n    pidfile: " + byPid.Pidfile + "\n"},
		{"discovery", "reflex-ready-disc", 1, "discovery:\n  enabled: true\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "reflex.yml")
			require.NoError(t, os.WriteFile(cfg, []byte(tc.config), 0o600))
			exp := reflextest.Start(t, "--config.file="+cfg) // returns once /-/ready answers 200
			m := exp.Scrape(t)
			up, ok := m.Value("reflex_proc_up", "app", tc.app)
			require.True(t, ok, "no reflex_proc_up for %s:\n%s", tc.app, m.Series("reflex_proc_up"))
			require.Equal(t, 1.0, up, "a running app is shown down right after ready:\n%s", m.Series("reflex_proc_up"))
			workers, ok := m.Value("gunicorn_workers", "app", tc.app)
			require.True(t, ok, "no gunicorn_workers right after ready")
			require.Equal(t, tc.workers, workers)
		})
	}
	_ = discovered
}
