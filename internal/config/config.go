// Package config owns gunicorn-reflex's YAML configuration: strict decoding
// (unknown keys are errors), defaults filled in one place, and validation
// into the Config type the rest of the program uses. Errors name the field
// and the line at fault so `--config.check` can point a person at the fix.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/routes"
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
}

// Postgres is one PostgreSQL server to watch. The DSN comes from a file or
// an environment variable, never from the command line or this file.
type Postgres struct {
	Name    string `yaml:"name"`
	DSNFile string `yaml:"dsn_file"`
	DSNEnv  string `yaml:"dsn_env"`
	// AgeThresholds count active queries older than each value.
	AgeThresholds []Duration `yaml:"age_thresholds"`
	// AppGroups map application_name (exact or glob) to a group label.
	AppGroups []AppGroup `yaml:"app_groups"`
	MaxGroups int        `yaml:"max_groups"`
	// QueryText lets stuck-worker evidence carry the query text, literals
	// stripped and truncated. Off by default: it never goes into labels.
	QueryText        bool     `yaml:"query_text"`
	StatementTimeout Duration `yaml:"statement_timeout"`
	LockTimeout      Duration `yaml:"lock_timeout"`
	ConnectTimeout   Duration `yaml:"connect_timeout"`
}

// AppGroup maps application names to a group.
type AppGroup struct {
	Match string `yaml:"match"`
	Group string `yaml:"group"`
}

// Bouncer is one PgBouncer admin console.
type Bouncer struct {
	Name    string `yaml:"name"`
	DSNFile string `yaml:"dsn_file"`
	DSNEnv  string `yaml:"dsn_env"`
}

// ReadDSN returns the DSN from the file or the environment variable.
func ReadDSN(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read dsn_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	v, ok := os.LookupEnv(env)
	if !ok || strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("environment variable %s is not set", env)
	}
	return strings.TrimSpace(v), nil
}

// App is one Gunicorn master and its log files.
type App struct {
	// Name is the value of the `app` label; it must be unique.
	Name     string `yaml:"name"`
	ErrorLog string `yaml:"error_log"`
	// AccessLog and AccessLogFormat are read by the access-log collector.
	AccessLog       string `yaml:"access_log"`
	AccessLogFormat string `yaml:"access_log_format"`
	Pidfile         string `yaml:"pidfile"`
	// Timeout is the app's Gunicorn --timeout. 0 (the default) means: read
	// it from the running master, else Gunicorn's default of 30s.
	Timeout Duration `yaml:"timeout"`
	// Routes turns on per-route latency for this app.
	Routes Routes `yaml:"routes"`
}

// Overlay reports whether the entry names no log and no pidfile: it only
// sets the timeout of the discovered app of that name, and leaves
// discovery on.
func (a App) Overlay() bool { return a.ErrorLog == "" && a.AccessLog == "" && a.Pidfile == "" }

// Routes configures per-route latency series.
type Routes struct {
	Enabled bool `yaml:"enabled"`
	// MaxRoutes caps the route series of one app; the rest is "other".
	MaxRoutes int `yaml:"max_routes"`
	// Rules map paths (an anchored regular expression) to a route template,
	// before the default normaliser collapses ids.
	Rules []RouteRule `yaml:"rules"`
}

// RouteRule is one path-to-route mapping.
type RouteRule struct {
	Match string `yaml:"match"`
	Route string `yaml:"route"`
}

// Discovery controls finding Gunicorn masters in /proc.
type Discovery struct {
	// Enabled defaults to true when no apps are configured, false otherwise:
	// an explicit app list is authoritative unless discovery is asked for.
	Enabled  *bool    `yaml:"enabled"`
	Interval Duration `yaml:"interval"`
	ProcPath string   `yaml:"proc_path"`
}

// Logs tunes the log follower shared by every app.
type Logs struct {
	PollInterval Duration `yaml:"poll_interval"`
	// RotateGrace is how long a renamed log keeps being read after rotation;
	// Gunicorn writes to the renamed file until it receives USR1.
	RotateGrace  Duration `yaml:"rotate_grace"`
	MaxLineBytes int      `yaml:"max_line_bytes"`
}

// Timeline bounds the in-memory event timeline.
type Timeline struct {
	MaxEvents int      `yaml:"max_events"`
	MaxAge    Duration `yaml:"max_age"`
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

// Error is a configuration problem tied to a field and, when known, a line.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads, decodes and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = path
		}
		return nil, err
	}
	return cfg, nil
}

// Default returns the configuration used when no file is given: discover
// every Gunicorn master on the host.
func Default() *Config {
	cfg, err := Parse(nil)
	if err != nil {
		panic("config: defaults do not validate: " + err.Error()) // a programming error, caught by tests
	}
	return cfg
}

var yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)

// Parse decodes and validates YAML. Unknown keys are errors.
func Parse(data []byte) (*Config, error) {
	var root yaml.Node
	cfg := &Config{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.Unmarshal(data, &root); err != nil {
			return nil, yamlError(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil {
			return nil, yamlError(err)
		}
	}
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.Line = lineOf(&root, ce.Field)
		}
		return nil, err
	}
	return cfg, nil
}

// yamlError turns yaml.v3's "line N: msg" into an Error with a line number.
func yamlError(err error) error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		if m := yamlLineRE.FindStringSubmatch(te.Errors[0]); m != nil {
			var line int
			fmt.Sscanf(m[1], "%d", &line)
			return &Error{Line: line, Msg: m[2]}
		}
		return &Error{Msg: te.Errors[0]}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscanf(m[1], "%d", &line)
		return &Error{Line: line, Msg: m[2]}
	}
	return &Error{Msg: msg}
}

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
	for i := range c.Apps {
		if c.Apps[i].Routes.MaxRoutes == 0 {
			c.Apps[i].Routes.MaxRoutes = DefaultMaxRoutes
		}
	}
}

// appNameRE keeps app names usable as label values and in file names.
var appNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

func (c *Config) validate() error {
	seen := map[string]int{}
	for i, a := range c.Apps {
		field := func(f string) string { return fmt.Sprintf("apps[%d].%s", i, f) }
		if a.Name == "" {
			return &Error{Field: field("name"), Msg: "required"}
		}
		if !appNameRE.MatchString(a.Name) {
			return &Error{Field: field("name"), Msg: fmt.Sprintf("%q must match %s", a.Name, appNameRE)}
		}
		if j, dup := seen[a.Name]; dup {
			return &Error{Field: field("name"), Msg: fmt.Sprintf("%q already used by apps[%d]", a.Name, j)}
		}
		seen[a.Name] = i
		if a.Overlay() && a.Timeout == 0 {
			return &Error{Field: field("error_log"), Msg: "an app needs at least one of error_log, access_log or pidfile; or, to set the timeout of the discovered app of that name, timeout"}
		}
		for _, p := range []struct{ name, val string }{{"error_log", a.ErrorLog}, {"access_log", a.AccessLog}, {"pidfile", a.Pidfile}} {
			if p.val != "" && !filepath.IsAbs(p.val) {
				return &Error{Field: field(p.name), Msg: fmt.Sprintf("%q must be an absolute path", p.val)}
			}
		}
		if a.AccessLogFormat != "" && a.AccessLog == "" {
			return &Error{Field: field("access_log_format"), Msg: "set without access_log"}
		}
		if a.Timeout < 0 {
			return &Error{Field: field("timeout"), Msg: "must not be negative"}
		}
		if a.AccessLogFormat != "" {
			if _, err := accesslog.Compile(a.AccessLogFormat); err != nil {
				return &Error{Field: field("access_log_format"), Msg: err.Error()}
			}
		}
		if a.Routes.MaxRoutes < 1 || a.Routes.MaxRoutes > 10000 {
			return &Error{Field: field("routes.max_routes"), Msg: "must be between 1 and 10000"}
		}
		for j, r := range a.Routes.Rules {
			if _, err := routes.ParseRule(r.Match, r.Route); err != nil {
				return &Error{Field: field(fmt.Sprintf("routes.rules[%d]", j)), Msg: err.Error()}
			}
		}
	}
	names := map[string]bool{}
	for i, pg := range c.Postgres {
		field := func(f string) string { return fmt.Sprintf("postgres[%d].%s", i, f) }
		if err := validateDB(pg.Name, pg.DSNFile, pg.DSNEnv, names, field); err != nil {
			return err
		}
		for j, g := range pg.AppGroups {
			if g.Match == "" || !appNameRE.MatchString(g.Group) {
				return &Error{Field: field(fmt.Sprintf("app_groups[%d]", j)), Msg: "needs a match and a group name matching " + appNameRE.String()}
			}
		}
	}
	for i, b := range c.PgBouncer {
		field := func(f string) string { return fmt.Sprintf("pgbouncer[%d].%s", i, f) }
		if err := validateDB(b.Name, b.DSNFile, b.DSNEnv, names, field); err != nil {
			return err
		}
	}
	if c.Discovery.Interval < Duration(time.Second) {
		return &Error{Field: "discovery.interval", Msg: "must be at least 1s"}
	}
	if !filepath.IsAbs(c.Discovery.ProcPath) {
		return &Error{Field: "discovery.proc_path", Msg: "must be an absolute path"}
	}
	if c.Logs.PollInterval < Duration(10*time.Millisecond) || c.Logs.PollInterval > Duration(time.Minute) {
		return &Error{Field: "logs.poll_interval", Msg: "must be between 10ms and 1m"}
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

// lineOf finds the line of a dotted field path such as "apps[1].name" in the
// parsed document, or of the nearest parent that exists; 0 when unknown.
func lineOf(root *yaml.Node, field string) int {
	if root == nil || root.Kind == 0 || field == "" {
		return 0
	}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(field, ".") {
		key, idx := part, -1
		if open := strings.IndexByte(part, '['); open >= 0 {
			key = part[:open]
			fmt.Sscanf(part[open:], "[%d]", &idx)
		}
		next, keyLine := mapValue(n, key)
		if next == nil {
			return line
		}
		line = keyLine
		n = next
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

func mapValue(n *yaml.Node, key string) (*yaml.Node, int) {
	if n.Kind != yaml.MappingNode {
		return nil, 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1], n.Content[i].Line
		}
	}
	return nil, 0
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
	if err := n.Decode(&s); err != nil {
		return &Error{Line: n.Line, Msg: err.Error()}
	}
	v, err := model.ParseDuration(s)
	if err != nil {
		return &Error{Line: n.Line, Msg: fmt.Sprintf("%q is not a valid duration (use e.g. 250ms, 30s, 1m)", s)}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return model.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// RouteRules compiles the app's route rules (validated by Parse).
func (a App) RouteRules() []routes.Rule {
	out := make([]routes.Rule, 0, len(a.Routes.Rules))
	for _, r := range a.Routes.Rules {
		if rule, err := routes.ParseRule(r.Match, r.Route); err == nil {
			out = append(out, rule)
		}
	}
	return out
}

func validateDB(name, file, env string, seen map[string]bool, field func(string) string) error {
	if !appNameRE.MatchString(name) {
		return &Error{Field: field("name"), Msg: fmt.Sprintf("%q must match %s", name, appNameRE)}
	}
	if seen[name] {
		return &Error{Field: field("name"), Msg: fmt.Sprintf("%q already used", name)}
	}
	seen[name] = true
	if (file == "") == (env == "") {
		return &Error{Field: field("dsn_file"), Msg: "set exactly one of dsn_file or dsn_env (the DSN never goes in this file or on the command line)"}
	}
	if file != "" && !filepath.IsAbs(file) {
		return &Error{Field: field("dsn_file"), Msg: "must be an absolute path"}
	}
	return nil
}
