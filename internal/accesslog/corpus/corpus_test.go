package corpus_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog/corpus"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/routes"
)

func generate(t *testing.T, n int, seed int64, paths int) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, corpus.Generate(&buf, n, seed, paths))
	return buf.Bytes()
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// goldenSHA256 pins the output of Generate(1000 lines, seed 1, 100 paths):
// the generator uses no library randomness, so this must not change across
// platforms or Go releases. Update it only when changing the generator on
// purpose.
const goldenSHA256 = "9addb8763089db2512b2505e64494905021bef1b8324ed8aeeb2c52b292e00de"

func TestDeterministic(t *testing.T) {
	a := generate(t, 1000, 1, 100)
	b := generate(t, 1000, 1, 100)
	require.Equal(t, sum(a), sum(b))
	require.Equal(t, goldenSHA256, sum(a))
	require.NotEqual(t, sum(a), sum(generate(t, 1000, 2, 100)))
	// A prefix of a longer run is not required to match (the path
	// coverage schedule depends on n), but the same arguments always do.
	require.Equal(t, sum(generate(t, 10, 7, 3)), sum(generate(t, 10, 7, 3)))
}

func distinctPaths(t *testing.T, data []byte) (map[string]int, accesslog.Record, int) {
	t.Helper()
	p, err := accesslog.Compile(corpus.Format)
	require.NoError(t, err)
	paths := map[string]int{}
	var rec accesslog.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		require.NoError(t, p.Parse(sc.Bytes(), &rec), "line %q", sc.Text())
		paths[string(rec.Path)]++
		n++
	}
	return paths, rec, n
}

func TestDistinctPaths(t *testing.T) {
	for _, tc := range []struct{ n, paths, want int }{
		{5000, 300, 300},
		{5000, 1, 1},
		{100, 1000, 100},
		{20000, 20000, 20000},
		{0, 10, 0},
	} {
		got, _, lines := distinctPaths(t, generate(t, tc.n, 3, tc.paths))
		require.Equal(t, tc.n, lines)
		require.Len(t, got, tc.want, "n=%d paths=%d", tc.n, tc.paths)
	}
}

// TestRealistic checks the mix the benchmarks rely on: every line parses,
// the average length is close to 178 bytes (2,000,000 lines ≈ 357 MB), and
// the statuses, methods, escaped quotes and handle_error lines occur.
func TestRealistic(t *testing.T) {
	const n = 50000
	data := generate(t, n, 1, 5000)
	avg := float64(len(data)) / n
	require.InDelta(t, 178.5, avg, 3, "average line length")

	p, err := accesslog.Compile(corpus.Format)
	require.NoError(t, err)
	var rec accesslog.Record
	classes := map[int]int{}
	methods := map[accesslog.Method]int{}
	errLines, escaped, withQuery, withUser := 0, 0, 0, 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		require.NoError(t, p.Parse(sc.Bytes(), &rec))
		classes[rec.Status/100]++
		methods[rec.Method]++
		if rec.ErrorHandler {
			errLines++
		}
		if bytes.Contains(rec.UserAgent, []byte(`\"`)) {
			escaped++
		}
		if rec.Query != nil {
			withQuery++
		}
		if string(rec.User) != "-" {
			withUser++
		}
		require.True(t, rec.HasDuration)
	}
	for c := 2; c <= 5; c++ {
		require.Positive(t, classes[c], "status class %dxx", c)
	}
	for _, m := range []accesslog.Method{accesslog.MethodGET, accesslog.MethodPOST, accesslog.MethodPUT,
		accesslog.MethodDELETE, accesslog.MethodPATCH, accesslog.MethodHEAD, accesslog.MethodOPTIONS} {
		require.Positive(t, methods[m], m.String())
	}
	require.Greater(t, classes[2], n*8/10)
	require.Positive(t, errLines)
	require.Positive(t, escaped)
	require.Greater(t, withQuery, n/10)
	require.Positive(t, withUser)
}

func TestGenerateErrors(t *testing.T) {
	require.Error(t, corpus.Generate(io.Discard, -1, 1, 10))
	require.Error(t, corpus.Generate(io.Discard, 1, 1, 0))
	require.Error(t, corpus.Generate(failWriter{}, 10, 1, 10))
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrShortWrite }

// MixSite is the route-table corpus of issue 9: 46 templates, 10,000
// distinct paths of which a large share are numbered or hashed asset files,
// and every path collapses into its template under the default normaliser.
func TestSiteMix(t *testing.T) {
	routesList := corpus.SiteRoutes()
	require.Len(t, routesList, 46)
	templates := map[string]bool{}
	for _, r := range routesList {
		templates[r] = true
	}
	require.Len(t, templates, 46, "distinct templates")

	var buf bytes.Buffer
	require.NoError(t, corpus.GenerateMix(&buf, 100000, 1, 10000, corpus.MixSite))
	paths, _, n := distinctPaths(t, buf.Bytes())
	require.Equal(t, 100000, n)
	require.InDelta(t, 10000, len(paths), 20, "distinct paths")
	assets, seen := 0, map[string]bool{}
	for p := range paths {
		r := string(routes.Normalize(nil, []byte(p)))
		require.True(t, templates[r], "path %q normalises to %q, not a template", p, r)
		seen[r] = true
		if strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, "/media/") {
			assets++
		}
	}
	require.Len(t, seen, 46, "every template occurs")
	require.Greater(t, assets, len(paths)/5, "asset files are a large share of the paths")

	var again bytes.Buffer
	require.NoError(t, corpus.GenerateMix(&again, 100000, 1, 10000, corpus.MixSite))
	require.Equal(t, sum(buf.Bytes()), sum(again.Bytes()), "deterministic")

	_, err := corpus.ParseMix("nope")
	require.Error(t, err)
	m, err := corpus.ParseMix("site")
	require.NoError(t, err)
	require.Equal(t, corpus.MixSite, m)
	require.Error(t, corpus.GenerateMix(io.Discard, 1, 1, 1, corpus.Mix(7)))
}
