package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

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

// validateDatabases checks the postgres and pgbouncer sections; a name is
// unique across both.
func (c *Config) validateDatabases() error {
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
	return nil
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
