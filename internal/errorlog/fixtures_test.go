package errorlog

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixtureFiles are the captured error-log streams copied from
// shared/fixtures/gunicorn/ into testdata/gunicorn/: every error log, the
// stdout/stderr captures of the per-version runs (19.9 to 21.2; the 24.0.0
// to 26.1.0 runs wrote nothing there) and the boot-failure app logs. Left out on purpose: access.log (the access logger's format),
// 20.1-statsd/deb-statsd.txt (statsd datagrams) and transcript.txt (the
// driver's notes), which are not error-log output.
var fixtureFiles = []string{
	"20.1-debug-maxrequests/error.log",
	"20.1-lifecycle/error.log",
	"20.1-statsd/deb-err.log",
	"boot-failures/23-app-nosuchattr.log",
	"boot-failures/23-badimport-app.log",
	"boot-failures/23-nosuchmodule-app.log",
	"boot-failures/deb-app-nosuchattr.log",
	"boot-failures/deb-badimport-app.log",
	"boot-failures/deb-nosuchmodule-app.log",
	"v19/error.log",
	"v19/stdout.log",
	"v20deb/error.log",
	"v20deb/stdout.log",
	"v21/error.log",
	"v21/stdout.log",
	"v24.0.0/error.log",
	"v24/error.log",
	"v25/error.log",
	"v26/error.log",
}

var excludedFixtures = map[string]bool{"access.log": true, "deb-statsd.txt": true, "transcript.txt": true}

func fixtureLines(t testing.TB, name string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "gunicorn", name))
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestFixturesExplained is the done-criterion: every line of every fixture
// is a header, a continuation or an explained raw line; none is a parse
// failure, and every header's message is a known Gunicorn message.
func TestFixturesExplained(t *testing.T) {
	timeoutExceptions := []string{"RuntimeError: boom from /error", "SystemExit: 1", "SystemExit: 1"}
	// Expected counts, from grep over the files: headers are the lines
	// starting "[2026-"; the rest are tracebacks and the configuration dump
	// (continuations) or the raw prints named in the comments.
	tests := map[string]struct {
		headers, continuations, raw int
		exceptions                  []string
	}{
		"20.1-debug-maxrequests/error.log": {27, 86, 0, nil}, // 86 = the "Current configuration:" dump
		"20.1-lifecycle/error.log":         {53, 9, 0, []string{"RuntimeError: boom from /error"}},
		"20.1-statsd/deb-err.log":          {20, 9, 0, []string{"RuntimeError: boom from /error"}},
		// "Failed to find attribute 'nosuchattr' in 'app'." printed raw.
		"boot-failures/23-app-nosuchattr.log":   {8, 0, 1, nil},
		"boot-failures/23-badimport-app.log":    {9, 32, 0, []string{"RuntimeError: import-time failure"}},
		"boot-failures/23-nosuchmodule-app.log": {9, 27, 0, []string{"ModuleNotFoundError: No module named 'nosuchmodule'"}},
		// Both workers print "Failed to find attribute ..." raw.
		"boot-failures/deb-app-nosuchattr.log":   {10, 0, 2, nil},
		"boot-failures/deb-badimport-app.log":    {8, 32, 0, []string{"RuntimeError: import-time failure"}},
		"boot-failures/deb-nosuchmodule-app.log": {8, 27, 0, []string{"ModuleNotFoundError: No module named 'nosuchmodule'"}},
		"v19/error.log":                          {34, 9, 0, []string{"RuntimeError: boom from /error"}},
		// 19.9's "<frozen os>:1031: RuntimeWarning: line buffering ...".
		"v19/stdout.log":    {0, 0, 1, nil},
		"v20deb/error.log":  {36, 9, 0, []string{"RuntimeError: boom from /error"}},
		"v20deb/stdout.log": {0, 0, 0, nil},
		"v21/error.log":     {40, 9, 0, []string{"RuntimeError: boom from /error"}},
		"v21/stdout.log":    {0, 0, 0, nil},
		// 22+ logs the timeout abort's SystemExit as a request error with
		// its traceback: /error, then /sleep and /spin.
		"v24.0.0/error.log": {31, 32, 0, timeoutExceptions},
		"v24/error.log":     {35, 32, 0, timeoutExceptions},
		// 25.3 and 26.1 add a "Control socket listening at" after every fork.
		"v25/error.log": {47, 32, 0, timeoutExceptions},
		"v26/error.log": {47, 32, 0, timeoutExceptions},
	}
	if len(tests) != len(fixtureFiles) {
		t.Fatalf("%d expectations for %d fixture files", len(tests), len(fixtureFiles))
	}
	for _, name := range fixtureFiles {
		want, ok := tests[name]
		if !ok {
			t.Fatalf("no expectation for %s", name)
		}
		t.Run(name, func(t *testing.T) {
			f := Folder{Location: time.UTC}
			var headers, continuations, raw, malformed int
			var exceptions []string
			note := func(r Record) {
				if r.Block != BlockNone && len(r.Exception) > 0 {
					exceptions = append(exceptions, string(r.Exception))
				}
			}
			for i, line := range fixtureLines(t, name) {
				l := f.Feed(line)
				note(l.Closed)
				switch l.Kind {
				case LineHeader:
					headers++
					if !l.Header.HasTime {
						t.Errorf("line %d: no time in %q", i+1, line)
					}
					if ev := Classify(l.Header.Message); ev.Kind == EventOther {
						t.Errorf("line %d: unclassified message %q", i+1, l.Header.Message)
					}
				case LineContinuation:
					continuations++
				case LineRaw:
					raw++
					if l.Raw == RawNone {
						t.Errorf("line %d: raw line without a kind", i+1)
					}
				case LineMalformed:
					malformed++
					t.Errorf("line %d: unexplained %q", i+1, line)
				default:
					t.Errorf("line %d: kind %s", i+1, l.Kind)
				}
			}
			note(f.Flush())
			if malformed != 0 {
				t.Errorf("%d parse failures", malformed)
			}
			if headers != want.headers || continuations != want.continuations || raw != want.raw {
				t.Errorf("headers=%d continuations=%d raw=%d, want %d %d %d",
					headers, continuations, raw, want.headers, want.continuations, want.raw)
			}
			if strings.Join(exceptions, "|") != strings.Join(want.exceptions, "|") {
				t.Errorf("exceptions %q, want %q", exceptions, want.exceptions)
			}
		})
	}
}

// TestFixturesMatchShared checks that testdata/ holds unchanged copies of
// shared/fixtures/gunicorn/ and that every shared file is either covered or
// deliberately excluded. It skips where shared/ is not next to the repo.
func TestFixturesMatchShared(t *testing.T) {
	root := filepath.Join("..", "..", "..", "shared", "fixtures", "gunicorn")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("shared fixtures not found: %v", err)
	}
	covered := map[string]bool{}
	for _, name := range fixtureFiles {
		covered[name] = true
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if excludedFixtures[d.Name()] {
			return nil
		}
		if !covered[rel] {
			t.Errorf("shared fixture %s is neither tested nor excluded", rel)
			return nil
		}
		shared, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		local, err := os.ReadFile(filepath.Join("testdata", "gunicorn", rel))
		if err != nil {
			return err
		}
		if !bytes.Equal(shared, local) {
			t.Errorf("testdata copy of %s differs from shared", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFixturesDoNotAllocate holds the hot path to zero allocations per line
// over real input.
func TestFixturesDoNotAllocate(t *testing.T) {
	var lines [][]byte
	for _, name := range fixtureFiles {
		lines = append(lines, fixtureLines(t, name)...)
	}
	f := Folder{Location: time.UTC}
	allocs := testing.AllocsPerRun(20, func() {
		for _, line := range lines {
			l := f.Feed(line)
			if l.Kind == LineHeader {
				Classify(l.Header.Message)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("Feed+Classify allocates %.1f times per pass over %d lines", allocs, len(lines))
	}
}
