package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/journal"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/routes"
)

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
	// JournalUnit is the systemd unit whose journal carries the error log
	// (Gunicorn's stderr, errorlog "-"), and the access log too when
	// access_log is "-".
	JournalUnit string `yaml:"journal_unit"`
	// ContainerLog is the container runtime's log file that carries the
	// app's stderr and stdout (Gunicorn's "-" logs); it wins over what
	// discovery finds.
	ContainerLog ContainerLog `yaml:"container_log"`
	// DeployMarker is a file a release process writes (a version, a
	// commit); a change of its first line (or, when empty, its mtime) is a
	// deploy marker in the timeline. Absolute; "" for none.
	DeployMarker string `yaml:"deploy_marker"`
}

// ContainerLog names a container runtime's log file.
type ContainerLog struct {
	Path string `yaml:"path"`
	// Format is "docker" (json-file) or "cri".
	Format string `yaml:"format"`
	// AccessLogFormat is Gunicorn's access_log_format of the access lines
	// on stdout; "" means Gunicorn's default.
	AccessLogFormat string `yaml:"access_log_format"`
}

// Overlay reports whether the entry names no log and no pidfile: it only
// sets the timeout (or the deploy marker) of the discovered app of that
// name, and leaves discovery on.
func (a App) Overlay() bool {
	return a.ErrorLog == "" && a.AccessLog == "" && a.Pidfile == "" && a.ContainerLog.Path == "" && a.JournalUnit == ""
}

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

// appNameRE keeps app names usable as label values and in file names.
var appNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

// validateApps checks each app in order; the first fault is returned.
func (c *Config) validateApps() error {
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
		if err := validateContainerLog(a, field); err != nil {
			return err
		}
		if a.Overlay() && a.Timeout == 0 && a.DeployMarker == "" {
			return &Error{Field: field("error_log"), Msg: "an app needs at least one of error_log, access_log, pidfile, container_log or journal_unit; or, to set the timeout of the discovered app of that name, timeout"}
		}
		if err := a.validateJournal(field); err != nil {
			return err
		}
		for _, p := range []struct{ name, val string }{{"error_log", a.ErrorLog}, {"access_log", a.AccessLog}, {"pidfile", a.Pidfile}, {"deploy_marker", a.DeployMarker}} {
			if p.val != "" && !filepath.IsAbs(p.val) && (a.JournalUnit == "" || p.name != "access_log" || p.val != "-") {
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
	return nil
}

// validateJournal checks journal_unit: a unit name, and no error_log path
// beside it (the journal carries the error log).
func (a App) validateJournal(field func(string) string) error {
	if a.JournalUnit == "" {
		return nil
	}
	if !journal.ValidUnit(a.JournalUnit) || !strings.Contains(a.JournalUnit, ".") {
		return &Error{Field: field("journal_unit"), Msg: fmt.Sprintf("%q is not a systemd unit name (e.g. app.service)", a.JournalUnit)}
	}
	if a.ErrorLog != "" && a.ErrorLog != "-" {
		return &Error{Field: field("error_log"), Msg: "set with journal_unit: the unit's journal carries the error log; remove one"}
	}
	if a.ContainerLog.Path != "" {
		return &Error{Field: field("journal_unit"), Msg: "set with container_log: the error log comes from one of them"}
	}
	return nil
}

func validateContainerLog(a App, field func(string) string) error {
	c := a.ContainerLog
	if c.Path == "" {
		if c.Format != "" || c.AccessLogFormat != "" {
			return &Error{Field: field("container_log.path"), Msg: "required when container_log is set"}
		}
		return nil
	}
	if !filepath.IsAbs(c.Path) {
		return &Error{Field: field("container_log.path"), Msg: fmt.Sprintf("%q must be an absolute path", c.Path)}
	}
	if c.Format != "docker" && c.Format != "cri" {
		return &Error{Field: field("container_log.format"), Msg: fmt.Sprintf("%q must be docker (json-file) or cri", c.Format)}
	}
	if a.ErrorLog != "" {
		return &Error{Field: field("container_log"), Msg: "set with error_log: the error log comes from one of them"}
	}
	if _, err := accesslog.Compile(c.AccessLogFormat); err != nil {
		return &Error{Field: field("container_log.access_log_format"), Msg: err.Error()}
	}
	return nil
}
