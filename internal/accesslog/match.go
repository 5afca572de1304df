package accesslog

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// maxSteps bounds the candidate ends the backtracking matcher tries for one
// line, so that a hostile line costs microseconds, not an exponential search.
const maxSteps = 512

// cursor enumerates the candidate ends of one field.
type cursor struct {
	phase uint8
	next  int
	stop  int
}

// matchState is the per-call state of the backtracking matcher.
type matchState struct {
	steps   int
	far     int // furthest offset reached
	farSeg  int // field being matched there
	aborted bool
}

// Parse matches line against the format and fills rec. A trailing "\n" or
// "\r\n" is ignored. On failure rec holds no values and the error is a
// *ParseError (owned by rec, see ParseError) wrapping ErrMismatch or
// ErrAmbiguous. Parse never panics and does not allocate once rec has been
// used with a parser of at least as many fields.
func (p *Parser) Parse(line []byte, rec *Record) error { return p.parse(line, rec, true) }

// parse is Parse; useFast=false skips the greedy matcher (for tests that
// check both matchers agree).
func (p *Parser) parse(line []byte, rec *Record, useFast bool) error {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	vals := rec.vals
	if cap(vals) < len(p.segs) {
		vals = make([]span, len(p.segs), max(len(p.segs), 16))
	}
	*rec = Record{vals: vals[:len(p.segs)], line: line}
	a := acc{b: absent, B: absent, dur: [4]int64{absent, absent, absent, absent}}

	if len(line) < len(p.prefix) || string(line[:len(p.prefix)]) != string(p.prefix) {
		return rec.fail(0, "", ErrMismatch)
	}
	start := len(p.prefix)
	if !useFast || !p.fast(line, start, rec, &a) {
		st := matchState{far: start}
		if !p.match(0, line, start, rec, &a, &st) {
			field := ""
			if st.farSeg < len(p.segs) {
				field = p.segs[st.farSeg].name
			}
			if st.aborted {
				return rec.fail(st.far, field, ErrAmbiguous)
			}
			return rec.fail(st.far, field, ErrMismatch)
		}
	}
	p.finish(rec, &a)
	return nil
}

func (r *Record) fail(off int, field string, err error) error {
	*r = Record{vals: r.vals[:0], err: ParseError{Offset: off, Field: field, Err: err}}
	return &r.err
}

// fast is the greedy matcher: every field takes its first candidate end,
// with the usual end searches and the usual atoms inlined (the generic take
// handles the rest). This is the whole search for well-formed lines of the
// usual formats; the tests (requireFastEqualsSlow) and the fuzz targets
// check that it agrees with match on every line it accepts.
func (p *Parser) fast(line []byte, pos int, rec *Record, a *acc) bool {
	vals := rec.vals
	first := 0
	if p.defaultHead {
		var ok bool
		if pos, ok = p.fastHead(line, rec, a); !ok {
			return false
		}
		first = 9
	}
	for i := first; i < len(p.segs); i++ {
		sg := &p.segs[i]
		var e int
		switch sg.mode {
		case modeNumSpace:
			// Parse the number while looking for its end.
			var n int64
			e = pos
			if e < len(line) && line[e] == '-' {
				n = dash
				e++
			} else {
				for e < len(line) {
					d := line[e] - '0'
					if d > 9 {
						break
					}
					n = n*10 + int64(d)
					e++
				}
				if e == pos || e-pos > 18 {
					return false
				}
			}
			if e >= len(line) || line[e] != ' ' || sg.litRest && !litAt(sg, line, e) {
				return false
			}
			vals[i].start, vals[i].end = int32(pos), int32(e)
			switch sg.atom {
			case atomStatus:
				if e-pos != 3 {
					return false
				}
				rec.Status = int(n)
			case atomBytesb:
				a.b = n
			case atomDurD:
				a.dur[0] = n
			case atomDurM:
				a.dur[2] = n
			default:
				a.dur[3] = n
			}
			pos = e + len(sg.lit)
			continue
		case modeLast:
			e = len(line) - len(sg.lit)
			if e < pos || string(line[e:]) != string(sg.lit) {
				return false
			}
		case modeTokenSpace:
			if e = indexByteShort(line[pos:], ' '); e < 0 {
				return false
			}
			if e += pos; sg.litRest && !litAt(sg, line, e) {
				return false
			}
		case modeTime:
			if pos >= len(line) || line[pos] != '[' {
				return false
			}
			// strftime with a three-letter month puts ']' 27 bytes on.
			if e = pos + 27; e >= len(line) || line[e] != ']' {
				j := bytes.IndexByte(line[pos:], ']')
				if j < 0 {
					return false
				}
				e = pos + j
			}
			if e++; !litAt(sg, line, e) {
				return false
			}
		case modeText1:
			j := indexByteShort(line[pos:], sg.lit[0])
			if j < 0 {
				return false
			}
			if e = pos + j; sg.litRest && !litAt(sg, line, e) {
				var c cursor
				var ok bool
				if e, ok = p.candidate(sg, line, pos, &c); !ok {
					return false
				}
			}
		case modeQuoted:
			var c cursor
			var ok bool
			if e, ok = quotedCandidate(sg, line, pos, &c); !ok {
				return false
			}
		default:
			var c cursor
			var ok bool
			if e, ok = p.candidate(sg, line, pos, &c); !ok {
				return false
			}
		}
		if !sg.inline {
			if !p.take(sg, line, pos, e, &vals[i], rec, a) {
				return false
			}
			pos = e + len(sg.lit)
			continue
		}
		// The common atoms, as take would do them.
		v := line[pos:e:e]
		vals[i].start, vals[i].end = int32(pos), int32(e)
		switch sg.atom {
		case atomRemote:
			if sg.mode != modeTokenSpace {
				if !p.take(sg, line, pos, e, &vals[i], rec, a) {
					return false
				}
				break
			}
			rec.Remote = v
		case atomIdent:
			if len(v) == 0 || sg.mode != modeTokenSpace {
				if !p.take(sg, line, pos, e, &vals[i], rec, a) {
					return false
				}
			}
		case atomStatus:
			if len(v) != 3 || !isDigit(v[0]) || !isDigit(v[1]) || !isDigit(v[2]) {
				return false
			}
			rec.Status = int(v[0]-'0')*100 + int(v[1]-'0')*10 + int(v[2]-'0')
		case atomBytesb, atomDurD, atomDurM, atomDurT:
			var n int64
			switch {
			case len(v) == 1 && v[0] == '-':
				n = dash
			case len(v) == 0 || len(v) > 18:
				return false
			default:
				for _, c := range v {
					d := c - '0'
					if d > 9 {
						return false
					}
					n = n*10 + int64(d)
				}
			}
			switch sg.atom {
			case atomBytesb:
				a.b = n
			case atomDurD:
				a.dur[0] = n
			case atomDurM:
				a.dur[2] = n
			default:
				a.dur[3] = n
			}
		case atomTime:
			if !validTime(v) {
				return false
			}
			rec.Time = v
		case atomRequest, atomUser, atomReferer, atomAgent:
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
			default:
				if !takeRequest(v, sg.quoted, rec) {
					return false
				}
			}
		default:
			if !p.take(sg, line, pos, e, &vals[i], rec, a) {
				return false
			}
		}
		pos = e + len(sg.lit)
	}
	return pos == len(line)
}

// fastHead is the fast path for DefaultFormat, the head of most formats,
// unrolled: `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s`
// and the literal after %(a)s. It takes the same first candidates and
// applies the same checks as the loop in fast would; it returns the offset
// after the literal that follows %(a)s.
func (p *Parser) fastHead(line []byte, rec *Record, a *acc) (int, bool) {
	vals := rec.vals[:9]
	// %(h)s: up to the first space; empty for unix sockets.
	e := indexByteShort(line, ' ')
	if e < 0 {
		return 0, false
	}
	rec.Remote = line[:e:e]
	vals[0] = span{start: 0, end: int32(e)}
	pos := e + 1

	// %(l)s: a non-empty token, always "-".
	if pos+1 < len(line) && line[pos] == '-' && line[pos+1] == ' ' {
		e = pos + 1
	} else {
		j := indexByteShort(line[pos:], ' ')
		if j <= 0 {
			return 0, false
		}
		e = pos + j
	}
	vals[1] = span{start: int32(pos), end: int32(e)}
	pos = e + 1

	// %(u)s: free text up to the first " [" (the time follows).
	if pos+2 < len(line) && line[pos] == '-' && line[pos+1] == ' ' && line[pos+2] == '[' {
		e = pos + 1
	} else {
		for k := pos; ; {
			j := indexByteShort(line[k:], ' ')
			if j < 0 {
				return 0, false
			}
			if e = k + j; e+1 < len(line) && line[e+1] == '[' {
				break
			}
			k = e + 1
		}
		if hasUnescapedQuote(line[pos:e]) {
			return 0, false
		}
	}
	rec.User = line[pos:e:e]
	vals[2] = span{start: int32(pos), end: int32(e)}
	pos = e + 1

	// %(t)s, then ` "`.
	if e = pos + 27; e >= len(line) || line[e] != ']' {
		j := bytes.IndexByte(line[pos:], ']')
		if j < 0 {
			return 0, false
		}
		e = pos + j
	}
	e++
	if e+1 >= len(line) || line[e] != ' ' || line[e+1] != '"' || !validTime(line[pos:e]) {
		return 0, false
	}
	rec.Time = line[pos:e:e]
	vals[3] = span{start: int32(pos), end: int32(e)}
	pos = e + 2

	// "%(r)s", then `" ` and the status's first digit.
	var c cursor
	e, ok := quotedCandidate(&p.segs[4], line, pos, &c)
	if !ok || !takeRequest(line[pos:e:e], true, rec) {
		return 0, false
	}
	vals[4] = span{start: int32(pos), end: int32(e)}
	pos = e + 2

	// %(s)s: three digits, a space, then a digit or '-' for %(b)s.
	if pos+4 >= len(line) || !isDigit(line[pos]) || !isDigit(line[pos+1]) || !isDigit(line[pos+2]) ||
		line[pos+3] != ' ' || !isDigit(line[pos+4]) && line[pos+4] != '-' {
		return 0, false
	}
	rec.Status = int(line[pos]-'0')*100 + int(line[pos+1]-'0')*10 + int(line[pos+2]-'0')
	vals[5] = span{start: int32(pos), end: int32(pos + 3)}
	pos += 4

	// %(b)s: digits or "-", then ` "`.
	var n int64 = dash
	e = pos
	if line[e] == '-' {
		e++
	} else {
		n = 0
		for e < len(line) {
			d := line[e] - '0'
			if d > 9 {
				break
			}
			n = n*10 + int64(d)
			e++
		}
		if e-pos > 18 {
			return 0, false
		}
	}
	if e+1 >= len(line) || line[e] != ' ' || line[e+1] != '"' {
		return 0, false
	}
	a.b = n
	vals[6] = span{start: int32(pos), end: int32(e)}
	pos = e + 2

	// "%(f)s" "
	c = cursor{}
	if e, ok = quotedCandidate(&p.segs[7], line, pos, &c); !ok {
		return 0, false
	}
	rec.Referer = line[pos:e:e]
	vals[7] = span{start: int32(pos), end: int32(e)}
	pos = e + 3

	// %(a)s" and what follows.
	sg := &p.segs[8]
	if sg.last {
		e = len(line) - len(sg.lit)
		if e < pos || string(line[e:]) != string(sg.lit) || hasUnescapedQuote(line[pos:e]) {
			return 0, false
		}
	} else {
		c = cursor{}
		if e, ok = quotedCandidate(sg, line, pos, &c); !ok {
			return 0, false
		}
	}
	rec.UserAgent = line[pos:e:e]
	vals[8] = span{start: int32(pos), end: int32(e)}
	return e + len(sg.lit), true
}

// match is the backtracking matcher: it tries every candidate end of field i
// in preference order and recurses. It is only used when the fast path
// failed, i.e. for ambiguous or malformed lines. Values taken on abandoned
// branches are overwritten on the way to a match, because every field is
// taken again on the final path.
func (p *Parser) match(i int, line []byte, pos int, rec *Record, a *acc, st *matchState) bool {
	if pos > st.far {
		st.far, st.farSeg = pos, i
	}
	if i == len(p.segs) {
		return pos == len(line)
	}
	sg := &p.segs[i]
	var c cursor
	for tried := 0; ; tried++ {
		if st.steps >= maxSteps {
			st.aborted = true
			return false
		}
		st.steps++
		e, found := p.candidate(sg, line, pos, &c)
		if !found {
			if tried == 0 {
				st.blame(sg, i, line, pos)
			}
			return false
		}
		if !p.take(sg, line, pos, e, &rec.vals[i], rec, a) {
			continue
		}
		if p.match(i+1, line, e+len(sg.lit), rec, a, st) {
			return true
		}
		if st.aborted {
			return false
		}
	}
}

// blame improves the error position when field i has no candidate end at
// all: if its literal occurs without the next field's expected first byte,
// the next field is the one that does not match.
func (st *matchState) blame(sg *seg, i int, line []byte, pos int) {
	if len(sg.lit) == 0 || sg.next == sigAny || pos > len(line) {
		return
	}
	j := bytes.Index(line[pos:], sg.lit)
	if j < 0 {
		return
	}
	if at := pos + j + len(sg.lit); at > st.far {
		st.far, st.farSeg = at, i+1
	}
}

// litAt reports whether sg's trailing literal, and the first byte of the
// next field when that is fixed, occur at line[e:].
func litAt(sg *seg, line []byte, e int) bool {
	n := e + len(sg.lit)
	if n > len(line) {
		return false
	}
	for k, b := range sg.lit {
		if line[e+k] != b {
			return false
		}
	}
	if sg.next == sigAny {
		return true
	}
	if n >= len(line) {
		return false
	}
	switch b := line[n]; sg.next {
	case sigBracket:
		return b == '['
	case sigAngle:
		return b == '<' || b == '-'
	case sigDigitDash:
		return b >= '0' && b <= '9' || b == '-'
	}
	return true
}

// candidate returns the next possible end (exclusive) of field sg starting
// at pos, in preference order; c carries the iteration.
func (p *Parser) candidate(sg *seg, line []byte, pos int, c *cursor) (int, bool) {
	if pos > len(line) {
		return 0, false
	}
	if sg.last {
		// The last field runs up to the trailing literal, which must end
		// the line.
		if c.phase != 0 {
			return 0, false
		}
		c.phase = 1
		e := len(line) - len(sg.lit)
		if e < pos || !bytes.Equal(line[e:], sg.lit) {
			return 0, false
		}
		return e, true
	}
	switch sg.cls {
	case classTime:
		if c.phase != 0 || pos >= len(line) || line[pos] != '[' {
			return 0, false
		}
		c.phase = 1
		j := bytes.IndexByte(line[pos:], ']')
		if j < 0 {
			return 0, false
		}
		e := pos + j + 1
		if !litAt(sg, line, e) {
			return 0, false
		}
		return e, true
	case classPID:
		if len(sg.lit) == 0 {
			if c.phase != 0 {
				return 0, false
			}
			c.phase = 1
			j := bytes.IndexByte(line[pos:], '>')
			if j < 0 {
				return 0, false
			}
			return pos + j + 1, true
		}
		return tokenCandidate(sg, line, pos, c)
	case classToken:
		return tokenCandidate(sg, line, pos, c)
	}
	if sg.quoted {
		return quotedCandidate(sg, line, pos, c)
	}
	// Unquoted free text: every occurrence of the literal, shortest value
	// first (take rejects values with an unescaped '"').
	if c.phase == 0 {
		c.phase = 1
		c.next = pos
	}
	for c.next <= len(line) {
		j := indexLit(line[c.next:], sg.lit)
		if j < 0 {
			c.next = len(line) + 1
			return 0, false
		}
		e := c.next + j
		c.next = e + 1
		if litAt(sg, line, e) {
			return e, true
		}
	}
	return 0, false
}

// indexByteShort is bytes.IndexByte tuned for the short values of an access
// line ("-", an IP address, a status): it tests eight bytes per step with
// SWAR arithmetic, which costs one hard-to-predict branch per word instead
// of one per byte, and hands long values to the vectorised bytes.IndexByte.
func indexByteShort(b []byte, c byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	pat := uint64(c) * lo
	i := 0
	for ; i+8 <= len(b) && i < 32; i += 8 {
		x := binary.LittleEndian.Uint64(b[i:]) ^ pat
		// The lowest flagged byte is the first zero byte of x; borrows
		// can only flag bytes above it.
		if t := (x - lo) &^ x & hi; t != 0 {
			return i + bits.TrailingZeros64(t)>>3
		}
	}
	if i < 32 {
		for ; i < len(b); i++ {
			if b[i] == c {
				return i
			}
		}
		return -1
	}
	if j := bytes.IndexByte(b[i:], c); j >= 0 {
		return i + j
	}
	return -1
}

func indexLit(b, lit []byte) int {
	if len(lit) == 1 {
		return bytes.IndexByte(b, lit[0])
	}
	return bytes.Index(b, lit)
}

// tokenCandidate finds the end of a field that never contains a space: the
// occurrences of the literal before the first space (after the padding for
// right-justified fields). A left-justified field ("%(s)-5s") first tries
// the end after its padding spaces, leaving the spaces the literal itself
// starts with.
func tokenCandidate(sg *seg, line []byte, pos int, c *cursor) (int, bool) {
	if c.phase == 0 {
		s := pos
		if sg.padL {
			for s < len(line) && line[s] == ' ' {
				s++
			}
		}
		c.next, c.stop, c.phase = s, len(line), 1
		if sp := bytes.IndexByte(line[s:], ' '); sp >= 0 {
			c.stop = s + sp
		}
		if sg.padR {
			ws := c.stop
			for ws < len(line) && line[ws] == ' ' {
				ws++
			}
			lead := 0
			for lead < len(sg.lit) && sg.lit[lead] == ' ' {
				lead++
			}
			if e := max(ws-lead, c.stop); litAt(sg, line, e) {
				return e, true
			}
		}
	}
	if c.phase != 1 || len(sg.lit) == 0 {
		return 0, false
	}
	lit0 := sg.lit[0]
	for c.next <= c.stop && c.next < len(line) {
		var e int
		if lit0 == ' ' {
			e = c.stop // a token ends at its first space
			c.next = len(line) + 1
		} else {
			j := bytes.IndexByte(line[c.next:], lit0)
			if j < 0 {
				break
			}
			e = c.next + j
			c.next = e + 1
			if e > c.stop {
				break
			}
		}
		if litAt(sg, line, e) {
			return e, true
		}
	}
	c.phase = 2
	return 0, false
}

// indexByteWord is bytes.IndexByte with the first eight bytes tested
// inline: a quoted value is often "-" but otherwise long.
func indexByteWord(b []byte, c byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	if len(b) < 8 {
		for i := range b {
			if b[i] == c {
				return i
			}
		}
		return -1
	}
	x := binary.LittleEndian.Uint64(b) ^ uint64(c)*lo
	if t := (x - lo) &^ x & hi; t != 0 {
		return bits.TrailingZeros64(t) >> 3
	}
	if j := bytes.IndexByte(b[8:], c); j >= 0 {
		return 8 + j
	}
	return -1
}

// quotedCandidate finds the end of a free-text field followed by a literal
// starting with '"'. Gunicorn writes every '"' of a value as `\"` and
// escapes nothing else, so a '"' with no backslash before it always belongs
// to the format. The field therefore ends at the first unescaped '"' where
// the literal matches (preferred), or, if the value ended in a backslash,
// at an earlier `\"` where the literal matches; never after the first
// unescaped '"'.
func quotedCandidate(sg *seg, line []byte, pos int, c *cursor) (int, bool) {
	switch c.phase {
	case 0:
		firstEsc := -1
		stop := len(line)
		for i := pos; i < len(line); {
			j := indexByteWord(line[i:], '"')
			if j < 0 {
				break
			}
			q := i + j
			esc := q > pos && line[q-1] == '\\'
			if litAt(sg, line, q) {
				if !esc {
					c.stop = q
					c.next = firstEsc
					c.phase = 1
					return q, true
				}
				if firstEsc < 0 {
					firstEsc = q
				}
			} else if !esc {
				stop = q
				break
			}
			i = q + 1
		}
		c.stop = stop
		c.next = firstEsc
		c.phase = 1
		fallthrough
	case 1:
		q := c.next
		if q < 0 {
			c.phase = 2
			return 0, false
		}
		c.next = -1
		for i := q + 1; i < c.stop; {
			j := bytes.IndexByte(line[i:c.stop], '"')
			if j < 0 {
				break
			}
			q2 := i + j
			if line[q2-1] == '\\' && litAt(sg, line, q2) {
				c.next = q2
				break
			}
			i = q2 + 1
		}
		return q, true
	}
	return 0, false
}
