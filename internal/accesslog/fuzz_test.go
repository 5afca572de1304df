package accesslog

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var seedFormats = []string{
	"",
	DefaultFormat,
	defaultPlusD,
	`%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" m=%(m)s U="%(U)s" q="%(q)s" H=%(H)s B=%(B)s T=%(T)s M=%(M)s D=%(D)s L=%(L)s p=%(p)s xff="%({x-forwarded-for}i)s" ct="%({content-type}o)s" wp=%({X-Worker-Pid}o)s ra=%({remote_addr}e)s missing=%({nope}i)s`,
	`{"remote":"%(h)s","request":"%(r)s","status":%(s)s,"bytes":%(B)s,"duration_us":%(D)s,"agent":"%(a)s"}`,
	`%(t)s%(p)s %(s)5s %(D)-8s|`,
	`%(s)s %(u)s %(a)s %(D)s`,
	`100%% %(zz)s %(h)d`,
	`%(a).10s`,
	`%(h`,
	`%`,
}

// FuzzCompile checks that Compile never panics, that its errors are
// *FormatError with a position inside the format, and that a format it
// accepts parses a line Gunicorn would write for it.
func FuzzCompile(f *testing.F) {
	for _, s := range seedFormats {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, format string) {
		p, err := Compile(format)
		if err != nil {
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			require.GreaterOrEqual(t, fe.Pos, 0)
			require.LessOrEqual(t, fe.Pos, len(format))
			require.NotEmpty(t, err.Error())
			return
		}
		require.NotEmpty(t, p.Fields())
		if format != "" {
			require.Equal(t, format, p.Format())
		}
		for _, r := range []request{okRequest(), nastyRequest()} {
			line, err := gunicornLine(p.Format(), r)
			if err != nil {
				return // a directive Python itself would reject
			}
			var rec Record
			err = p.Parse([]byte(line), &rec)
			if errors.Is(err, ErrAmbiguous) {
				continue
			}
			require.NoError(t, err, "format %q line %q", format, line)
			requireFastEqualsSlow(t, p, []byte(line))
		}
	})
}

// nastyRequest has the values that make lines hard to split: spaces and a
// time lookalike in the user, quotes and trailing backslashes, an empty
// remote address, headers with spaces.
func nastyRequest() request {
	r := okRequest()
	r.Remote = ""
	r.User = `ops [team] "x"`
	r.RawURI = `/a"b\?c="d"`
	r.Referer = `http://x/"y" \`
	r.Agent = `Mozilla "q" 5\`
	r.Status = 500
	r.Sent = 0
	r.PathInfo = `/a"b\ c`
	r.Query = `c="d"`
	r.ReqHeaders = map[string]string{"x-forwarded-for": "10.1.2.3, 10.0.0.1", "x": `a" "b\`}
	return r
}

// FuzzParse checks that Parse never panics on any format and line, that it
// fails with the sentinel errors only, that every []byte it returns is a
// sub-slice of the line, and that both matchers agree.
func FuzzParse(f *testing.F) {
	lines := []string{
		`127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET /?a=1&b=two HTTP/1.1" 200 21 "http://ref.example/x?y=\"z\"" "Mozilla/5.0 \"quoted\" agent \ backslash" 180`,
		` - - [24/Nov/2026:18:00:16 +0000] "GET /unix HTTP/1.1" 200 21 "-" "curl/7.88.1" 99`,
		`127.0.0.1 - a [b [24/Nov/2026:17:50:12 +0000] "GET / HTTP/1.1" 200 21 "x\" "y\" 7`,
		`127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET /error HTTP/1.1" 500 0 "-" "-" m=GET U="None" q="" H=HTTP/1.1 B=0 T=0 M=1 D=1000 L=0.001000 p=<20868> xff="-" ct="-" wp=- ra=127.0.0.1 missing=-`,
		`{"remote":"127.0.0.1","request":"GET / HTTP/1.1","status":200,"bytes":21,"duration_us":5,"agent":"c\"url"}`,
		`[24/Nov/2026:17:50:12 +0000]<12> 200   4321    |`,
		"",
		`"`,
		`\"\"\" [ ] < > -`,
	}
	for i, fm := range seedFormats {
		f.Add(fm, lines[i%len(lines)])
	}
	for _, l := range lines {
		f.Add(defaultPlusD, l)
	}
	f.Fuzz(func(t *testing.T, format, line string) {
		p, err := Compile(format)
		if err != nil {
			return
		}
		b := []byte(line)
		var rec Record
		err = p.Parse(b, &rec)
		if err != nil {
			require.True(t, errors.Is(err, ErrMismatch) || errors.Is(err, ErrAmbiguous), "error %v", err)
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			require.GreaterOrEqual(t, pe.Offset, 0)
			require.LessOrEqual(t, pe.Offset, len(line))
			return
		}
		for i := range p.Fields() {
			requireSubslice(t, b, rec.Value(i))
		}
		for _, v := range [][]byte{rec.Path, rec.Query, rec.Proto, rec.Remote, rec.User, rec.Time, rec.Referer, rec.UserAgent} {
			requireSubslice(t, b, v)
		}
		require.GreaterOrEqual(t, rec.Duration, time.Duration(0))
		require.GreaterOrEqual(t, rec.RespBytes, int64(0))
		require.True(t, rec.Status >= 0 && rec.Status <= 999)
		require.Equal(t, rec.HasDuration && !rec.ErrorHandler, rec.DurationTrusted)
		requireFastEqualsSlow(t, p, b)
	})
}

func requireSubslice(t *testing.T, line, v []byte) {
	t.Helper()
	if len(v) == 0 {
		return
	}
	// v must point into line.
	for off := 0; off+len(v) <= len(line); off++ {
		if &line[off] == &v[0] {
			return
		}
	}
	t.Fatalf("value %q is not a sub-slice of line %q", v, line)
}

// clean makes a fuzzed string a value Gunicorn can log on one line: header
// values and basic-auth users cannot carry CR or LF through Gunicorn's
// parser into a line.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// FuzzRoundTrip renders fuzzed request values through Gunicorn's formatting
// (format % SafeAtoms) for several formats and checks Parse gets every value
// back exactly.
func FuzzRoundTrip(f *testing.F) {
	f.Add("-", "/api/v1/users/42?page=2", "-", "curl/7.88.1", uint16(200), int64(21), int64(180), uint8(0))
	f.Add("ops team", `/a"b\?c="d`, `http://x/\`, `Mozilla "q" \`, uint16(500), int64(0), int64(1000), uint8(1))
	f.Add(`a [b`, "/", `a\`, " ", uint16(404), int64(0), int64(7), uint8(2))
	f.Add(`x [24/Nov/2026:00:00:00 +0000] y`, "/x", `\" "`, `a" 5\`, uint16(204), int64(1), int64(1), uint8(3))
	f.Add("", "http://h/p?q", "", "", uint16(403), int64(0), int64(2), uint8(4))
	formats := []string{
		defaultPlusD,
		DefaultFormat + ` T=%(T)s M=%(M)s D=%(D)s L=%(L)s p=%(p)s`,
		`%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" m=%(m)s U="%(U)s" q="%(q)s" H=%(H)s B=%(B)s D=%(D)s`,
		`{"remote":"%(h)s","user":"%(u)s","request":"%(r)s","status":%(s)s,"bytes":%(B)s,"duration_us":%(D)s,"referer":"%(f)s","agent":"%(a)s"}`,
		`"%(a)s" "%(f)s" "%(r)s" %(s)s %(b)s %(D)s "%(u)s"`,
	}
	parsers := make([]*Parser, len(formats))
	for i, fm := range formats {
		p, err := Compile(fm)
		require.NoError(f, err)
		parsers[i] = p
	}
	f.Fuzz(func(t *testing.T, user, uri, referer, agent string, status uint16, sent, durUS int64, which uint8) {
		r := okRequest()
		r.User = clean(user, 80)
		// Gunicorn's request-line parser: the target has no spaces.
		r.RawURI = strings.Map(func(c rune) rune {
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				return -1
			}
			return c
		}, clean(uri, 200))
		if r.RawURI == "" {
			r.RawURI = "/"
		}
		r.Referer, r.Agent = clean(referer, 200), clean(agent, 200)
		r.Status = 100 + int(status)%500
		r.Sent = max(sent, -sent, 0) % 1e12
		r.DurationUS = max(durUS, -durUS, 0) % 1e12
		r.HasPathInfo = true
		r.PathInfo, r.Query, _ = strings.Cut(r.RawURI, "?")
		k := int(which) % len(formats)
		line, err := gunicornLine(formats[k], r)
		require.NoError(t, err)
		p := parsers[k]
		var rec Record
		require.NoError(t, p.Parse([]byte(line), &rec), "format %q line %q", formats[k], line)
		esc := func(s string) string { return strings.ReplaceAll(s, `"`, `\"`) }
		dash := func(s string) string {
			if s == "" {
				return "-"
			}
			return s
		}
		require.Equal(t, r.Status, rec.Status, "line %q", line)
		require.Equal(t, r.Sent, rec.RespBytes, "line %q", line)
		require.Equal(t, time.Duration(r.DurationUS)*time.Microsecond, rec.Duration, "line %q", line)
		require.Equal(t, esc(dash(r.Referer)), string(rec.Referer), "line %q", line)
		require.Equal(t, esc(dash(r.Agent)), string(rec.UserAgent), "line %q", line)
		if strings.Contains(formats[k], "%(u)s") {
			require.Equal(t, esc(dash(r.User)), string(rec.User), "line %q", line)
		}
		target, query, hasQ := strings.Cut(r.RawURI, "?")
		require.Equal(t, esc(string(stripAuthority([]byte(target)))), string(rec.Path), "line %q", line)
		if strings.Contains(formats[k], "%(q)s") || hasQ {
			require.Equal(t, esc(query), string(rec.Query), "line %q", line)
		}
		requireFastEqualsSlow(t, p, []byte(line))
	})
}
