package accesslog

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog/corpus"
)

// requireFastEqualsSlow checks that the greedy matcher and the backtracking
// matcher agree on line.
func requireFastEqualsSlow(t *testing.T, p *Parser, line []byte) {
	t.Helper()
	var fast, slow Record
	errFast := p.parse(line, &fast, true)
	errSlow := p.parse(line, &slow, false)
	if errFast != nil || errSlow != nil {
		require.Equal(t, errFast == nil, errSlow == nil, "fast err %v, slow err %v, line %q", errFast, errSlow, line)
		return
	}
	require.Equal(t, slow, fast, "line %q", line)
}

// TestFixtures parses the real access logs captured from Gunicorn 19.9,
// 20.1 (Debian) and 21.2 with the format each run used.
func TestFixtures(t *testing.T) {
	type expect struct {
		lines, errHandler int
		durations         []time.Duration
	}
	for dir, ex := range map[string]expect{
		"20.1-lifecycle": {lines: 11, errHandler: 1, durations: []time.Duration{1301, 217, 180, 861, 111, 1000, 275, 1500481, 874, 367, 1098}},
		"v19":            {lines: 2, errHandler: 1, durations: []time.Duration{496, 1011}},
		"v20deb":         {lines: 2, errHandler: 1, durations: []time.Duration{499, 1371}},
		"v21":            {lines: 2, errHandler: 1, durations: []time.Duration{320, 896}},
	} {
		t.Run(dir, func(t *testing.T) {
			format, err := os.ReadFile(filepath.Join("testdata", "gunicorn", dir, "format.txt"))
			require.NoError(t, err)
			p, err := Compile(strings.TrimSuffix(string(format), "\n"))
			require.NoError(t, err)
			require.Equal(t, "D", p.DurationAtom())
			data, err := os.ReadFile(filepath.Join("testdata", "gunicorn", dir, "access.log"))
			require.NoError(t, err)
			sc := bufio.NewScanner(bytes.NewReader(data))
			var rec Record
			n, eh := 0, 0
			for sc.Scan() {
				line := sc.Bytes()
				require.NoError(t, p.Parse(line, &rec), "line %q", line)
				require.Equal(t, ex.durations[n]*time.Microsecond, rec.Duration, "line %q", line)
				require.Equal(t, "127.0.0.1", string(rec.Remote))
				require.NotZero(t, rec.WorkerPID)
				if rec.ErrorHandler {
					eh++
					require.Equal(t, 500, rec.Status)
					require.Equal(t, "/error", string(rec.Path))
					require.False(t, rec.DurationTrusted)
				} else {
					require.True(t, rec.DurationTrusted)
				}
				requireFastEqualsSlow(t, p, line)
				n++
			}
			require.Equal(t, ex.lines, n)
			require.Equal(t, ex.errHandler, eh)
		})
	}
}

// TestLifecycleFixtureDetails checks the atoms of the 20.1 run that uses
// every atom (its format.txt lists them).
func TestLifecycleFixtureDetails(t *testing.T) {
	format, err := os.ReadFile("testdata/gunicorn/20.1-lifecycle/format.txt")
	require.NoError(t, err)
	p, err := Compile(strings.TrimSuffix(string(format), "\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"h", "l", "u", "t", "r", "s", "b", "f", "a", "m", "U", "q", "H", "B", "T", "M", "D", "L", "p",
		"{x-forwarded-for}i", "{content-type}o", "{X-Worker-Pid}o", "{remote_addr}e", "{nope}i"}, p.Fields())
	data, err := os.ReadFile("testdata/gunicorn/20.1-lifecycle/access.log")
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	var rec Record

	require.NoError(t, p.Parse(lines[2], &rec))
	checkRecord(t, &rec, want{method: MethodGET, status: 200, bytes: 21, hasBytes: true,
		dur: 180 * time.Microsecond, hasDur: true, trusted: true, pid: 20868,
		path: str("/"), query: str("a=1&b=two"), referer: str(`http://ref.example/x?y=\"z\"`),
		agent: str(`Mozilla/5.0 \"quoted\" agent \ backslash`), proto: str("HTTP/1.1")})
	require.Equal(t, "10.1.2.3, 10.0.0.1", string(rec.Value(19)))
	require.Equal(t, "text/plain", string(rec.Value(20)))
	require.Equal(t, "20868", string(rec.Value(21)))
	require.Equal(t, "127.0.0.1", string(rec.Value(22)))
	require.Equal(t, "-", string(rec.Value(23)))

	require.NoError(t, p.Parse(lines[3], &rec))
	require.Equal(t, "alice", string(rec.User))

	require.NoError(t, p.Parse(lines[4], &rec))
	require.Equal(t, 204, rec.Status)
	require.Equal(t, int64(0), rec.RespBytes)
	require.False(t, rec.ErrorHandler, "204 with empty body is not an error line")

	require.NoError(t, p.Parse(lines[5], &rec))
	require.Equal(t, `None`, string(rec.Value(10)))
	require.True(t, rec.ErrorHandler)

	require.NoError(t, p.Parse(lines[6], &rec))
	require.Equal(t, `/with%20space%22quote`, string(rec.Path), "path comes from %(r)s, raw")
	require.Equal(t, `/with space\"quote`, string(rec.Value(10)))

	require.NoError(t, p.Parse(lines[8], &rec))
	require.Equal(t, MethodHEAD, rec.Method)
	require.NoError(t, p.Parse(lines[9], &rec))
	require.Equal(t, MethodPOST, rec.Method)
	require.Equal(t, 20867, rec.WorkerPID)
}

// TestReferenceLines parses other real lines from Debian runs: a unix-socket
// bind, whose %(h)s is empty, and a Gunicorn 22/23 timeout written by
// handle_error.
func TestReferenceLines(t *testing.T) {
	for _, tc := range []struct {
		format, line string
		check        func(t *testing.T, rec *Record)
	}{
		{
			DefaultFormat + ` ra=%({remote_addr}e)s rp=%({remote_port}e)s`,
			` - - [24/Nov/2026:18:00:16 +0000] "GET /unix HTTP/1.1" 200 21 "-" "curl/7.88.1" ra= rp=-`,
			func(t *testing.T, rec *Record) {
				require.Equal(t, "", string(rec.Remote))
				require.Equal(t, "/unix", string(rec.Path))
				require.Equal(t, "", string(rec.Value(9)))
				require.Equal(t, "-", string(rec.Value(10)))
			},
		},
		{
			DefaultFormat + ` T=%(T)s M=%(M)s D=%(D)s L=%(L)s p=%(p)s`,
			`127.0.0.1 - - [24/Nov/2026:17:52:01 +0000] "GET /sleep?s=10 HTTP/1.1" 500 0 "-" "-" T=0 M=1 D=1356 L=0.001356 p=<21357>`,
			func(t *testing.T, rec *Record) {
				// A 22.0/23.0 timeout, written by handle_error.
				require.True(t, rec.ErrorHandler)
				require.False(t, rec.DurationTrusted)
				require.Equal(t, 1356*time.Microsecond, rec.Duration)
			},
		},
		{
			DefaultFormat + ` T=%(T)s M=%(M)s D=%(D)s L=%(L)s p=%(p)s`,
			`127.0.0.1 - - [24/Nov/2026:17:53:15 +0000] "GET / HTTP/1.1" 200 21 "-" "curl/7.88.1" T=0 M=- D=496 L=0.000496 p=<22110>`,
			func(t *testing.T, rec *Record) {
				require.Equal(t, 496*time.Microsecond, rec.Duration)
				require.True(t, rec.DurationTrusted)
			},
		},
	} {
		p, err := Compile(tc.format)
		require.NoError(t, err)
		var rec Record
		require.NoError(t, p.Parse([]byte(tc.line), &rec))
		tc.check(t, &rec)
		requireFastEqualsSlow(t, p, []byte(tc.line))
	}
}

// TestFastMatchesSlowOnCorpus runs both matchers over generated lines and
// over copies with a quote, backslash, space, bracket or digit inserted or
// replaced at every tenth position, for the default+D format and the
// 20.1 fixture format (whose head is the default format too).
func TestFastMatchesSlowOnCorpus(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, corpus.Generate(&buf, 300, 5, 100))
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	format, err := os.ReadFile("testdata/gunicorn/20.1-lifecycle/format.txt")
	require.NoError(t, err)
	for _, f := range []string{corpus.Format, strings.TrimSuffix(string(format), "\n"), DefaultFormat + ` "%(u)s" %(D)s`} {
		p, err := Compile(f)
		require.NoError(t, err)
		for _, line := range lines {
			requireFastEqualsSlow(t, p, line)
			for k := 0; k < len(line); k += 10 {
				for _, c := range []byte(`"\ [1-`) {
					mutated := append(append(append([]byte{}, line[:k]...), c), line[k:]...)
					requireFastEqualsSlow(t, p, mutated)
					mutated = append([]byte{}, line...)
					mutated[k] = c
					requireFastEqualsSlow(t, p, mutated)
				}
			}
		}
	}
}
