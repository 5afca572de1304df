package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultDiscoversWithSensibleDefaults(t *testing.T) {
	cfg := Default()
	require.True(t, cfg.DiscoveryEnabled(), "no apps configured must mean discovery")
	require.Equal(t, DefaultPollInterval, time.Duration(cfg.Logs.PollInterval))
	require.Equal(t, DefaultRotateGrace, time.Duration(cfg.Logs.RotateGrace))
	require.Equal(t, "/proc", cfg.Discovery.ProcPath)
	require.Equal(t, DefaultTimelineEvents, cfg.Timeline.MaxEvents)
}

func TestLoadGood(t *testing.T) {
	cfg, err := Load("testdata/good.yml")
	require.NoError(t, err)
	require.Len(t, cfg.Apps, 2)
	require.Equal(t, "shop", cfg.Apps[0].Name)
	require.Equal(t, 60*time.Second, time.Duration(cfg.Apps[0].Timeout))
	require.Zero(t, cfg.Apps[1].Timeout, "0: read from the running master")
	require.True(t, cfg.DiscoveryEnabled())
	require.Equal(t, time.Minute, time.Duration(cfg.Discovery.Interval))
	require.Equal(t, 500*time.Millisecond, time.Duration(cfg.Logs.PollInterval))
	require.Equal(t, []string{"api", "shop"}, cfg.AppNames())
}

// An explicit empty mapping is the way to ask for the defaults in a file.
func TestEmptyMappingMeansDefaults(t *testing.T) {
	cfg, err := Parse([]byte("{}\n"))
	require.NoError(t, err)
	require.True(t, cfg.DiscoveryEnabled())
}

func TestLoadRejectsEmptyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "empty.yml")
	require.NoError(t, os.WriteFile(p, nil, 0o600))
	_, err := Load(p)
	require.EqualError(t, err, p+": "+EmptyMsg)
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"eror_log", "error_log", 1}, {"kitten", "sitting", 3}, {"pidfile", "pidfile", 0}} {
		require.Equal(t, tc.d, editDistance(tc.a, tc.b), "%q %q", tc.a, tc.b)
		require.Equal(t, tc.d, editDistance(tc.b, tc.a), "%q %q", tc.b, tc.a)
	}
}

func TestExplicitAppsTurnDiscoveryOffByDefault(t *testing.T) {
	cfg, err := Parse([]byte("apps:\n  - name: a\n    error_log: /x.log\n"))
	require.NoError(t, err)
	require.False(t, cfg.DiscoveryEnabled())
}

// An entry with only a name and a timeout sets the timeout of the
// discovered app of that name and leaves discovery on.
func TestAppByNameOverlaysDiscovery(t *testing.T) {
	cfg, err := Parse([]byte("apps:\n  - name: shop\n    timeout: 3s\n"))
	require.NoError(t, err)
	require.True(t, cfg.DiscoveryEnabled())
	require.True(t, cfg.Apps[0].Overlay())
	require.Equal(t, 3*time.Second, cfg.Apps[0].Timeout.D())

	cfg, err = Parse([]byte("apps:\n  - name: shop\n    timeout: 3s\n  - name: api\n    error_log: /x.log\n"))
	require.NoError(t, err)
	require.False(t, cfg.DiscoveryEnabled(), "an app with a log is explicit: discovery off unless asked for")
	require.False(t, cfg.Apps[1].Overlay())

	cfg, err = Parse([]byte("apps:\n  - name: shop\n    deploy_marker: /srv/shop/REVISION\n"))
	require.NoError(t, err, "a by-name entry may name only a deploy marker")
	require.True(t, cfg.Apps[0].Overlay())
	require.Equal(t, "/srv/shop/REVISION", cfg.Apps[0].DeployMarker)
}

// Every bad config names the field and the line at fault.
func TestBadConfigNamesFieldAndLine(t *testing.T) {
	cases := []struct {
		name, yaml string
		line       int
		field, msg string
	}{
		{"unknown key suggests the known one", "apps:\n  - name: a\n    error_log: /x.log\n    eror_log: /y.log\n", 4, "apps[0]", `unknown key "eror_log" (did you mean "error_log"?)`},
		{"unknown nested key", "logs:\n  pool_interval: 1s\n", 2, "logs", `unknown key "pool_interval" (did you mean "poll_interval"?)`},
		{"unknown top-level key", "logs:\n  poll_interval: 1s\nbogus: 1\n", 3, "", `unknown key "bogus"; known keys here: apps, discovery, logs`},
		{"missing name", "apps:\n  - error_log: /x.log\n", 2, "apps[0].name", "required"},
		{"relative path", "apps:\n  - name: a\n    error_log: relative.log\n", 3, "apps[0].error_log", "absolute path"},
		{"duplicate name", "apps:\n  - name: a\n    error_log: /x.log\n  - name: a\n    error_log: /y.log\n", 4, "apps[1].name", "already used"},
		{"bad label value", "apps:\n  - name: 'a b'\n    error_log: /x.log\n", 2, "apps[0].name", "must match"},
		{"no logs at all", "apps:\n  - name: a\n", 2, "apps[0].error_log", "at least one"},
		{"journal unit not a unit name", "apps:\n  - name: a\n    journal_unit: 'a b'\n", 3, "apps[0].journal_unit", "not a systemd unit name"},
		{"journal unit and an error log file", "apps:\n  - name: a\n    journal_unit: a.service\n    error_log: /x.log\n", 4, "apps[0].error_log", "set with journal_unit"},
		{"access log stdin-dash without a journal", "apps:\n  - name: a\n    error_log: /x.log\n    access_log: '-'\n", 4, "apps[0].access_log", "absolute path"},
		{"journal unit and a container log", "apps:\n  - name: a\n    journal_unit: a.service\n    container_log:\n      path: /y.log\n      format: cri\n", 3, "apps[0].journal_unit", "one of them"},
		{"relative journal directory", "logs:\n  journal_directory: var/log/journal\n", 2, "logs.journal_directory", "absolute path"},
		{"container log without format", "apps:\n  - name: a\n    container_log:\n      path: /var/lib/docker/containers/x/x-json.log\n", 3, "apps[0].container_log.format", "docker (json-file) or cri"},
		{"container log relative path", "apps:\n  - name: a\n    container_log:\n      path: x.log\n      format: cri\n", 4, "apps[0].container_log.path", "absolute path"},
		{"container log format without path", "apps:\n  - name: a\n    container_log:\n      format: cri\n", 3, "apps[0].container_log.path", "required"},
		{"container log and error log", "apps:\n  - name: a\n    error_log: /x.log\n    container_log:\n      path: /y.log\n      format: cri\n", 4, "apps[0].container_log", "one of them"},
		{"relative docker data root", "discovery:\n  docker_data_root: docker\n", 2, "discovery.docker_data_root", "absolute path"},
		{"by-name entry without a timeout", "apps:\n  - name: a\n    timeout: 0s\n", 2, "apps[0].error_log", "to set the timeout of the discovered app"},
		{"relative deploy marker", "apps:\n  - name: a\n    deploy_marker: REVISION\n", 3, "apps[0].deploy_marker", "absolute path"},
		{"by-name entry with a negative timeout", "apps:\n  - name: a\n    timeout: -3s\n", 3, "apps[0].timeout", "not a valid duration"},
		{"bad duration", "logs:\n  poll_interval: fast\n", 2, "logs.poll_interval", "not a valid duration"},
		{"duration in a list", "postgres:\n  - name: main\n    dsn_env: X\n    age_thresholds: [1s, soon]\n", 4, "postgres[0].age_thresholds[1]", `"soon" is not a valid duration`},
		{"duration not a scalar", "discovery:\n  interval: [1s]\n", 2, "discovery.interval", "must be a duration"},
		{"interval too short", "discovery:\n  interval: 10ms\n", 2, "discovery.interval", "at least 1s"},
		{"wrong type names the YAML field", "apps: 3\n", 1, "apps", "must be a list, not !!int `3`"},
		{"wrong nested type", "apps:\n  - name: [a]\n    error_log: /x.log\n", 2, "apps[0].name", "must be a string, not !!seq"},
		{"top level not a mapping", "- a\n", 1, "", "the file must be a mapping of sections (apps, discovery"},
		{"bad access format", "apps:\n  - name: a\n    access_log: /a.log\n    access_log_format: '%(h)s %s'\n", 4, "apps[0].access_log_format", "%s"},
		{"bad route rule", "apps:\n  - name: a\n    access_log: /a.log\n    routes:\n      rules:\n        - match: '('\n          route: /x\n", 6, "apps[0].routes.rules[0]", "route rule"},
		{"pg without dsn", "postgres:\n  - name: main\n", 2, "postgres[0].dsn_file", "exactly one"},
		{"pg with both", "postgres:\n  - name: main\n    dsn_file: /x\n    dsn_env: X\n", 3, "postgres[0].dsn_file", "exactly one"},
		{"pg dsn inline is unknown", "postgres:\n  - name: main\n    dsn: postgres://u:secret@h/db\n", 3, "postgres[0]", `unknown key "dsn"; known keys here: name, dsn_file, dsn_env`},
		{"syntax", "apps:\n  - name: [\n", 2, "", "did not find expected node content"},
		// A truncated file must not be taken as "discover everything".
		{"empty file", "", 0, "", "holds no configuration"},
		{"blank file", "  \n\n", 0, "", "holds no configuration"},
		{"only comments", "# apps:\n#   - name: shop\n", 0, "", "holds no configuration"},
		{"null document", "---\n", 0, "", "holds no configuration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err)
			var ce *Error
			require.True(t, errors.As(err, &ce), "want *config.Error, got %T: %v", err, err)
			require.Equal(t, tc.line, ce.Line, "line in %q", err)
			require.Equal(t, tc.field, ce.Field)
			require.Contains(t, ce.Msg, tc.msg)
		})
	}
}

func TestLoadErrorNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yml")
	require.NoError(t, os.WriteFile(p, []byte("apps:\n  - name: a\n    error_log: x\n"), 0o600))
	_, err := Load(p)
	require.EqualError(t, err, p+":3: apps[0].error_log: \"x\" must be an absolute path")
	_, err = Load(filepath.Join(t.TempDir(), "missing.yml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestShippedExampleConfigIsValid(t *testing.T) {
	cfg, err := Load("../../deploy/config.example.yml")
	require.NoError(t, err)
	require.Equal(t, []string{"shop"}, cfg.AppNames())
}

func TestReadDSN(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dsn")
	require.NoError(t, os.WriteFile(p, []byte("host=127.0.0.1 user=x\n"), 0o600))
	dsn, err := ReadDSN(p, "")
	require.NoError(t, err)
	require.Equal(t, "host=127.0.0.1 user=x", dsn)
	t.Setenv("REFLEX_TEST_DSN", "host=::1")
	dsn, err = ReadDSN("", "REFLEX_TEST_DSN")
	require.NoError(t, err)
	require.Equal(t, "host=::1", dsn)
	_, err = ReadDSN("", "REFLEX_TEST_DSN_UNSET")
	require.ErrorContains(t, err, "REFLEX_TEST_DSN_UNSET is not set")
}

// Parse never panics, and every error it returns is an *Error (so
// --config.check can print file, line and field).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "{}", "apps: 3\n", "apps:\n  - name: [a]\n", "logs:\n  pool_interval: 1s\n",
		"postgres:\n  - name: m\n    dsn_env: X\n    age_thresholds: [1s, x]\n", "- a\n", "discovery:\n  interval: {a: 1}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse(data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%T: %v", err, err)
			}
		}
	})
}

// A unit's journal can carry both logs: access_log "-" is then allowed.
func TestJournalUnitConfig(t *testing.T) {
	cfg, err := Parse([]byte("apps:\n  - name: a\n    journal_unit: app.service\n    access_log: '-'\nlogs:\n  journal_directory: /var/log/journal\n"))
	require.NoError(t, err)
	require.Equal(t, "app.service", cfg.Apps[0].JournalUnit)
	require.False(t, cfg.Apps[0].Overlay())
	require.Equal(t, "/var/log/journal", cfg.Logs.JournalDirectory)
}
