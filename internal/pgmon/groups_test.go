package pgmon

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"gunicorn", "gunicorn", true},
		{"gunicorn", "gunicorn2", false},
		{"*", "", true},
		{"*", "anything/at all", true},
		{"gunicorn*", "gunicorn: worker [app/x]", true},
		{"*worker*", "gunicorn: worker [app]", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "aéc", true},
		{"*.py", "manage.py", true},
		{"*.py", "manage.pyc", false},
		{"a*b*c", "aXXbYYbZZc", true},
		{"a*b*c", "aXXbYYbZZ", false},
		{`lit\*`, "lit*", true},
		{`lit\*`, "literal", false},
		{`end\`, `end\`, true},
		{"", "", true},
		{"", "x", false},
	} {
		require.Equal(t, tc.want, glob(tc.pattern, tc.name), "glob(%q, %q)", tc.pattern, tc.name)
	}
}

func TestGrouper(t *testing.T) {
	g, err := newGrouper([]AppGroup{
		{Match: "psql", Group: "admin"},
		{Match: "gunicorn*", Group: "web"},
		{Match: "celery*", Group: "jobs"},
		{Match: "pgAdmin*", Group: "admin"}, // same group again: not a new one
		{Match: "cron", Group: "cron"},      // beyond MaxGroups=3
		{Match: "legacy", Group: Other},
	}, 3)
	require.NoError(t, err)
	require.Equal(t, []string{"admin", "web", "jobs", Other}, g.groups)
	for app, want := range map[string]string{
		"psql": "admin", "pgAdmin 4": "admin", "gunicorn: worker [x]": "web", "celery@host": "jobs",
		"cron": Other, "legacy": Other, "": Other, "unknown": Other,
	} {
		require.Equal(t, want, g.group(app), app)
		require.Equal(t, want, g.group(app), "memoised %s", app)
	}

	_, err = newGrouper([]AppGroup{{Match: "x"}}, 3)
	require.Error(t, err)
}

func FuzzGlob(f *testing.F) {
	f.Add("a*b?c", "aXXbYc")
	f.Add(`\*`, "*")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		_ = glob(pattern, name)
		if !glob("*", name) {
			t.Fatalf("* did not match %q", name)
		}
		if len(pattern) < 64 && !containsMeta(pattern) && glob(pattern, name) != (pattern == name) {
			t.Fatalf("literal pattern %q vs %q", pattern, name)
		}
	})
}

func containsMeta(s string) bool {
	for _, c := range s {
		if c == '*' || c == '?' || c == '\\' {
			return true
		}
	}
	return false
}
