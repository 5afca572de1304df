package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// TestPrometheusExampleConfig checks deploy/prometheus.example.yml with
// promtool the way the README installs it: the file with the rules copied
// into gunicorn-reflex/ next to it, so its rule_files glob finds every
// shipped file.
func TestPrometheusExampleConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	b, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus.example.yml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, b, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "gunicorn-reflex"), 0o755))
	files := ruleFiles(t)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "gunicorn-reflex", f), b, 0o644))
	}
	out := promtool(t, "check", "config", cfg)
	require.Contains(t, out, "is valid prometheus config file syntax")
	require.Equal(t, len(files), strings.Count(out, " rules found"), "every rule file is loaded and checked:\n%s", out)
}

func TestAlertmanagerExampleConfig(t *testing.T) {
	amtool := testenv.LookPath(t, "amtool")
	cfg := filepath.Join("..", "deploy", "alertmanager.example.yml")
	out, err := exec.Command(amtool, "check-config", cfg).CombinedOutput()
	require.NoError(t, err, "amtool check-config:\n%s", out)
	require.Contains(t, string(out), "SUCCESS")

	// The route sends remediation alerts to a receiver with auth, grouped
	// by what the receiver acts on, and resolved alerts too, at the path
	// the exporter serves the webhook on.
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.Regexp(t, `url: https?://[^/\s]+`+regexp.QuoteMeta(config.ReceiverPath)+`\n`, string(b))
	for _, want := range []string{
		`reflex_action=~"scale_up|scale_down|reload|restart"`,
		"credentials_file:",
		"send_resolved: true",
		"group_by: [alertname, app, instance, reflex_action]",
	} {
		require.Contains(t, string(b), want)
	}
}
