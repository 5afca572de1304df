package accesslog

import (
	"fmt"
	"strings"
)

// DefaultFormat is Gunicorn's access_log_format default, identical from 19.9
// to 23.0 (config.py AccessLogFormat).
const DefaultFormat = `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`

// atom identifies what a field of the format holds.
type atom uint8

const (
	atomOther    atom = iota // unknown atom (Gunicorn renders "-") or {..}i/o/e
	atomRemote               // h
	atomIdent                // l
	atomUser                 // u
	atomTime                 // t
	atomRequest              // r
	atomStatus               // s
	atomMethod               // m
	atomPathInfo             // U
	atomQuery                // q
	atomProto                // H
	atomBytesB               // B
	atomBytesb               // b
	atomReferer              // f
	atomAgent                // a
	atomDurT                 // T
	atomDurM                 // M
	atomDurD                 // D
	atomDurL                 // L
	atomPID                  // p
)

var atomByName = map[string]atom{
	"h": atomRemote, "l": atomIdent, "u": atomUser, "t": atomTime, "r": atomRequest,
	"s": atomStatus, "m": atomMethod, "U": atomPathInfo, "q": atomQuery, "H": atomProto,
	"B": atomBytesB, "b": atomBytesb, "f": atomReferer, "a": atomAgent,
	"T": atomDurT, "M": atomDurM, "D": atomDurD, "L": atomDurL, "p": atomPID,
}

// class says how the end of a field is found.
type class uint8

const (
	classToken class = iota // never contains a space
	classText               // free text: any byte but an unescaped '"'
	classTime               // "[...]" with a fixed-shape tail
	classPID                // "<digits>"
)

// sig is what the first byte after a field's trailing literal must look
// like, i.e. the first byte of the next field when that is fixed. It lets an
// unquoted free-text field skip delimiter occurrences inside its value.
type sig uint8

const (
	sigAny sig = iota
	sigBracket
	sigAngle
	sigDigitDash
)

// seg is one field plus the literal that follows it.
type seg struct {
	atom   atom
	name   string // as in Fields(): "h", "{x-forwarded-for}i"
	fmtPos int    // byte offset of the '%' in the format
	cls    class
	// quoted: the literal after the field starts with '"'. Gunicorn escapes
	// every '"' in a value, so the field ends at the first '"' not preceded
	// by a backslash, or earlier at a `\"` when the value ended in '\'.
	quoted bool
	last   bool
	next   sig
	// padL/padR: a width was given (right-/left-justified padding with
	// spaces); only allowed on token atoms.
	padL, padR bool
	lit        []byte
	// mode selects the fast path's inlined end search.
	mode mode
	// litRest: the literal check needs more than its first byte (a longer
	// literal or a fixed first byte of the next field).
	litRest bool
	// inline: the fast path may handle this atom's value itself.
	inline bool
}

// mode is the fast path's specialisation of a field's end search.
type mode uint8

const (
	modeGeneric    mode = iota
	modeLast            // runs to the trailing literal at the end of the line
	modeTokenSpace      // token followed by a literal starting with ' '
	modeTime            // "[...]" followed by a literal
	modeQuoted          // free text followed by a literal starting with '"'
	modeText1           // unquoted free text: first occurrence of the literal
	modeNumSpace        // s b T M D followed by a literal starting with ' '
)

// Parser matches lines of one compiled access_log_format. It is immutable
// after Compile and safe for concurrent use; each goroutine needs its own
// Record.
type Parser struct {
	format  string
	prefix  []byte
	segs    []seg
	durAtom string
	hasR    bool
	// defaultHead: the format starts with DefaultFormat's nine atoms (the
	// last may be followed by more), which fastHead matches unrolled.
	defaultHead bool
}

// FormatError reports a format Compile cannot turn into a parser.
type FormatError struct {
	Format string
	// Pos is the byte offset in Format of the offending directive.
	Pos int
	// Directive is the text of that directive, e.g. "%(h)d"; may be "".
	Directive string
	Reason    string
}

func (e *FormatError) Error() string {
	if e.Directive == "" {
		return fmt.Sprintf("accesslog: format position %d: %s", e.Pos, e.Reason)
	}
	return fmt.Sprintf("accesslog: format position %d (%s): %s", e.Pos, e.Directive, e.Reason)
}

// maxWidth bounds a %-directive's width: larger ones are typos (Python
// would try to build the padded string all the same).
const maxWidth = 1024

// maxFormatLen bounds the work Compile and the matcher do per line.
const maxFormatLen = 4096

// Compile turns a Gunicorn access_log_format (Python %-style with a mapping:
// "%(h)s", "%({x-forwarded-for}i)s", "%%") into a Parser. "" means
// DefaultFormat. Errors are *FormatError.
func Compile(format string) (*Parser, error) {
	if format == "" {
		format = DefaultFormat
	}
	p := &Parser{format: format}
	ferr := func(pos int, dir, reason string, args ...any) error {
		return &FormatError{Format: format, Pos: pos, Directive: dir, Reason: fmt.Sprintf(reason, args...)}
	}
	if len(format) > maxFormatLen {
		return nil, ferr(0, "", "format is longer than %d bytes", maxFormatLen)
	}
	if i := strings.IndexAny(format, "\r\n"); i >= 0 {
		return nil, ferr(i, "", "format contains a line break; access lines would span several lines")
	}

	var lit []byte // literal text accumulated since the last field
	for i := 0; i < len(format); {
		c := format[i]
		if c != '%' {
			lit = append(lit, c)
			i++
			continue
		}
		start := i
		i++
		if i >= len(format) {
			return nil, ferr(start, "%", "incomplete format directive at end of format")
		}
		if format[i] == '%' {
			lit = append(lit, '%')
			i++
			continue
		}
		if format[i] != '(' {
			return nil, ferr(start, format[start:min(i+1, len(format))],
				"positional directive; Gunicorn formats with a mapping, so every directive must be %%(name)s")
		}
		// Mapping key: Python allows nested parentheses inside it.
		depth, j := 1, i+1
		for ; j < len(format) && depth > 0; j++ {
			switch format[j] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		if depth != 0 {
			return nil, ferr(start, format[start:], "unterminated %%( mapping key")
		}
		key := format[i+1 : j-1]
		i = j
		// Flags, width, precision, length modifier, conversion.
		var flagMinus, flagSign, width bool
		for i < len(format) && strings.IndexByte("-+ #0", format[i]) >= 0 {
			switch format[i] {
			case '-':
				flagMinus = true
			case '+', ' ':
				flagSign = true // only matters for %d: "+12" / " 12"
			}
			i++
		}
		if i < len(format) && format[i] == '*' {
			return nil, ferr(start, format[start:i+1], "'*' width needs a positional argument; Python would raise")
		}
		widthStart := i
		for i < len(format) && format[i] >= '0' && format[i] <= '9' {
			width = true
			i++
		}
		if i-widthStart > 4 || i-widthStart == 4 && format[widthStart:i] > "1024" {
			return nil, ferr(start, format[start:i], "width %s is larger than %d", format[widthStart:i], maxWidth)
		}
		if i < len(format) && format[i] == '.' {
			return nil, ferr(start, format[start:i+1], "precision is not supported: it truncates values")
		}
		for i < len(format) && strings.IndexByte("hlL", format[i]) >= 0 {
			i++
		}
		if i >= len(format) {
			return nil, ferr(start, format[start:], "directive has no conversion character")
		}
		conv := format[i]
		i++
		dir := format[start:i]

		a, known := atomByName[key]
		if !known {
			a = atomOther
		}
		sg := seg{atom: a, name: key, fmtPos: start, padL: width && !flagMinus, padR: width && flagMinus}
		numeric := conv == 'd' || conv == 'i' || conv == 'u'
		if numeric && flagSign {
			// A sign or a space for positive ints: treat like left padding
			// (the number parser accepts a leading '+').
			sg.padL = true
		}
		switch a {
		case atomRemote, atomIdent, atomStatus, atomMethod, atomProto, atomBytesB, atomBytesb,
			atomDurT, atomDurM, atomDurD, atomDurL:
			sg.cls = classToken
		case atomTime:
			sg.cls = classTime
		case atomPID:
			sg.cls = classPID
		default:
			sg.cls = classText
		}
		switch conv {
		case 's':
		case 'd', 'i', 'u':
			// Only these atoms are Python ints; %d on a str raises in
			// Python and Gunicorn then writes no access line at all.
			if a != atomDurT && a != atomDurM && a != atomDurD && a != atomBytesB {
				return nil, ferr(start, dir, "%%%c needs an integer atom (T, M, D or B); atom %q is a string and Python would raise", conv, key)
			}
		default:
			return nil, ferr(start, dir, "conversion %%%c is not supported for atom %q; use %%(%s)s", conv, key, key)
		}
		if width && sg.cls != classToken && sg.cls != classPID {
			return nil, ferr(start, dir, "a width is only supported on atoms that never contain spaces (h l s m H b B T M D L p); padding on %q cannot be told from its value", key)
		}

		if len(p.segs) == 0 {
			p.prefix = lit
		} else {
			p.segs[len(p.segs)-1].lit = lit
		}
		lit = nil
		p.segs = append(p.segs, sg)
	}
	if len(p.segs) == 0 {
		return nil, ferr(0, "", "format has no atoms")
	}
	p.segs[len(p.segs)-1].lit = lit
	p.segs[len(p.segs)-1].last = true

	var durs [4]bool // D, L, M, T present
	for k := range p.segs {
		sg := &p.segs[k]
		sg.quoted = sg.cls == classText && len(sg.lit) > 0 && sg.lit[0] == '"'
		if !sg.last && !p.segs[k+1].padL {
			// The first byte of the next field, when it is fixed.
			switch nx := &p.segs[k+1]; {
			case nx.cls == classTime:
				sg.next = sigBracket
			case nx.cls == classPID:
				sg.next = sigAngle
			case nx.atom == atomStatus || nx.atom == atomDurD || nx.atom == atomDurM ||
				nx.atom == atomDurT || nx.atom == atomDurL || nx.atom == atomBytesb:
				sg.next = sigDigitDash
			}
		}
		switch {
		case sg.last:
			sg.mode = modeLast
		case !sg.padL && !sg.padR && len(sg.lit) > 0 && sg.lit[0] == ' ' &&
			(sg.atom == atomStatus || sg.atom == atomBytesb || sg.atom == atomDurD || sg.atom == atomDurM || sg.atom == atomDurT):
			sg.mode = modeNumSpace
		case (sg.cls == classToken || sg.cls == classPID) && !sg.padL && !sg.padR && len(sg.lit) > 0 && sg.lit[0] == ' ':
			sg.mode = modeTokenSpace
		case sg.cls == classTime && len(sg.lit) > 0:
			sg.mode = modeTime
		case sg.quoted:
			sg.mode = modeQuoted
		case sg.cls == classText && len(sg.lit) > 0:
			sg.mode = modeText1
		}
		sg.litRest = len(sg.lit) > 1 || sg.next != sigAny
		sg.inline = !sg.padL && !sg.padR
		if len(sg.lit) == 0 && !sg.last {
			nx := p.segs[k+1]
			// Only fields that end in a fixed byte can be followed directly
			// by another field.
			if sg.cls != classTime && sg.cls != classPID {
				return nil, ferr(nx.fmtPos, "%("+nx.name+")", "atom %q follows atom %q with no literal text between them, so the end of %q cannot be found", nx.name, sg.name, sg.name)
			}
		}
		switch sg.atom {
		case atomRequest:
			p.hasR = true
		case atomDurD:
			durs[0] = true
		case atomDurL:
			durs[1] = true
		case atomDurM:
			durs[2] = true
		case atomDurT:
			durs[3] = true
		}
	}
	for k, name := range [4]string{"D", "L", "M", "T"} {
		if durs[k] {
			p.durAtom = name
			break
		}
	}
	p.defaultHead = hasDefaultHead(p)
	return p, nil
}

// hasDefaultHead reports whether p's format starts with DefaultFormat
// (optionally followed by more literal text and atoms).
func hasDefaultHead(p *Parser) bool {
	if len(p.prefix) != 0 || len(p.segs) < 9 {
		return false
	}
	want := [9]struct {
		a   atom
		lit string
	}{
		{atomRemote, " "}, {atomIdent, " "}, {atomUser, " "}, {atomTime, ` "`}, {atomRequest, `" `},
		{atomStatus, " "}, {atomBytesb, ` "`}, {atomReferer, `" "`}, {atomAgent, `"`},
	}
	for k, w := range want {
		sg := &p.segs[k]
		if sg.atom != w.a || sg.padL || sg.padR {
			return false
		}
		if k < 8 && string(sg.lit) != w.lit {
			return false
		}
	}
	a := &p.segs[8]
	return len(a.lit) > 0 && a.lit[0] == '"' && (a.last || a.mode == modeQuoted)
}

// Format returns the format the parser was compiled from (DefaultFormat for
// "").
func (p *Parser) Format() string { return p.format }

// HasDuration reports whether the format has a duration atom (D, L, M or T).
func (p *Parser) HasDuration() bool { return p.durAtom != "" }

// DurationAtom returns the finest duration atom in the format: "D"
// (microseconds) before "L" (decimal seconds) before "M" (milliseconds)
// before "T" (whole seconds), or "" if there is none.
func (p *Parser) DurationAtom() string { return p.durAtom }

// Fields returns the atoms of the format in order, e.g. "h", "t",
// "{x-forwarded-for}i". Record.Value takes an index into this list.
func (p *Parser) Fields() []string {
	out := make([]string, len(p.segs))
	for i, sg := range p.segs {
		out[i] = sg.name
	}
	return out
}
