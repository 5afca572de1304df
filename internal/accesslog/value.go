package accesslog

import (
	"bytes"
	"math"
	"time"
)

// absent marks a numeric atom missing from the format; dash marks one whose
// value is "-" (an atom the running Gunicorn does not have) or "None".
const (
	absent = -2
	dash   = -1
)

// acc holds the values that are only resolved once the whole line matched:
// precedence between atoms that carry the same information, and numbers.
type acc struct {
	pathU, query, proto []byte
	method              Method
	haveU, haveM        bool
	haveQ, haveH        bool
	b, B                int64
	dur                 [4]int64 // D (µs), L (ns), M (ms), T (s)
}

// take validates the value line[s:e] of field sg and stores it in sp, rec
// and a. It writes the same fields whatever the value, so that the last
// take of each field (the one on the matching path) wins.
func (p *Parser) take(sg *seg, line []byte, s, e int, sp *span, rec *Record, a *acc) bool {
	if sg.padL || sg.padR {
		for s < e && line[s] == ' ' {
			s++
		}
		for e > s && line[e-1] == ' ' {
			e--
		}
	}
	v := line[s:e:e]
	sp.start, sp.end = int32(s), int32(e)
	switch sg.atom {
	case atomRemote:
		// Empty for unix-socket binds.
		if sg.mode != modeTokenSpace && bytes.IndexByte(v, ' ') >= 0 {
			return false
		}
		rec.Remote = v
	case atomIdent, atomMethod, atomProto:
		if len(v) == 0 || sg.mode != modeTokenSpace && bytes.IndexByte(v, ' ') >= 0 {
			return false
		}
		switch sg.atom {
		case atomMethod:
			a.method, a.haveM = methodOf(v), true
		case atomProto:
			a.proto, a.haveH = v, true
		}
	case atomTime:
		if !validTime(v) {
			return false
		}
		rec.Time = v
	case atomRequest:
		if (!sg.quoted || sg.last) && hasUnescapedQuote(v) {
			return false
		}
		if !takeRequest(v, sg.quoted, rec) {
			return false
		}
	case atomStatus:
		if len(v) != 3 || !isDigit(v[0]) || !isDigit(v[1]) || !isDigit(v[2]) {
			return false
		}
		rec.Status = int(v[0]-'0')*100 + int(v[1]-'0')*10 + int(v[2]-'0')
	case atomBytesb:
		n, ok := parseNum(v)
		if !ok {
			return false
		}
		a.b = n
	case atomBytesB:
		if string(v) == "None" {
			a.B = dash
			break
		}
		n, ok := parseNum(v)
		if !ok {
			return false
		}
		a.B = n
	case atomDurD, atomDurM, atomDurT:
		n, ok := parseNum(v)
		if !ok {
			return false
		}
		switch sg.atom {
		case atomDurD:
			a.dur[0] = n
		case atomDurM:
			a.dur[2] = n
		default:
			a.dur[3] = n
		}
	case atomDurL:
		if len(v) == 1 && v[0] == '-' {
			a.dur[1] = dash
			break
		}
		n, ok := parseDecimalSeconds(v)
		if !ok {
			return false
		}
		a.dur[1] = n
	case atomPID:
		rec.WorkerPID = 0
		if len(v) == 1 && v[0] == '-' {
			break
		}
		if len(v) < 3 || v[0] != '<' || v[len(v)-1] != '>' {
			return false
		}
		n, ok := parseUint(v[1 : len(v)-1])
		if !ok {
			return false
		}
		rec.WorkerPID = int(n)
	default:
		// Free text: u f a U q, headers, environ and unknown atoms. A
		// quoted candidate never contains an unescaped '"' by
		// construction; anything else must be checked.
		if (!sg.quoted || sg.last) && hasUnescapedQuote(v) {
			return false
		}
		switch sg.atom {
		case atomUser:
			rec.User = v
		case atomReferer:
			rec.Referer = v
		case atomAgent:
			rec.UserAgent = v
		case atomQuery:
			a.query, a.haveQ = v, true
		case atomPathInfo:
			a.pathU, a.haveU = v, true
		}
	}
	return true
}

// takeRequest splits a %(r)s value into rec's method, path, query and
// protocol.
func takeRequest(v []byte, quoted bool, rec *Record) bool {
	sp1, sp2, ok := splitRequest(v, !quoted)
	if !ok {
		return false
	}
	rec.Method = methodOf(v[:sp1])
	rec.Proto = v[sp2+1:]
	target := v[sp1+1 : sp2 : sp2]
	rec.Query = nil
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		rec.Query = target[q+1:]
		target = target[:q:q]
	}
	rec.Path = stripAuthority(target)
	return true
}

// finish resolves what take left in a once the line matched.
func (p *Parser) finish(rec *Record, a *acc) {
	if a.haveM {
		rec.Method = a.method
	}
	if a.haveQ {
		rec.Query = a.query
	}
	if a.haveH {
		rec.Proto = a.proto
	}
	noneU := a.haveU && string(a.pathU) == "None"
	if a.haveU && !p.hasR {
		if noneU {
			rec.Path = a.pathU[:0]
		} else {
			rec.Path = a.pathU
		}
	}
	switch {
	case a.B >= 0:
		rec.RespBytes, rec.HasBytes = a.B, true
	case a.b >= 0:
		rec.RespBytes, rec.HasBytes = a.b, true
	case a.b == dash:
		// "-" only when the response had no sent attribute.
		rec.RespBytes, rec.HasBytes = 0, true
	}
	// Duration: the finest atom that carries a number on this line. A value
	// too large for a time.Duration (about 292 years; Gunicorn's own values
	// stay below a day, as it drops timedelta.days) counts as absent.
	const maxNS = math.MaxInt64
	switch {
	case a.dur[0] >= 0 && a.dur[0] <= maxNS/int64(time.Microsecond):
		rec.Duration, rec.HasDuration = time.Duration(a.dur[0])*time.Microsecond, true
	case a.dur[1] >= 0:
		rec.Duration, rec.HasDuration = time.Duration(a.dur[1]), true
	case a.dur[2] >= 0 && a.dur[2] <= maxNS/int64(time.Millisecond):
		rec.Duration, rec.HasDuration = time.Duration(a.dur[2])*time.Millisecond, true
	case a.dur[3] >= 0 && a.dur[3] <= maxNS/int64(time.Second):
		rec.Duration, rec.HasDuration = time.Duration(a.dur[3])*time.Second, true
	}
	// handle_error lines: status 400/403/500, nothing sent, and an environ
	// from default_environ() with no PATH_INFO (%(U)s is "None") and no
	// HTTP_* keys (%(f)s and %(a)s are "-"). Atoms missing from the format
	// do not count against the match.
	switch rec.Status {
	case 400, 403, 500:
		rec.ErrorHandler = rec.RespBytes == 0 &&
			(rec.Referer == nil || isDash(rec.Referer)) &&
			(rec.UserAgent == nil || isDash(rec.UserAgent)) &&
			(!a.haveU || noneU)
	}
	rec.DurationTrusted = rec.HasDuration && !rec.ErrorHandler
}

func isDash(v []byte) bool { return len(v) == 1 && v[0] == '-' }

// hasUnescapedQuote reports whether v contains a '"' not preceded by '\'.
func hasUnescapedQuote(v []byte) bool {
	for i := 0; i < len(v); {
		j := indexByteWord(v[i:], '"')
		if j < 0 {
			return false
		}
		q := i + j
		if q == 0 || v[q-1] != '\\' {
			return true
		}
		i = q + 1
	}
	return false
}

// parseNum parses an integer atom: digits with an optional '+' (from a "+"
// flag), or "-" (dash).
func parseNum(v []byte) (int64, bool) {
	if len(v) == 1 && v[0] == '-' {
		return dash, true
	}
	if len(v) > 1 && v[0] == '+' {
		v = v[1:]
	}
	// A '0' flag with a large width pads beyond the 18 digits parseUint
	// takes.
	for len(v) > 1 && v[0] == '0' {
		v = v[1:]
	}
	return parseUint(v)
}

// parseUint parses 1 to 18 ASCII digits.
func parseUint(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, b := range v {
		d := b - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + int64(d)
	}
	return n, true
}

// parseDecimalSeconds parses %(L)s ("1.500481", "%d.%06d") into
// nanoseconds.
func parseDecimalSeconds(v []byte) (int64, bool) {
	intPart, frac := v, []byte(nil)
	if dot := bytes.IndexByte(v, '.'); dot >= 0 {
		intPart, frac = v[:dot], v[dot+1:]
		if len(frac) == 0 || len(frac) > 9 {
			return 0, false
		}
	}
	if len(intPart) > 9 {
		return 0, false
	}
	sec, ok := parseUint(intPart)
	if !ok {
		return 0, false
	}
	var ns int64
	if frac != nil {
		f, ok := parseUint(frac)
		if !ok {
			return 0, false
		}
		for k := len(frac); k < 9; k++ {
			f *= 10
		}
		ns = f
	}
	return sec*int64(time.Second) + ns, true
}

// validTime checks the shape strftime('[%d/%b/%Y:%H:%M:%S %z]') gives,
// e.g. "[24/Nov/2026:17:50:12 +0000]", leaving the month name free (it
// follows LC_TIME). These checks are what anchors an unquoted %(u)s with
// spaces in the default format.
func validTime(v []byte) bool {
	n := len(v)
	// "[dd/" + month (at least one byte) + "/yyyy:HH:MM:SS +zzzz]".
	if n < 4+1+21 || v[0] != '[' || v[3] != '/' || !isDigit(v[1]) || !isDigit(v[2]) {
		return false
	}
	t := v[n-21:]
	if t[0] != '/' || t[5] != ':' || t[8] != ':' || t[11] != ':' || t[14] != ' ' ||
		(t[15] != '+' && t[15] != '-') || t[20] != ']' {
		return false
	}
	if !isDigit(t[1]) || !isDigit(t[2]) || !isDigit(t[3]) || !isDigit(t[4]) ||
		!isDigit(t[6]) || !isDigit(t[7]) || !isDigit(t[9]) || !isDigit(t[10]) ||
		!isDigit(t[12]) || !isDigit(t[13]) ||
		!isDigit(t[16]) || !isDigit(t[17]) || !isDigit(t[18]) || !isDigit(t[19]) {
		return false
	}
	for _, b := range v[4 : n-21] {
		if b == ' ' || b == '[' || b == ']' || b == '/' {
			return false
		}
	}
	return true
}

func isDigit(b byte) bool { return b-'0' <= 9 }

// splitRequest checks %(r)s, "METHOD TARGET PROTOCOL", and returns the
// offsets of its first and last spaces. Gunicorn's request-line parser
// rejects targets with spaces, so the value has exactly two spaces; strict
// checks that the target has none, which is what anchors an unquoted
// %(r)s (a quoted one is already delimited by its quotes).
func splitRequest(v []byte, strict bool) (sp1, sp2 int, ok bool) {
	for sp1 < len(v) && v[sp1] != ' ' {
		sp1++
	}
	sp2 = len(v) - 1
	for sp2 > sp1 && v[sp2] != ' ' {
		sp2--
	}
	if sp1 == 0 || sp2 <= sp1 {
		return 0, 0, false
	}
	if strict && bytes.IndexByte(v[sp1+1:sp2], ' ') >= 0 {
		return 0, 0, false
	}
	return sp1, sp2, true
}

// stripAuthority turns an absolute-form target ("http://host/x") into its
// path ("/x"); an origin-form target is returned unchanged.
func stripAuthority(t []byte) []byte {
	if len(t) == 0 || t[0] == '/' {
		return t
	}
	var rest []byte
	switch {
	case len(t) > 7 && string(t[:7]) == "http://":
		rest = t[7:]
	case len(t) > 8 && string(t[:8]) == "https://":
		rest = t[8:]
	default:
		return t
	}
	if k := bytes.IndexByte(rest, '/'); k >= 0 {
		return rest[k:]
	}
	return rest[:0]
}
