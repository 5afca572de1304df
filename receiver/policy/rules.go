package policy

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// Default knob values. They follow the safety patterns of established
// remediators: a 5 minute scale-up period and a 10 minute scale-down
// stabilisation (a Kubernetes HPA's default behaviour is a 300 s window),
// at most 2 restarts in 30 minutes before giving up until a person looks
// (monit's "N restarts within M cycles then unmonitor", systemd's
// StartLimitBurst, supervisord's FATAL), a grace period as long as the
// cooldown, and 6 actions an hour for the whole host.
const (
	DefaultCooldown      = 5 * time.Minute
	DefaultStabilization = 10 * time.Minute
	DefaultGrace         = 5 * time.Minute
	DefaultBudget        = 2
	DefaultBudgetWindow  = 30 * time.Minute
	DefaultRateLimit     = 6
	DefaultRateWindow    = time.Hour
	// DefaultKeyTTL outlasts one notification's deliveries: Alertmanager
	// retries a webhook until max(group_interval, 10s) plus 15 s per HA
	// peer position has passed (group_interval defaults to 5 m).
	DefaultKeyTTL = 15 * time.Minute
	// DefaultMaxKeys is far more distinct alerts than one host sees in a
	// key TTL, and keeps the saved state well under a megabyte.
	DefaultMaxKeys = 10000
)

// DefaultAllow is what an app permits when its rules list nothing: scaling
// only. Reload and restart replace workers or the master and must be
// allowed explicitly (restart also needs a systemd unit in the config).
var DefaultAllow = []intent.Action{intent.ScaleUp, intent.ScaleDown}

// Rules are one app's remediation rules. A zero duration or count means
// the default of the same name (see WithDefaults); MinWorkers and
// MaxWorkers have no default and are required when a scale action is
// allowed.
type Rules struct {
	// MinWorkers and MaxWorkers bound the worker count the receiver scales
	// to: it never sends a TTIN at MaxWorkers or a TTOU at MinWorkers.
	MinWorkers int `json:"min_workers"`
	MaxWorkers int `json:"max_workers"`
	// Allow lists the actions the app permits; nil means DefaultAllow.
	Allow []intent.Action `json:"allow"`
	// Cooldown is the least time between two actions of the same kind on
	// the app.
	Cooldown time.Duration `json:"cooldown"`
	// Stabilization is how long after a scale-up (asked for or performed)
	// a scale-down is refused.
	Stabilization time.Duration `json:"stabilization"`
	// Grace is how long after an action alerts that started before it are
	// ignored: their evidence predates the action's effect.
	Grace time.Duration `json:"grace"`
	// Budget reloads and restarts together may act within BudgetWindow;
	// the next one opens the circuit until a person resets it.
	Budget       int           `json:"budget"`
	BudgetWindow time.Duration `json:"budget_window"`
}

// Global are the rules for the whole receiver.
type Global struct {
	// DryRun decides everything and performs nothing (outcome dry_run).
	DryRun bool `json:"dry_run"`
	// RateLimit actions, all apps together, may act within RateWindow.
	RateLimit  int           `json:"rate_limit"`
	RateWindow time.Duration `json:"rate_window"`
	// KeyTTL is how long an idempotency key is remembered. It must outlast
	// the retries of one notification (see DefaultKeyTTL); a repeat_interval
	// re-send after it is decided afresh (and still meets the cooldown).
	KeyTTL time.Duration `json:"key_ttl"`
	// MaxKeys bounds the idempotency keys kept, so a flood of distinct
	// alerts cannot grow the state without end; past it the keys closest
	// to expiry are forgotten first (the cooldown still holds for them).
	MaxKeys int `json:"max_keys"`
}

// WithDefaults returns r with every zero knob replaced by its default.
func (r Rules) WithDefaults() Rules {
	if r.Allow == nil {
		r.Allow = slices.Clone(DefaultAllow)
	}
	if r.Cooldown == 0 {
		r.Cooldown = DefaultCooldown
	}
	if r.Stabilization == 0 {
		r.Stabilization = DefaultStabilization
	}
	if r.Grace == 0 {
		r.Grace = DefaultGrace
	}
	if r.Budget == 0 {
		r.Budget = DefaultBudget
	}
	if r.BudgetWindow == 0 {
		r.BudgetWindow = DefaultBudgetWindow
	}
	return r
}

// WithDefaults returns g with every zero knob replaced by its default.
func (g Global) WithDefaults() Global {
	if g.RateLimit == 0 {
		g.RateLimit = DefaultRateLimit
	}
	if g.RateWindow == 0 {
		g.RateWindow = DefaultRateWindow
	}
	if g.KeyTTL == 0 {
		g.KeyTTL = DefaultKeyTTL
	}
	if g.MaxKeys == 0 {
		g.MaxKeys = DefaultMaxKeys
	}
	return g
}

// Allows reports whether r permits a.
func (r Rules) Allows(a intent.Action) bool {
	allow := r.Allow
	if allow == nil {
		allow = DefaultAllow
	}
	return slices.Contains(allow, a)
}

// Errors of Validate, for errors.Is; config reports them with the field's
// file and line.
var (
	ErrBoundsMissing = errors.New("min_workers and max_workers are required when scale_up or scale_down is allowed")
	ErrBounds        = errors.New("min_workers must be at least 1 and at most max_workers")
	ErrUnknownAction = errors.New("unknown action")
	ErrNegative      = errors.New("must not be negative")
)

// Validate checks r (before or after WithDefaults) and names the first
// field in error.
func (r Rules) Validate() error {
	for _, a := range r.Allow {
		if _, ok := intent.ParseAction(string(a)); !ok {
			return fmt.Errorf("allow: %q: %w", a, ErrUnknownAction)
		}
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"cooldown", r.Cooldown}, {"stabilization", r.Stabilization}, {"grace", r.Grace},
		{"budget_window", r.BudgetWindow},
	} {
		if d.v < 0 {
			return fmt.Errorf("%s: %w", d.field, ErrNegative)
		}
	}
	if r.Budget < 0 {
		return fmt.Errorf("budget: %w", ErrNegative)
	}
	if !r.Allows(intent.ScaleUp) && !r.Allows(intent.ScaleDown) {
		return nil
	}
	if r.MinWorkers == 0 || r.MaxWorkers == 0 {
		return fmt.Errorf("min_workers, max_workers: %w", ErrBoundsMissing)
	}
	if r.MinWorkers < 1 || r.MinWorkers > r.MaxWorkers {
		return fmt.Errorf("min_workers %d, max_workers %d: %w", r.MinWorkers, r.MaxWorkers, ErrBounds)
	}
	return nil
}

// Validate checks g and names the first field in error.
func (g Global) Validate() error {
	if g.RateLimit < 0 {
		return fmt.Errorf("rate_limit: %w", ErrNegative)
	}
	if g.RateWindow < 0 {
		return fmt.Errorf("rate_window: %w", ErrNegative)
	}
	if g.KeyTTL < 0 {
		return fmt.Errorf("key_ttl: %w", ErrNegative)
	}
	if g.MaxKeys < 0 {
		return fmt.Errorf("max_keys: %w", ErrNegative)
	}
	return nil
}

// rank orders actions for grace and supersession: a restart replaces the
// master (and so its workers), a reload replaces the workers, a scale
// changes their number.
func rank(a intent.Action) int {
	switch a {
	case intent.Restart:
		return 3
	case intent.Reload:
		return 2
	case intent.ScaleUp, intent.ScaleDown:
		return 1
	}
	return 0
}
