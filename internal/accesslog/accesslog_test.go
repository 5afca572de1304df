package accesslog

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const defaultPlusD = DefaultFormat + ` %(D)s`

// want is the subset of a Record a test checks; nil slices are not checked,
// use a pointer-to-empty to check for empty.
type want struct {
	method          Method
	status          int
	dur             time.Duration
	hasDur          bool
	errHandler      bool
	trusted         bool
	bytes           int64
	hasBytes        bool
	path, query     *string
	remote, user    *string
	referer, agent  *string
	proto, rawTime  *string
	pid             int
	skipNumberCheck bool
}

func str(s string) *string { return &s }

func checkRecord(t *testing.T, rec *Record, w want) {
	t.Helper()
	if !w.skipNumberCheck {
		require.Equal(t, w.method, rec.Method, "method")
		require.Equal(t, w.status, rec.Status, "status")
		require.Equal(t, w.hasDur, rec.HasDuration, "HasDuration")
		require.Equal(t, w.dur, rec.Duration, "duration")
		require.Equal(t, w.errHandler, rec.ErrorHandler, "ErrorHandler")
		require.Equal(t, w.trusted, rec.DurationTrusted, "DurationTrusted")
		require.Equal(t, w.hasBytes, rec.HasBytes, "HasBytes")
		require.Equal(t, w.bytes, rec.RespBytes, "RespBytes")
		require.Equal(t, w.pid, rec.WorkerPID, "WorkerPID")
	}
	for _, c := range []struct {
		name string
		want *string
		got  []byte
	}{
		{"Path", w.path, rec.Path}, {"Query", w.query, rec.Query}, {"Remote", w.remote, rec.Remote},
		{"User", w.user, rec.User}, {"Referer", w.referer, rec.Referer}, {"UserAgent", w.agent, rec.UserAgent},
		{"Proto", w.proto, rec.Proto}, {"Time", w.rawTime, rec.Time},
	} {
		if c.want != nil {
			require.Equal(t, *c.want, string(c.got), c.name)
		}
	}
}

func TestCompileDefault(t *testing.T) {
	p, err := Compile("")
	require.NoError(t, err)
	require.Equal(t, DefaultFormat, p.Format())
	require.Equal(t, []string{"h", "l", "u", "t", "r", "s", "b", "f", "a"}, p.Fields())
	require.False(t, p.HasDuration())
	require.Equal(t, "", p.DurationAtom())

	var rec Record
	line := `127.0.0.1 - - [24/Nov/2026:17:49:41 +0000] "GET / HTTP/1.1" 200 21 "-" "curl/7.88.1"`
	require.NoError(t, p.Parse([]byte(line), &rec))
	checkRecord(t, &rec, want{method: MethodGET, status: 200, bytes: 21, hasBytes: true,
		path: str("/"), remote: str("127.0.0.1"), agent: str("curl/7.88.1"), referer: str("-"),
		user: str("-"), proto: str("HTTP/1.1"), rawTime: str("[24/Nov/2026:17:49:41 +0000]")})
	require.Nil(t, rec.Query)
	for i, f := range p.Fields() {
		v := string(rec.Value(i))
		require.True(t, strings.Contains(line, v), "field %s value %q", f, v)
	}
	require.Equal(t, "[24/Nov/2026:17:49:41 +0000]", string(rec.Value(3)))
	require.Nil(t, rec.Value(-1))
	require.Nil(t, rec.Value(9))
}

func TestDurationAtom(t *testing.T) {
	for _, tc := range []struct{ format, atom string }{
		{DefaultFormat, ""},
		{`%(h)s %(T)s`, "T"},
		{`%(h)s %(T)s %(M)s`, "M"},
		{`%(h)s %(T)s %(M)s %(L)s`, "L"},
		{`%(h)s %(L)s %(D)s %(M)s`, "D"},
		{`%(D)s`, "D"},
	} {
		p, err := Compile(tc.format)
		require.NoError(t, err, tc.format)
		require.Equal(t, tc.atom, p.DurationAtom(), tc.format)
		require.Equal(t, tc.atom != "", p.HasDuration(), tc.format)
	}
}

// TestAtoms renders one request through a format holding each atom and
// checks what Parse makes of it.
func TestAtoms(t *testing.T) {
	base := okRequest()
	base.ReqHeaders = map[string]string{"x-forwarded-for": "10.1.2.3, 10.0.0.1", "x-request-id": "abc"}
	base.RespHeaders = map[string]string{"content-type": "text/plain", "x-worker-pid": "20868"}
	base.Environ = map[string]string{"remote_addr": "127.0.0.1", "remote_port": "34118"}
	for _, tc := range []struct {
		name, format string
		check        func(t *testing.T, rec *Record, p *Parser)
	}{
		{"h", `%(h)s|`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, "127.0.0.1", string(rec.Remote)) }},
		{"l", `x %(l)s x`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, "-", string(rec.Value(0))) }},
		{"u", `%(u)s|`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, "-", string(rec.User)) }},
		{"t", `%(t)s`, func(t *testing.T, rec *Record, _ *Parser) {
			require.Equal(t, "[24/Nov/2026:17:50:12 +0000]", string(rec.Time))
		}},
		{"r", `"%(r)s"`, func(t *testing.T, rec *Record, _ *Parser) {
			require.Equal(t, MethodGET, rec.Method)
			require.Equal(t, "/api/v1/users/42", string(rec.Path))
			require.Equal(t, "page=2", string(rec.Query))
			require.Equal(t, "HTTP/1.1", string(rec.Proto))
		}},
		{"m", `%(m)s`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, MethodGET, rec.Method) }},
		{"U", `U="%(U)s"`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, "/api/v1/users/42", string(rec.Path)) }},
		{"q", `q="%(q)s"`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, "page=2", string(rec.Query)) }},
		{"H", `%(H)s`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, "HTTP/1.1", string(rec.Proto)) }},
		{"s", `%(s)s`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, 200, rec.Status) }},
		{"B", `%(B)s`, func(t *testing.T, rec *Record, _ *Parser) {
			require.True(t, rec.HasBytes)
			require.Equal(t, int64(1234), rec.RespBytes)
		}},
		{"b", `%(b)s`, func(t *testing.T, rec *Record, _ *Parser) {
			require.True(t, rec.HasBytes)
			require.Equal(t, int64(1234), rec.RespBytes)
		}},
		{"f", `"%(f)s"`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, "-", string(rec.Referer)) }},
		{"a", `"%(a)s"`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, "curl/7.88.1", string(rec.UserAgent)) }},
		{"T", `%(T)s`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, time.Second, rec.Duration) }},
		{"M", `%(M)s`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, 1500*time.Millisecond, rec.Duration) }},
		{"D", `%(D)s`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, 1500481*time.Microsecond, rec.Duration) }},
		{"L", `%(L)s`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, 1500481*time.Microsecond, rec.Duration) }},
		{"p", `%(p)s`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, 20868, rec.WorkerPID) }},
		{"{}i", `xff="%({x-forwarded-for}i)s" id=%({X-Request-Id}i)s`, func(t *testing.T, rec *Record, p *Parser) {
			require.Equal(t, []string{"{x-forwarded-for}i", "{X-Request-Id}i"}, p.Fields())
			require.Equal(t, "10.1.2.3, 10.0.0.1", string(rec.Value(0)))
			require.Equal(t, "abc", string(rec.Value(1)))
		}},
		{"{}o", `ct=%({content-type}o)s wp=%({X-Worker-Pid}o)s`, func(t *testing.T, rec *Record, _ *Parser) {
			require.Equal(t, "text/plain", string(rec.Value(0)))
			require.Equal(t, "20868", string(rec.Value(1)))
		}},
		{"{}e", `ra=%({remote_addr}e)s rp=%({REMOTE_PORT}e)s`, func(t *testing.T, rec *Record, _ *Parser) {
			require.Equal(t, "127.0.0.1", string(rec.Value(0)))
			require.Equal(t, "34118", string(rec.Value(1)))
		}},
		{"missing header", `x=%({nope}i)s.`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, "-", string(rec.Value(0))) }},
		{"unknown atom", `%(s)s %(zz)s %(b)s`, func(t *testing.T, rec *Record, p *Parser) {
			require.Equal(t, "zz", p.Fields()[1])
			require.Equal(t, "-", string(rec.Value(1)))
			require.Equal(t, 200, rec.Status)
		}},
		{"percent", `100%% %(s)s%%`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, 200, rec.Status) }},
		{"literal prefix", `app=web %(s)s`, func(t *testing.T, rec *Record, _ *Parser) { require.Equal(t, 200, rec.Status) }},
		{"t then p adjacent", `%(t)s%(p)s%(s)s`, func(t *testing.T, rec *Record, _ *Parser) {
			require.Equal(t, 20868, rec.WorkerPID)
			require.Equal(t, 200, rec.Status)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.format)
			require.NoError(t, err)
			line, err := gunicornLine(tc.format, base)
			require.NoError(t, err)
			var rec Record
			require.NoError(t, p.Parse([]byte(line), &rec), "line %q", line)
			tc.check(t, &rec, p)
		})
	}
}

// TestEscaping covers Gunicorn's quoting rules (glogging.py SafeAtoms
// escapes only '"', as `\"`) through the default format plus %(D)s.
func TestEscaping(t *testing.T) {
	p, err := Compile(defaultPlusD)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		line string
		w    want
	}{
		{
			name: "real escaped referer and agent",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET /?a=1&b=two HTTP/1.1" 200 21 "http://ref.example/x?y=\"z\"" "Mozilla/5.0 \"quoted\" agent \ backslash" 180`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 180 * time.Microsecond, hasDur: true, trusted: true,
				path: str("/"), query: str("a=1&b=two"), referer: str(`http://ref.example/x?y=\"z\"`),
				agent: str(`Mozilla/5.0 \"quoted\" agent \ backslash`)},
		},
		{
			name: "agent ends in backslash",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "-" "agent\" 180`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 180 * time.Microsecond, hasDur: true, trusted: true,
				agent: str(`agent\`)},
		},
		{
			name: "referer ends in backslash",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "http://x/\" "curl" 180`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 180 * time.Microsecond, hasDur: true, trusted: true,
				referer: str(`http://x/\`), agent: str("curl")},
		},
		{
			name: "both end in backslash",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "\" "\" 180`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 180 * time.Microsecond, hasDur: true, trusted: true,
				referer: str(`\`), agent: str(`\`)},
		},
		{
			name: "agent is one quote",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "-" "\"" 180`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 180 * time.Microsecond, hasDur: true, trusted: true,
				agent: str(`\"`)},
		},
		{
			name: "agent with escaped quote followed by text like the format",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "-" "x\" 5 y" 180`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 180 * time.Microsecond, hasDur: true, trusted: true,
				agent: str(`x\" 5 y`)},
		},
		{
			name: "agent ending in backslash with a lookalike inside",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "-" "a\" 5\" 180`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 180 * time.Microsecond, hasDur: true, trusted: true,
				agent: str(`a\" 5\`)},
		},
		{
			name: "referer ending in backslash, agent a single space",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "a\" " " 180`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 180 * time.Microsecond, hasDur: true, trusted: true,
				referer: str(`a\`), agent: str(" ")},
		},
		{
			name: "empty remote (unix socket)",
			line: ` - - [24/Nov/2026:18:00:16 +0000] "GET /unix HTTP/1.1" 200 21 "-" "curl/7.88.1" 99`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 99 * time.Microsecond, hasDur: true, trusted: true,
				remote: str(""), path: str("/unix")},
		},
		{
			name: "user with spaces",
			line: `127.0.0.1 - ops team [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "-" "curl" 7`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true,
				user: str("ops team")},
		},
		{
			name: "user with a bracket lookalike",
			line: `127.0.0.1 - a [b [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "-" "curl" 7`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true,
				user: str("a [b"), rawTime: str("[24/Nov/2026:17:50:12 +0000]")},
		},
		{
			name: "user with a full time lookalike",
			line: `127.0.0.1 - x [24/Nov/2026:00:00:00 +0000] y [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "-" "curl" 7`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true,
				user: str("x [24/Nov/2026:00:00:00 +0000] y"), rawTime: str("[24/Nov/2026:17:50:12 +0000]")},
		},
		{
			name: "user with an escaped quote",
			line: `127.0.0.1 - a\"b [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "-" "curl" 7`,
			w: want{method: MethodGET, status: 200, bytes: 21, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true,
				user: str(`a\"b`)},
		},
		{
			name: "escaped quote in the raw URI",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET /a\"b?c=\"d\" HTTP/1.1" 404 0 "-" "curl" 7`,
			w: want{method: MethodGET, status: 404, bytes: 0, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true,
				path: str(`/a\"b`), query: str(`c=\"d\"`)},
		},
		{
			name: "absolute-form target",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET http://example.com/x/y?z=1 HTTP/1.1" 200 1 "-" "curl" 7`,
			w: want{method: MethodGET, status: 200, bytes: 1, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true,
				path: str("/x/y"), query: str("z=1")},
		},
		{
			name: "absolute-form target without a path",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "OPTIONS https://example.com HTTP/1.1" 200 1 "-" "curl" 7`,
			w: want{method: MethodOPTIONS, status: 200, bytes: 1, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true,
				path: str("")},
		},
		{
			name: "asterisk target and other method",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "PROPFIND * HTTP/1.1" 405 0 "-" "curl" 7`,
			w: want{method: MethodOther, status: 405, bytes: 0, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true,
				path: str("*")},
		},
		{
			name: "non-ASCII and control bytes pass through",
			line: "127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] \"GET /caf\xc3\xa9 HTTP/1.1\" 200 1 \"-\" \"t\x01ab\\x\tz\xff\" 7",
			w: want{method: MethodGET, status: 200, bytes: 1, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true,
				path: str("/caf\xc3\xa9"), agent: str("t\x01ab\\x\tz\xff")},
		},
		{
			name: "CRLF line ending",
			line: "127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] \"HEAD / HTTP/1.0\" 200 21 \"-\" \"curl\" 7\r\n",
			w: want{method: MethodHEAD, status: 200, bytes: 21, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true,
				proto: str("HTTP/1.0")},
		},
		{
			name: "dash bytes",
			line: `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 - "-" "curl" 7`,
			w:    want{method: MethodGET, status: 200, bytes: 0, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true},
		},
		{
			name: "non-English month (LC_TIME)",
			line: `127.0.0.1 - - [24/nov./2026:17:50:12 +0100] "GET / HTTP/1.1" 200 1 "-" "curl" 7`,
			w: want{method: MethodGET, status: 200, bytes: 1, hasBytes: true, dur: 7 * time.Microsecond, hasDur: true, trusted: true,
				rawTime: str("[24/nov./2026:17:50:12 +0100]")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec Record
			require.NoError(t, p.Parse([]byte(tc.line), &rec))
			checkRecord(t, &rec, tc.w)
			requireFastEqualsSlow(t, p, []byte(tc.line))
		})
	}
}

// TestRejects checks lines that are not in the format.
func TestRejects(t *testing.T) {
	p, err := Compile(defaultPlusD)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, line, field string
	}{
		{"empty", ``, "h"},
		{"status not a number", `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" OK 21 "-" "curl" 7`, "s"},
		{"status too long", `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 2000 21 "-" "curl" 7`, "s"},
		{"duration not a number", `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "-" "curl" 7x`, "D"},
		{"missing duration", `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "-" "curl"`, ""},
		{"bad time", `127.0.0.1 - - [yesterday] "GET / HTTP/1.1" 200 21 "-" "curl" 7`, ""},
		{"request with one word", `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET" 200 21 "-" "curl" 7`, ""},
		{"unescaped quote in agent", `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "-" "cu"rl" 7`, ""},
		{"error log line", `[2026-11-24 17:49:25 +0000] [20865] [INFO] Starting gunicorn 20.1.0`, ""},
		{"uvicorn access line", `127.0.0.1:50000 - "GET / HTTP/1.1" 200`, ""},
		{"truncated", `127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTT`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec Record
			rec.Status = 999
			err := p.Parse([]byte(tc.line), &rec)
			require.Error(t, err)
			require.ErrorIs(t, err, ErrMismatch)
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			if tc.field != "" {
				require.Equal(t, tc.field, pe.Field, "error %v", err)
			}
			require.Contains(t, err.Error(), "accesslog:")
			require.Zero(t, rec.Status, "failed Parse leaves no values")
			require.Nil(t, rec.Value(0))
		})
	}
}

func TestAmbiguousBudget(t *testing.T) {
	// Three unquoted free-text fields separated by spaces, with a last
	// field that never validates: the search is bounded.
	p, err := Compile(`%(u)s %({a}i)s %({b}i)s %({c}i)s %(s)s`)
	require.NoError(t, err)
	line := []byte(strings.Repeat("x ", 400) + "nope")
	var rec Record
	err = p.Parse(line, &rec)
	require.ErrorIs(t, err, ErrAmbiguous)
}

func TestFormatErrors(t *testing.T) {
	for _, tc := range []struct {
		format string
		pos    int
		substr string
	}{
		{`%(h)s %(s)d`, 6, `%(s)d`},
		{`%(h)s %s`, 6, "positional"},
		{`%(h)s %(a).20s`, 6, "precision"},
		{`%(h)s %(D)*d`, 6, "'*'"},
		{`%(h)s %(r)r`, 6, "%r"},
		{`%(h)s %(a)`, 6, "no conversion"},
		{`%(h)s %(a`, 6, "unterminated"},
		{`%(h)s %`, 6, "incomplete"},
		{`%(s)s%(b)s`, 5, `"b" follows atom "s"`},
		{`%(u)s%(t)s`, 5, `"t" follows atom "u"`},
		{`%(a)10s`, 0, "width"},
		{`%(D)44444444444444s`, 0, "larger than 1024"},
		{`%(D)1025s`, 0, "larger than 1024"},
		{"%(h)s\n%(s)s", 5, "line break"},
		{`no atoms here`, 0, "no atoms"},
		{`%(D)-8s%(s)s`, 7, `"s" follows atom "D"`},
	} {
		t.Run(tc.format, func(t *testing.T) {
			_, err := Compile(tc.format)
			require.Error(t, err)
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.pos, fe.Pos, "error %v", err)
			require.Contains(t, err.Error(), tc.substr)
			require.Equal(t, tc.format, fe.Format)
		})
	}
}

// TestWidthAndFlags checks the Python %-format width and flags Compile
// accepts on token atoms, with lines rendered by Python's rules.
func TestWidthAndFlags(t *testing.T) {
	r := okRequest()
	r.DurationUS = 4321
	for _, format := range []string{
		`%(s)5s|%(D)s`,
		`%(s)-5s|%(D)s`,
		`%(s)-5s %(D)8s`,
		`%(h)20s %(s)3s %(D)08d`,
		`%(B)+d %(D) d %(T)5d`,
		`%(s)-5s  %(D)-9s`,
		`%(s)s %(D)-9s|`,
		`%(p)10s %(D)s`,
		`%(B)+06d|%(D) 06d|`,
		`%(B)-+8d|%(T)+6d|%(D)s`,
		`%(B)000030d %(D)030d`,
		`%(B)-1s0%(D)s`,
		`%(B)-6s6%(D)s`,
	} {
		t.Run(format, func(t *testing.T) {
			p, err := Compile(format)
			require.NoError(t, err)
			line, err := gunicornLine(format, r)
			require.NoError(t, err)
			var rec Record
			require.NoError(t, p.Parse([]byte(line), &rec), "line %q", line)
			if strings.Contains(format, "(s)") {
				require.Equal(t, 200, rec.Status)
			}
			require.Equal(t, 4321*time.Microsecond, rec.Duration, "line %q", line)
			if strings.Contains(format, "(B)") {
				require.Equal(t, int64(1234), rec.RespBytes)
			}
			if strings.Contains(format, "(h)") {
				require.Equal(t, "127.0.0.1", string(rec.Remote))
			}
			if strings.Contains(format, "(p)") {
				require.Equal(t, 20868, rec.WorkerPID)
			}
			requireFastEqualsSlow(t, p, []byte(line))
		})
	}
}

// TestJSONFormats checks JSON-shaped formats; Gunicorn does not JSON-escape,
// it only writes '"' as `\"`.
func TestJSONFormats(t *testing.T) {
	r := okRequest()
	r.Agent = `Mozilla/5.0 "quoted" \ agent`
	r.Referer = `https://example.com/?q="x"`
	r.ReqHeaders = map[string]string{"x-forwarded-for": "203.0.113.9, 10.0.0.1"}
	for _, tc := range []struct {
		name, format string
	}{
		{"strings and bare numbers", `{"remote":"%(h)s","request":"%(r)s","status":%(s)s,"bytes":%(B)s,"duration_us":%(D)s,"agent":"%(a)s","referer":"%(f)s"}`},
		{"everything quoted", `{"time":"%(t)s","remote":"%(h)s","method":"%(m)s","path":"%(U)s","query":"%(q)s","status":"%(s)s","bytes":"%(b)s","duration":"%(L)s","xff":"%({x-forwarded-for}i)s","agent":"%(a)s"}`},
		{"spaced", `{ "remote": "%(h)s", "status": %(s)s, "ms": %(M)s, "pid": "%(p)s", "ua": "%(a)s" }`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.format)
			require.NoError(t, err)
			line, err := gunicornLine(tc.format, r)
			require.NoError(t, err)
			var rec Record
			require.NoError(t, p.Parse([]byte(line), &rec), "line %q", line)
			require.Equal(t, 200, rec.Status)
			require.Equal(t, "127.0.0.1", string(rec.Remote))
			require.True(t, rec.HasDuration)
			require.True(t, rec.DurationTrusted)
			require.Equal(t, `Mozilla/5.0 \"quoted\" \ agent`, string(rec.UserAgent))
			if strings.Contains(tc.format, "%(r)s") || strings.Contains(tc.format, "%(U)s") {
				require.Equal(t, "/api/v1/users/42", string(rec.Path))
			}
			requireFastEqualsSlow(t, p, []byte(line))
		})
	}
}

// TestErrorHandlerRule checks the recognition of lines written by
// Worker.handle_error, whose duration is bogus: it resets request_start
// before writing the line (base.py handle_error).
func TestErrorHandlerRule(t *testing.T) {
	handleError := func(status int) request {
		r := okRequest()
		r.Status = status
		r.Sent = 0
		r.Referer, r.Agent = "", ""
		r.HasPathInfo = false
		r.DurationUS = 1000
		return r
	}
	appError := func(status int) request {
		r := okRequest()
		r.Status = status
		r.Sent = 0
		return r
	}
	full := `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" U="%(U)s" D=%(D)s`
	for _, tc := range []struct {
		name, format string
		r            request
		errHandler   bool
	}{
		{"500 from handle_error", full, handleError(500), true},
		{"400 from handle_error", full, handleError(400), true},
		{"403 from handle_error", full, handleError(403), true},
		{"500 from handle_error, default+D", defaultPlusD, handleError(500), true},
		{"500 from the app with a user agent", full, appError(500), false},
		{"500 with a body", defaultPlusD, func() request { r := handleError(500); r.Sent = 10; return r }(), false},
		{"502 is never handle_error", defaultPlusD, handleError(502), false},
		{"404 is never handle_error", defaultPlusD, handleError(404), false},
		{"PATH_INFO present decides", full, func() request { r := handleError(500); r.HasPathInfo = true; return r }(), false},
		{"only status and duration: status decides", `%(s)s %(D)s`, appError(500), true},
		{"only status and duration: 200", `%(s)s %(D)s`, appError(200), false},
		{"headers are not evidence", `%(s)s %(b)s xff=%({x-forwarded-for}i)s %(D)s`,
			func() request {
				r := handleError(500)
				r.ReqHeaders = map[string]string{"x-forwarded-for": "1.2.3.4"}
				return r
			}(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.format)
			require.NoError(t, err)
			line, err := gunicornLine(tc.format, tc.r)
			require.NoError(t, err)
			var rec Record
			require.NoError(t, p.Parse([]byte(line), &rec), "line %q", line)
			require.Equal(t, tc.errHandler, rec.ErrorHandler, "line %q", line)
			require.True(t, rec.HasDuration)
			require.Equal(t, !tc.errHandler, rec.DurationTrusted)
		})
	}
}

func TestDurationFallbacks(t *testing.T) {
	// 19.9 renders %(M)s as "-"; a format with only M then has no
	// duration on such lines, and D still wins when present.
	p, err := Compile(`%(s)s M=%(M)s`)
	require.NoError(t, err)
	var rec Record
	require.NoError(t, p.Parse([]byte(`200 M=-`), &rec))
	require.False(t, rec.HasDuration)
	require.False(t, rec.DurationTrusted)

	p, err = Compile(`%(s)s T=%(T)s M=%(M)s L=%(L)s`)
	require.NoError(t, err)
	require.NoError(t, p.Parse([]byte(`200 T=1 M=- L=1.500481`), &rec))
	require.Equal(t, 1500481*time.Microsecond, rec.Duration)
	require.NoError(t, p.Parse([]byte(`200 T=2 M=- L=-`), &rec))
	require.Equal(t, 2*time.Second, rec.Duration)

	// Too large for a time.Duration: absent, the next atom is used.
	p, err = Compile(`%(s)s T=%(T)s M=%(M)s`)
	require.NoError(t, err)
	require.NoError(t, p.Parse([]byte(`200 T=3 M=200000000000000`), &rec))
	require.Equal(t, 3*time.Second, rec.Duration)
	require.NoError(t, p.Parse([]byte(`200 T=999999999999999999 M=999999999999999999`), &rec))
	require.False(t, rec.HasDuration)

	p, err = Compile(`%(s)s %(B)s`)
	require.NoError(t, err)
	require.NoError(t, p.Parse([]byte(`200 None`), &rec))
	require.False(t, rec.HasBytes)
}

func TestMethods(t *testing.T) {
	p, err := Compile(`"%(r)s"`)
	require.NoError(t, err)
	var rec Record
	for _, m := range AllMethods {
		name := m.String()
		if m == MethodOther {
			name = "BREW"
		}
		require.NoError(t, p.Parse([]byte(`"`+name+` / HTTP/1.1"`), &rec))
		require.Equal(t, m, rec.Method)
	}
	require.Equal(t, "", MethodNone.String())
	require.Equal(t, "OTHER", Method(200).String())
	require.Len(t, methodNames, NumMethods)
	// %(m)s wins over %(r)s and a format without either gives MethodNone.
	p, err = Compile(`%(m)s "%(r)s"`)
	require.NoError(t, err)
	require.NoError(t, p.Parse([]byte(`DELETE "DELETE /x HTTP/1.1"`), &rec))
	require.Equal(t, MethodDELETE, rec.Method)
	p, err = Compile(`%(s)s`)
	require.NoError(t, err)
	require.NoError(t, p.Parse([]byte(`200`), &rec))
	require.Equal(t, MethodNone, rec.Method)
}

func TestParseTime(t *testing.T) {
	got, err := ParseTime([]byte("[24/Nov/2026:17:50:12 +0100]"))
	require.NoError(t, err)
	require.True(t, got.Equal(time.Date(2026, 11, 24, 16, 50, 12, 0, time.UTC)))
	_, err = ParseTime([]byte("24/Nov/2026:17:50:12 +0000"))
	require.NoError(t, err)
	_, err = ParseTime([]byte("[24/nov./2026:17:50:12 +0000]"))
	require.Error(t, err)
}

func TestAppendUnescaped(t *testing.T) {
	require.Equal(t, `a "b" \ c\`, string(AppendUnescaped(nil, []byte(`a \"b\" \ c\`))))
	require.Equal(t, `x"`, string(AppendUnescaped([]byte("x"), []byte(`\"`))))
}

func TestZeroAllocs(t *testing.T) {
	p, err := Compile(defaultPlusD)
	require.NoError(t, err)
	good := []byte(`127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET /?a=1&b=two HTTP/1.1" 200 21 "http://ref.example/x?y=\"z\"" "Mozilla/5.0 \"quoted\" agent \ backslash" 180`)
	ambiguous := []byte(`127.0.0.1 - a [b [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "x\" "y\" 7`)
	bad := []byte(`127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" OK 21 "-" "curl" 7`)
	var rec Record
	require.NoError(t, p.Parse(good, &rec))
	for name, line := range map[string][]byte{"good": good, "ambiguous": ambiguous, "bad": bad} {
		allocs := testing.AllocsPerRun(200, func() { _ = p.Parse(line, &rec) })
		require.Zero(t, allocs, name)
	}
}

func TestSentinelErrors(t *testing.T) {
	p, err := Compile(`%(s)s`)
	require.NoError(t, err)
	var rec Record
	err = p.Parse([]byte("abc"), &rec)
	require.True(t, errors.Is(err, ErrMismatch))
	require.False(t, errors.Is(err, ErrAmbiguous))
	require.Equal(t, `accesslog: line does not match the access log format at byte 0 (atom %(s)s)`, err.Error())
}
