package config

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The receiver is off unless enabled, and its defaults are filled.
func TestReceiverOffByDefault(t *testing.T) {
	cfg, err := Parse([]byte("{}\n"))
	require.NoError(t, err)
	require.False(t, cfg.Receiver.Enabled)
	require.Equal(t, DefaultReceiverStateFile, cfg.Receiver.StateFile)
	require.Equal(t, "instance", cfg.Receiver.HostLabel)
	require.Equal(t, DefaultReceiverQueueSize, cfg.Receiver.QueueSize)
	require.Equal(t, DefaultVerifyTimeout, cfg.Receiver.VerifyTimeout.D())
}

func TestReceiverValidConfig(t *testing.T) {
	cfg, err := Parse([]byte(`receiver:
  enabled: true
  bearer_token_file: /etc/gunicorn-reflex/receiver.token
  identity: [web-1, "web-1:9841"]
  apps:
    - name: shop
      min_workers: 2
      max_workers: 6
      allow: [scale_up, scale_down, reload, restart]
      unit: gunicorn-shop.service
      cooldown: 2m
    - name: api
      allow: [reload]
`))
	require.NoError(t, err)
	require.Len(t, cfg.Receiver.Apps, 2)
	require.Equal(t, 2*time.Minute, cfg.Receiver.Apps[0].Cooldown.D())
	require.Equal(t, []string{"scale_up", "scale_down"}, RemediatedApp{}.AllowedActions())
}

// Every safety knob of the receiver has a row: the config is refused, with
// the field and the line at fault.
func TestReceiverSafetyKnobs(t *testing.T) {
	const on = "receiver:\n  enabled: true\n  bearer_token_file: /t\n"
	const app = on + "  apps:\n    - name: shop\n"
	cases := []struct {
		name, yaml string
		line       int
		field, msg string
	}{
		{"enabled without a credential", "receiver:\n  enabled: true\n  apps:\n    - name: a\n      allow: [reload]\n", 1, "receiver.bearer_token_file", "required when the receiver is enabled"},
		{"enabled with no app", on, 1, "receiver.apps", "no app may be remediated"},
		{"scale allowed with no bounds", app, 5, "receiver.apps[0].max_workers", "min_workers and max_workers are required"},
		{"scale allowed with only max", app + "      max_workers: 4\n", 6, "receiver.apps[0].max_workers", "required"},
		{"min above max", app + "      min_workers: 5\n      max_workers: 4\n", 6, "receiver.apps[0].min_workers", "above max_workers"},
		{"negative min", app + "      min_workers: -1\n      max_workers: 4\n", 6, "receiver.apps[0].min_workers", "negative"},
		{"restart allowed with no unit", app + "      allow: [restart]\n", 5, "receiver.apps[0].unit", "no systemd unit"},
		{"unit not a service", app + "      allow: [restart]\n      unit: 'x; rm -rf /'\n", 7, "receiver.apps[0].unit", "ending in .service"},
		{"unknown action", app + "      allow: [scale_up, kill]\n      min_workers: 1\n      max_workers: 2\n", 6, "receiver.apps[0].allow[1]", `"kill" is not one of`},
		{"negative cooldown", app + "      allow: [reload]\n      cooldown: -1m\n", 7, "receiver.apps[0].cooldown", "not a valid duration"},
		{"negative budget", app + "      allow: [reload]\n      budget: -1\n", 7, "receiver.apps[0].budget", "negative"},
		{"bad app name", on + "  apps:\n    - name: '../x'\n      allow: [reload]\n", 5, "receiver.apps[0].name", "must match"},
		{"duplicate app", on + "  apps:\n    - name: a\n      allow: [reload]\n    - name: a\n      allow: [reload]\n", 7, "receiver.apps[1].name", "already used"},
		{"relative token file", "receiver:\n  bearer_token_file: token\n", 2, "receiver.bearer_token_file", "absolute path"},
		{"relative state file", "receiver:\n  state_file: state.json\n", 2, "receiver.state_file", "absolute path"},
		{"audit log is the state file", "receiver:\n  state_file: /x\n  audit_log: /x\n", 3, "receiver.audit_log", "must not be the state_file"},
		{"bad host label", "receiver:\n  host_label: 'a-b'\n", 2, "receiver.host_label", "not a label name"},
		{"empty identity", "receiver:\n  identity: ['']\n", 2, "receiver.identity[0]", "non-empty"},
		{"queue too large", "receiver:\n  queue_size: 1000000\n", 2, "receiver.queue_size", "between 1 and"},
		{"negative queue", "receiver:\n  queue_size: -1\n", 2, "receiver.queue_size", "between 1 and"},
		{"body cap too small", "receiver:\n  max_body_bytes: 10\n", 2, "receiver.max_body_bytes", "between"},
		{"negative rate limit", "receiver:\n  rate_limit: -2\n", 2, "receiver.rate_limit", "negative"},
		{"reconcile too often", "receiver:\n  reconcile_interval: 10ms\n", 2, "receiver.reconcile_interval", "at least 1s"},
		{"negative cpu guard", "receiver:\n  guard:\n    cpu_busy_above: -1\n", 3, "receiver.guard.cpu_busy_above", "negative"},
		{"unknown receiver key", "receiver:\n  dryrun: true\n", 2, "receiver", `did you mean "dry_run"?`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err)
			var ce *Error
			require.True(t, errors.As(err, &ce), "want *config.Error, got %T: %v", err, err)
			require.Equal(t, tc.line, ce.Line, "line in %q", err)
			require.Equal(t, tc.field, ce.Field, "%v", err)
			require.Contains(t, ce.Msg, tc.msg)
		})
	}
}

// Dry-run and insecure (loopback, checked by cmd) may run without a token.
func TestReceiverWithoutTokenOnlyDryRunOrInsecure(t *testing.T) {
	for _, extra := range []string{"  dry_run: true\n", "  insecure: true\n"} {
		_, err := Parse([]byte("receiver:\n  enabled: true\n" + extra + "  apps:\n    - name: a\n      allow: [reload]\n"))
		require.NoError(t, err, extra)
	}
}
