package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Receiver configures the remediation receiver: the Alertmanager webhook
// served on the main listener under ReceiverPath, and what it may do to
// each app. It is off unless Enabled. A zero duration or count of an app's
// knobs means the receiver's default of the same name (README,
// "Remediation"); the worker bounds have no default.
type Receiver struct {
	Enabled bool `yaml:"enabled"`
	// BearerTokenFile holds the token Alertmanager sends in its
	// Authorization header (http_config.authorization.credentials_file).
	BearerTokenFile string `yaml:"bearer_token_file"`
	// Insecure allows running enabled without a token, only when the main
	// listener is on a loopback address (cmd checks the address).
	Insecure bool `yaml:"insecure"`
	// DryRun decides every alert and performs nothing.
	DryRun bool `yaml:"dry_run"`
	// KillSwitchFile: while a file exists at this path nothing is performed.
	KillSwitchFile string `yaml:"kill_switch_file"`
	// StateFile keeps idempotency keys, cooldowns, budgets, circuits and
	// desired counts across restarts; AuditLog gets one JSON line per
	// decision.
	StateFile string `yaml:"state_file"`
	AuditLog  string `yaml:"audit_log"`
	// HostLabel names the alert label that says which host an alert is
	// for; Identity lists the values that mean this host (default: the
	// host name). An alert without the label is for every host.
	HostLabel string   `yaml:"host_label"`
	Identity  []string `yaml:"identity"`
	// MaxBodyBytes caps a webhook request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// QueueSize bounds the alerts waiting for their app's worker; when it
	// is full a request gets 503 and nothing of it is recorded.
	QueueSize int `yaml:"queue_size"`
	// RateLimit actions, all apps together, within RateWindow.
	RateLimit  int      `yaml:"rate_limit"`
	RateWindow Duration `yaml:"rate_window"`
	// IdempotencyTTL is how long a decided alert's key is remembered.
	IdempotencyTTL Duration `yaml:"idempotency_ttl"`
	// VerifyTimeout bounds the wait for an action's effect.
	VerifyTimeout Duration `yaml:"verify_timeout"`
	// ReconcileInterval is how often each app's worker count is compared
	// with the desired one (a HUP from anyone resets it).
	ReconcileInterval Duration        `yaml:"reconcile_interval"`
	Guard             Guard           `yaml:"guard"`
	Apps              []RemediatedApp `yaml:"apps"`
}

// Guard tunes the "never make it worse" checks before a scale-up. Zero
// means the default; a value above 1 turns the check off.
type Guard struct {
	// CPUBusyAbove: all cores together at least this busy (0.95) refuse.
	CPUBusyAbove float64 `yaml:"cpu_busy_above"`
	// PGSaturationAbove: a PostgreSQL target whose client backends use at
	// least this share of the connections ordinary roles may use (0.9)
	// refuses.
	PGSaturationAbove float64 `yaml:"pg_saturation_above"`
}

// RemediatedApp is what the receiver may do to one app, by name (a
// configured or a discovered app).
type RemediatedApp struct {
	Name string `yaml:"name"`
	// Allow lists the actions the app permits; empty means scale_up and
	// scale_down.
	Allow      []string `yaml:"allow"`
	MinWorkers int      `yaml:"min_workers"`
	MaxWorkers int      `yaml:"max_workers"`
	Cooldown   Duration `yaml:"cooldown"`
	// Stabilization: no scale-down this long after a scale-up.
	Stabilization Duration `yaml:"stabilization"`
	// Grace: alerts that started before an action are ignored this long.
	Grace Duration `yaml:"grace"`
	// Budget reloads and restarts within BudgetWindow; one more opens the
	// circuit until a person resets it.
	Budget       int      `yaml:"budget"`
	BudgetWindow Duration `yaml:"budget_window"`
	// Unit is the app's systemd service, the only thing a restart restarts.
	Unit string `yaml:"unit"`
}

// Receiver defaults.
const (
	ReceiverPath              = "/api/v1/alerts"
	DefaultReceiverStateFile  = "/var/lib/gunicorn-reflex/receiver-state.json"
	DefaultReceiverAuditLog   = "/var/lib/gunicorn-reflex/audit.jsonl"
	DefaultReceiverHostLabel  = "instance"
	DefaultReceiverQueueSize  = 64
	DefaultReceiverMaxBody    = 1 << 20
	DefaultVerifyTimeout      = 30 * time.Second
	DefaultReconcileInterval  = 15 * time.Second
	maxReceiverQueueSize      = 10000
	maxReceiverBodyBytes      = 64 << 20
	minReceiverBodyBytes      = 1 << 10
	minReceiverReconcileEvery = time.Second
)

// ReceiverActions is the closed set of actions an app may allow.
var ReceiverActions = []string{"scale_up", "scale_down", "reload", "restart"}

var unitRE = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]{1,250}\.service$`)

// labelNameRE is Prometheus's label name syntax.
var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (r *Receiver) fillDefaults() {
	if r.StateFile == "" {
		r.StateFile = DefaultReceiverStateFile
	}
	if r.AuditLog == "" {
		r.AuditLog = DefaultReceiverAuditLog
	}
	if r.HostLabel == "" {
		r.HostLabel = DefaultReceiverHostLabel
	}
	if r.QueueSize == 0 {
		r.QueueSize = DefaultReceiverQueueSize
	}
	if r.MaxBodyBytes == 0 {
		r.MaxBodyBytes = DefaultReceiverMaxBody
	}
	if r.VerifyTimeout == 0 {
		r.VerifyTimeout = Duration(DefaultVerifyTimeout)
	}
	if r.ReconcileInterval == 0 {
		r.ReconcileInterval = Duration(DefaultReconcileInterval)
	}
}

// validateReceiver checks the receiver section. Each safety knob has its
// own message: a receiver that signals processes must not start on a
// config that leaves a bound or a credential out.
func (c *Config) validateReceiver() error {
	r := &c.Receiver
	if r.Enabled && r.BearerTokenFile == "" && !r.DryRun && !r.Insecure {
		return &Error{Field: "receiver.bearer_token_file", Msg: "required when the receiver is enabled (or set dry_run, or insecure with a loopback --web.listen-address)"}
	}
	for _, p := range []struct{ name, val string }{
		{"bearer_token_file", r.BearerTokenFile}, {"kill_switch_file", r.KillSwitchFile},
		{"state_file", r.StateFile}, {"audit_log", r.AuditLog},
	} {
		if p.val != "" && !filepath.IsAbs(p.val) {
			return &Error{Field: "receiver." + p.name, Msg: fmt.Sprintf("%q must be an absolute path", p.val)}
		}
	}
	if r.StateFile == r.AuditLog {
		return &Error{Field: "receiver.audit_log", Msg: "must not be the state_file"}
	}
	if !labelNameRE.MatchString(r.HostLabel) {
		return &Error{Field: "receiver.host_label", Msg: fmt.Sprintf("%q is not a label name", r.HostLabel)}
	}
	for i, id := range r.Identity {
		if id == "" || len(id) > 253 || strings.ContainsAny(id, "\x00\n\r") {
			return &Error{Field: fmt.Sprintf("receiver.identity[%d]", i), Msg: "must be a non-empty host identity of at most 253 bytes"}
		}
	}
	if r.QueueSize < 1 || r.QueueSize > maxReceiverQueueSize {
		return &Error{Field: "receiver.queue_size", Msg: fmt.Sprintf("must be between 1 and %d", maxReceiverQueueSize)}
	}
	if r.MaxBodyBytes < minReceiverBodyBytes || r.MaxBodyBytes > maxReceiverBodyBytes {
		return &Error{Field: "receiver.max_body_bytes", Msg: fmt.Sprintf("must be between %d and %d", minReceiverBodyBytes, maxReceiverBodyBytes)}
	}
	if r.RateLimit < 0 {
		return &Error{Field: "receiver.rate_limit", Msg: "must not be negative"}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"rate_window", r.RateWindow}, {"idempotency_ttl", r.IdempotencyTTL}, {"verify_timeout", r.VerifyTimeout}} {
		if d.v < 0 {
			return &Error{Field: "receiver." + d.name, Msg: "must not be negative"}
		}
	}
	if r.ReconcileInterval < Duration(minReceiverReconcileEvery) {
		return &Error{Field: "receiver.reconcile_interval", Msg: "must be at least 1s"}
	}
	if r.Guard.CPUBusyAbove < 0 {
		return &Error{Field: "receiver.guard.cpu_busy_above", Msg: "must not be negative"}
	}
	if r.Guard.PGSaturationAbove < 0 {
		return &Error{Field: "receiver.guard.pg_saturation_above", Msg: "must not be negative"}
	}
	if r.Enabled && len(r.Apps) == 0 {
		return &Error{Field: "receiver.apps", Msg: "the receiver is enabled but no app may be remediated: list at least one"}
	}
	seen := map[string]int{}
	for i, a := range r.Apps {
		if err := validateRemediatedApp(i, a, seen); err != nil {
			return err
		}
	}
	return nil
}

func validateRemediatedApp(i int, a RemediatedApp, seen map[string]int) error {
	field := func(f string) string { return fmt.Sprintf("receiver.apps[%d].%s", i, f) }
	if !appNameRE.MatchString(a.Name) {
		return &Error{Field: field("name"), Msg: fmt.Sprintf("%q must match %s", a.Name, appNameRE)}
	}
	if j, dup := seen[a.Name]; dup {
		return &Error{Field: field("name"), Msg: fmt.Sprintf("%q already used by receiver.apps[%d]", a.Name, j)}
	}
	seen[a.Name] = i
	for j, act := range a.Allow {
		if !slices.Contains(ReceiverActions, act) {
			return &Error{Field: field(fmt.Sprintf("allow[%d]", j)), Msg: fmt.Sprintf("%q is not one of %s", act, strings.Join(ReceiverActions, ", "))}
		}
	}
	allow := a.AllowedActions()
	scales := slices.Contains(allow, "scale_up") || slices.Contains(allow, "scale_down")
	if scales && (a.MinWorkers == 0 || a.MaxWorkers == 0) {
		return &Error{Field: field("max_workers"), Msg: "min_workers and max_workers are required when scale_up or scale_down is allowed"}
	}
	if a.MinWorkers < 0 || a.MaxWorkers < 0 {
		return &Error{Field: field("min_workers"), Msg: "must not be negative"}
	}
	if scales && a.MinWorkers > a.MaxWorkers {
		return &Error{Field: field("min_workers"), Msg: fmt.Sprintf("%d is above max_workers %d", a.MinWorkers, a.MaxWorkers)}
	}
	if slices.Contains(allow, "restart") && a.Unit == "" {
		return &Error{Field: field("unit"), Msg: "restart is allowed but no systemd unit is configured: a restart restarts only the unit named here"}
	}
	if a.Unit != "" && !unitRE.MatchString(a.Unit) {
		return &Error{Field: field("unit"), Msg: fmt.Sprintf("%q must be a systemd service name ending in .service", a.Unit)}
	}
	if a.Budget < 0 {
		return &Error{Field: field("budget"), Msg: "must not be negative"}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"cooldown", a.Cooldown}, {"stabilization", a.Stabilization}, {"grace", a.Grace}, {"budget_window", a.BudgetWindow}} {
		if d.v < 0 {
			return &Error{Field: field(d.name), Msg: "must not be negative"}
		}
	}
	return nil
}

// AllowedActions returns Allow, or the default (scale_up, scale_down) when
// it is empty.
func (a RemediatedApp) AllowedActions() []string {
	if len(a.Allow) == 0 {
		return []string{"scale_up", "scale_down"}
	}
	return a.Allow
}
