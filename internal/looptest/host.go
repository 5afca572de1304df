// Package looptest owns the whole remediation loop on one machine for
// end-to-end tests, demos and fleet tests: a real Gunicorn (through
// internal/gunicorntest) followed by the real gunicorn-reflex binary with
// the receiver enabled (through internal/reflextest), a real Prometheus
// loading the rule files of alerts/ with 1 s scrape and evaluation
// intervals, and a real Alertmanager (group_wait 1s) routing every alert
// with a reflex_action label to the receivers with their bearer token
// (both through internal/promtest, which runs them). All of it listens on
// loopback addresses (127.0.0.1 by default; 127.0.0.2 and up for a second
// "host"), keeps its files in temporary directories, and is stopped by pid
// in test cleanups.
//
// It starts programs and sends signals, so it is a test harness: production
// code never imports it (internal/importrules enforces that).
package looptest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/promtest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// DefaultApp is the app name a Host gives its Gunicorn when
// HostOptions.App is empty.
const DefaultApp = "shop"

// HostOptions configures one app host: a Gunicorn and the gunicorn-reflex
// in front of it. The zero value is a valid configuration.
type HostOptions struct {
	// Addr is the loopback address gunicorn-reflex listens on (its
	// instance label in Prometheus); default 127.0.0.1. Gunicorn itself
	// always binds 127.0.0.1: the exporter reads its logs and /proc, not
	// its socket.
	Addr string
	// App is the app name (Gunicorn --name); default DefaultApp.
	App string
	// Workers is Gunicorn's --workers; default 2.
	Workers int
	// Timeout is Gunicorn's --timeout in seconds; default 2.
	Timeout int
	// MinWorkers and MaxWorkers bound the receiver's scaling; defaults 2
	// and 4.
	MinWorkers, MaxWorkers int
	// Cooldown, Stabilization and Grace are the app's receiver knobs as
	// YAML durations; empty leaves the receiver's default.
	Cooldown, Stabilization, Grace string
	// Identity lists the values of the alert's instance label that mean
	// this host; default the exporter's own host:port, which is the
	// instance Prometheus gives its series.
	Identity []string
	// DryRun makes the receiver decide and audit without acting.
	DryRun bool
	// GunicornEnv is added to Gunicorn's environment (for example
	// gunicorntest.PgDSNEnv for the /db views).
	GunicornEnv []string
	// ExtraConfig is YAML appended to the generated config at top level
	// (for example a postgres: section).
	ExtraConfig string
	// Token is the receiver's bearer token; default a fixed test token.
	Token string
	// LogPollInterval is logs.poll_interval; empty leaves the exporter's
	// default (250ms), so measured latencies are those of a default setup.
	LogPollInterval string
}

// Host is one running app host.
type Host struct {
	Opts HostOptions // with defaults filled in
	G    *gunicorntest.Gunicorn
	Exp  *reflextest.Exporter
	// Instance is the exporter's host:port, the instance label Prometheus
	// puts on its series and alerts.
	Instance string
	// Dir holds Config, the TokenFile, the receiver's state and AuditLog.
	Dir, Config, TokenFile, AuditLog string
}

// DefaultToken is the receiver's bearer token when HostOptions.Token is
// empty.
const DefaultToken = "looptest-token-3f9a0c2e"

// StartHost starts Gunicorn and then gunicorn-reflex with the receiver
// enabled, and waits until the exporter samples the app's master. Both are
// stopped by pid in cleanups. It skips (or, under REFLEX_REQUIRE_REAL=1,
// fails) when gunicorn is missing.
func StartHost(t testing.TB, o HostOptions) *Host {
	t.Helper()
	o = hostDefaults(o)
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: o.Workers, Timeout: o.Timeout, Name: o.App, Env: o.GunicornEnv})
	h := &Host{Opts: o, G: g, Dir: t.TempDir()}
	h.TokenFile = filepath.Join(h.Dir, "receiver.token")
	h.AuditLog = filepath.Join(h.Dir, "audit.jsonl")
	h.Config = filepath.Join(h.Dir, "reflex.yml")
	if err := os.WriteFile(h.TokenFile, []byte(o.Token+"\n"), 0o600); err != nil {
		t.Fatalf("looptest: %v", err)
	}
	// The identity must name the exporter's port before it starts: pick
	// the port here, for the config and the listen address.
	h.Instance = promtest.FreeAddr(t, o.Addr)
	if len(o.Identity) == 0 {
		h.Opts.Identity = []string{h.Instance}
	}
	if err := os.WriteFile(h.Config, []byte(h.config()), 0o600); err != nil {
		t.Fatalf("looptest: %v", err)
	}
	h.Exp = reflextest.StartOn(t, h.Instance, nil, "--config.file="+h.Config)
	t.Cleanup(func() {
		if t.Failed() {
			audit, _ := os.ReadFile(h.AuditLog)
			t.Logf("looptest host %s: gunicorn master %d, workers %v\ngunicorn-reflex log (tail):\n%s\naudit log:\n%s",
				h.Instance, g.MasterPID(), g.WorkerPIDs(), h.Exp.Stderr.Tail(60), audit)
		}
	})
	h.Exp.WaitValue(t, 20*time.Second, 1, "reflex_proc_up", "app", o.App)
	return h
}

func hostDefaults(o HostOptions) HostOptions {
	if o.Addr == "" {
		o.Addr = "127.0.0.1"
	}
	if o.App == "" {
		o.App = DefaultApp
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Timeout == 0 {
		o.Timeout = 2
	}
	if o.MinWorkers <= 0 {
		o.MinWorkers = 2
	}
	if o.MaxWorkers <= 0 {
		o.MaxWorkers = 4
	}
	if o.Token == "" {
		o.Token = DefaultToken
	}
	return o
}

// config is the gunicorn-reflex configuration of the host. The CPU guard
// is off: a shared CI machine may be busy, and a refusal for a busy CPU is
// the guard's own test, not the loop's.
func (h *Host) config() string {
	o := h.Opts
	var b strings.Builder
	fmt.Fprintf(&b, `apps:
  - name: %s
    error_log: %s
    access_log: %s
    pidfile: %s
    timeout: %ds
receiver:
  enabled: true
  dry_run: %t
  bearer_token_file: %s
  state_file: %s
  audit_log: %s
  identity: [%s]
  reconcile_interval: 1s
  guard:
    cpu_busy_above: 1.01
  apps:
    - name: %s
      min_workers: %d
      max_workers: %d
`, o.App, h.G.ErrorLog, h.G.AccessLog, h.G.Pidfile, o.Timeout, o.DryRun, h.TokenFile,
		filepath.Join(h.Dir, "receiver-state.json"), h.AuditLog, quoteList(o.Identity), o.App, o.MinWorkers, o.MaxWorkers)
	for k, v := range map[string]string{"cooldown": o.Cooldown, "stabilization": o.Stabilization, "grace": o.Grace} {
		if v != "" {
			fmt.Fprintf(&b, "      %s: %s\n", k, v)
		}
	}
	if o.LogPollInterval != "" {
		fmt.Fprintf(&b, "logs:\n  poll_interval: %s\n", o.LogPollInterval)
	}
	if o.ExtraConfig != "" {
		b.WriteString(o.ExtraConfig)
		if !strings.HasSuffix(o.ExtraConfig, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// WebhookURL is the receiver's Alertmanager webhook on the exporter's
// listener.
func (h *Host) WebhookURL() string { return h.Exp.URL + config.ReceiverPath }

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}
