// Package config owns gunicorn-reflex's YAML configuration: strict decoding
// (unknown keys are errors), defaults filled in one place, and validation
// into the Config type the rest of the program uses. Errors name the field
// and the line at fault so `--config.check` can point a person at the fix.
package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// Config is the validated configuration. Zero values never reach users of
// this type: Load and Parse fill every default.
type Config struct {
	// Apps are the Gunicorn applications to watch. Empty means: discover them.
	Apps      []App     `yaml:"apps"`
	Discovery Discovery `yaml:"discovery"`
	Logs      Logs      `yaml:"logs"`
	Timeline  Timeline  `yaml:"timeline"`
	// Postgres and PgBouncer are queried at scrape time.
	Postgres  []Postgres `yaml:"postgres"`
	PgBouncer []Bouncer  `yaml:"pgbouncer"`
	// ScrapeTimeoutOffset is taken off Prometheus's
	// X-Prometheus-Scrape-Timeout-Seconds to bound database queries.
	ScrapeTimeoutOffset Duration `yaml:"scrape_timeout_offset"`
	// Receiver is the remediation receiver (off by default).
	Receiver Receiver `yaml:"receiver"`
}

// Logs tunes the log follower shared by every app.
type Logs struct {
	PollInterval Duration `yaml:"poll_interval"`
	// RotateGrace is how long a renamed log keeps being read after rotation;
	// Gunicorn writes to the renamed file until it receives USR1.
	RotateGrace  Duration `yaml:"rotate_grace"`
	MaxLineBytes int      `yaml:"max_line_bytes"`
	// JournalDirectory, when set, is where journalctl reads the journal
	// (--directory) instead of the system's journal directories.
	JournalDirectory string `yaml:"journal_directory"`
}

// Timeline bounds the in-memory event timeline.
type Timeline struct {
	MaxEvents int      `yaml:"max_events"`
	MaxAge    Duration `yaml:"max_age"`
}

// validateLogs checks the log follower and timeline sections.
func (c *Config) validateLogs() error {
	if c.Logs.PollInterval < Duration(10*time.Millisecond) || c.Logs.PollInterval > Duration(time.Minute) {
		return &Error{Field: "logs.poll_interval", Msg: "must be between 10ms and 1m"}
	}
	if d := c.Logs.JournalDirectory; d != "" && !filepath.IsAbs(d) {
		return &Error{Field: "logs.journal_directory", Msg: fmt.Sprintf("%q must be an absolute path", d)}
	}
	if c.Logs.RotateGrace < 0 {
		return &Error{Field: "logs.rotate_grace", Msg: "must not be negative"}
	}
	if c.Logs.MaxLineBytes < 1024 || c.Logs.MaxLineBytes > 16<<20 {
		return &Error{Field: "logs.max_line_bytes", Msg: "must be between 1024 and 16777216"}
	}
	if c.Timeline.MaxEvents < 16 || c.Timeline.MaxEvents > 1_000_000 {
		return &Error{Field: "timeline.max_events", Msg: "must be between 16 and 1000000"}
	}
	return nil
}

// Defaults, in one place.
const (
	DefaultDiscoveryInterval = 30 * time.Second
	DefaultProcPath          = "/proc"
	DefaultPollInterval      = 250 * time.Millisecond
	DefaultRotateGrace       = 10 * time.Second
	DefaultMaxLineBytes      = 64 * 1024
	DefaultTimelineEvents    = 4096
	DefaultTimelineMaxAge    = 24 * time.Hour
	DefaultGunicornTimeout   = 30 * time.Second
	DefaultMaxRoutes         = 100
	DefaultScrapeOffset      = 500 * time.Millisecond
)

// DiscoveryEnabled reports whether /proc discovery runs.
func (c *Config) DiscoveryEnabled() bool { return c.Discovery.Enabled != nil && *c.Discovery.Enabled }

func (c *Config) fillDefaults() {
	if c.Discovery.Enabled == nil {
		on := !slices.ContainsFunc(c.Apps, func(a App) bool { return !a.Overlay() })
		c.Discovery.Enabled = &on
	}
	if c.Discovery.Interval == 0 {
		c.Discovery.Interval = Duration(DefaultDiscoveryInterval)
	}
	if c.Discovery.ProcPath == "" {
		c.Discovery.ProcPath = DefaultProcPath
	}
	if c.Logs.PollInterval == 0 {
		c.Logs.PollInterval = Duration(DefaultPollInterval)
	}
	if c.Logs.RotateGrace == 0 {
		c.Logs.RotateGrace = Duration(DefaultRotateGrace)
	}
	if c.Logs.MaxLineBytes == 0 {
		c.Logs.MaxLineBytes = DefaultMaxLineBytes
	}
	if c.Timeline.MaxEvents == 0 {
		c.Timeline.MaxEvents = DefaultTimelineEvents
	}
	if c.ScrapeTimeoutOffset == 0 {
		c.ScrapeTimeoutOffset = Duration(DefaultScrapeOffset)
	}
	if c.Timeline.MaxAge == 0 {
		c.Timeline.MaxAge = Duration(DefaultTimelineMaxAge)
	}
	c.Receiver.fillDefaults()
	for i := range c.Apps {
		if c.Apps[i].Routes.MaxRoutes == 0 {
			c.Apps[i].Routes.MaxRoutes = DefaultMaxRoutes
		}
	}
}

// AppNames lists configured app names, sorted.
func (c *Config) AppNames() []string {
	names := make([]string, 0, len(c.Apps))
	for _, a := range c.Apps {
		names = append(names, a.Name)
	}
	sort.Strings(names)
	return names
}

// Duration is a YAML duration in Prometheus syntax ("250ms", "30s", "1h").
// A bad value is an Error carrying its line.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if n.Kind != yaml.ScalarNode {
		return &Error{Line: n.Line, col: n.Column, Msg: fmt.Sprintf("must be a duration (e.g. 250ms, 30s, 1m), not %s", n.ShortTag())}
	}
	if err := n.Decode(&s); err != nil {
		return &Error{Line: n.Line, col: n.Column, Msg: err.Error()}
	}
	v, err := model.ParseDuration(s)
	if err != nil {
		return &Error{Line: n.Line, col: n.Column, Msg: fmt.Sprintf("%q is not a valid duration (use e.g. 250ms, 30s, 1m)", s)}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return model.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
