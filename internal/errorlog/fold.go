package errorlog

import (
	"time"
	"unicode/utf8"
)

// Block is the kind of multi-line unit a line belongs to.
type Block uint8

// Blocks.
const (
	BlockNone Block = iota
	// BlockRecord is a header line and the lines that continue it:
	// tracebacks of log.exception, the "Current configuration:" dump.
	BlockRecord
	// BlockRaw is output that bypassed the formatter: prints to stderr
	// (with --capture-output also stdout), Python warnings, tracebacks of
	// uncaught exceptions.
	BlockRaw
	// BlockLoggingError is Python's "--- Logging error ---" report, written
	// when a handler failed to emit a record; with Gunicorn 20.1+ this is
	// the reentrant-write bug of logging from the SIGCHLD handler
	// (issues #2564, #2816, #3064).
	BlockLoggingError
)

var blockNames = [...]string{"none", "record", "raw", "logging_error"}

// String returns the snake_case name of the block kind.
func (b Block) String() string {
	if int(b) < len(blockNames) {
		return blockNames[b]
	}
	return "invalid"
}

// RawKind explains an unprefixed line that continues no record.
type RawKind uint8

// Raw kinds.
const (
	RawNone RawKind = iota
	// RawText is a plain print, e.g. 20.1's "Failed to find attribute
	// 'nosuchattr' in 'app'." or application output.
	RawText
	// RawWarning is a Python warning, "<file>:<line>: <Category>Warning:
	// <text>", e.g. 19.9's "<frozen os>:1031: RuntimeWarning: line
	// buffering ...".
	RawWarning
	// RawTraceback is a traceback that starts outside any record (an
	// uncaught exception printed by the interpreter).
	RawTraceback
	// RawBlank is an empty line outside a record.
	RawBlank
)

var rawNames = [...]string{"none", "text", "warning", "traceback", "blank"}

// String returns the snake_case name of the raw kind.
func (k RawKind) String() string {
	if int(k) < len(rawNames) {
		return rawNames[k]
	}
	return "invalid"
}

// LineKind says what one physical line is.
type LineKind uint8

// Line kinds.
const (
	// LineHeader starts a record; Line.Header is valid.
	LineHeader LineKind = iota + 1
	// LineContinuation is folded into the open block (Line.Block).
	LineContinuation
	// LineRaw starts a raw block (Line.Raw says which kind).
	LineRaw
	// LineLoggingError starts a "--- Logging error ---" report.
	LineLoggingError
	// LineMalformed is a parse failure: a header-shaped line that does not
	// parse (see MalformedHeader) or a line holding NUL bytes (a file
	// truncated under the follower, binary garbage).
	LineMalformed
)

var lineKindNames = [...]string{"none", "header", "continuation", "raw", "logging_error", "malformed"}

// String returns the snake_case name of the line kind.
func (k LineKind) String() string {
	if int(k) < len(lineKindNames) {
		return lineKindNames[k]
	}
	return "invalid"
}

// MaxExceptionLen bounds how much of a traceback's last line a Record keeps.
const MaxExceptionLen = 120

// maxRecovered bounds the message rebuilt from a logging-error report.
const maxRecovered = 512

// Record summarises a block once it is closed.
type Record struct {
	Block Block
	Raw   RawKind // for BlockRaw
	// PID, Level, Time and HasTime come from the header of a BlockRecord.
	PID     int
	Level   Level
	Time    time.Time
	HasTime bool
	// Lines is the number of continuation lines folded into the block.
	Lines int
	// Exception is the last line of the block's last traceback, e.g.
	// "ModuleNotFoundError: No module named 'nosuchmodule'" or
	// "SystemExit: 1", cut to MaxExceptionLen bytes. It points into the
	// Folder and is valid until the next call to Feed or Flush.
	Exception []byte
}

// Line is the result of feeding one physical line to a Folder.
type Line struct {
	Kind LineKind
	// Block is the block the line belongs to after this call (BlockNone
	// for blank raw lines and malformed lines).
	Block Block
	// Header is valid for LineHeader; its slices point into the line.
	Header Header
	// Raw is the kind of raw block for LineRaw and for continuations of a
	// raw block.
	Raw RawKind
	// Recovered is set on the line that completes a logging-error report
	// ("Arguments: ...") when the report's "Message:" and "Arguments:"
	// could be formatted back into the message of the record that was
	// lost. It points into the Folder and is valid until the next Feed.
	Recovered []byte
	// Closed is the block this line ended (Closed.Block != BlockNone).
	Closed Record
}

type tbState uint8

const (
	tbNone  tbState = iota
	tbIn            // after "Traceback (most recent call last):"
	tbAfter         // after the exception line that ends a traceback
)

const (
	tracebackHead  = "Traceback (most recent call last):"
	duringHandling = "During handling of the above exception, another exception occurred:"
	directCause    = "The above exception was the direct cause of the following exception:"
	loggingError   = "--- Logging error ---"
)

// Folder groups physical lines of an error log into records and explains
// the lines that are not headers. A line that is not a header continues the
// open block when it is indented, starts or continues a traceback, or
// belongs to a logging-error report; otherwise it is raw output. So the
// "Failed to find attribute ..." print after a "Booting worker" header is
// raw, not part of that record.
//
// A Folder is not safe for concurrent use. It does not allocate.
type Folder struct {
	// Location is used for header times without a zone (nil: time.Local).
	Location *time.Location

	cur       Record
	curExc    [MaxExceptionLen]byte
	closedExc [MaxExceptionLen]byte
	tb        tbState

	msg    [maxRecovered]byte
	msgLen int // -1: no usable "Message:" seen in this report
	rec    [maxRecovered]byte
}

// Feed classifies one physical line (a trailing "\n" or "\r\n" is ignored).
func (f *Folder) Feed(line []byte) Line {
	line = trimEOL(line)
	if hasNUL(line) {
		return Line{Kind: LineMalformed, Closed: f.close()}
	}
	h, st := ParseHeader(line, f.Location)
	switch st {
	case HeaderOK:
		out := Line{Kind: LineHeader, Block: BlockRecord, Header: h, Closed: f.close()}
		f.cur = Record{Block: BlockRecord, PID: h.PID, Level: h.Level, Time: h.Time, HasTime: h.HasTime}
		return out
	case MalformedHeader:
		return Line{Kind: LineMalformed, Closed: f.close()}
	}
	if is(line, loggingError) {
		out := Line{Kind: LineLoggingError, Block: BlockLoggingError, Closed: f.close()}
		f.cur = Record{Block: BlockLoggingError}
		f.msgLen = -1
		return out
	}
	if f.cur.Block != BlockNone {
		if out, ok := f.continues(line); ok {
			f.cur.Lines++
			out.Kind = LineContinuation
			out.Block = f.cur.Block
			out.Raw = f.cur.Raw
			return out
		}
	}
	out := Line{Kind: LineRaw, Closed: f.close()}
	switch {
	case len(trimSpace(line)) == 0:
		out.Raw = RawBlank
		return out
	case is(line, tracebackHead):
		out.Raw = RawTraceback
		f.tb = tbIn
	case isPythonWarning(line):
		out.Raw = RawWarning
	default:
		out.Raw = RawText
	}
	out.Block = BlockRaw
	f.cur = Record{Block: BlockRaw, Raw: out.Raw}
	return out
}

// Flush closes the open block, if any, and returns it (at the end of a
// file, or before a gap in following).
func (f *Folder) Flush() Record { return f.close() }

// Open returns the kind of the block currently open.
func (f *Folder) Open() Block { return f.cur.Block }

func (f *Folder) close() Record {
	r := f.cur
	if r.Block == BlockNone {
		return Record{}
	}
	if n := len(r.Exception); n > 0 {
		copy(f.closedExc[:], r.Exception)
		r.Exception = f.closedExc[:n]
	}
	f.cur = Record{}
	f.tb = tbNone
	return r
}

func (f *Folder) continues(line []byte) (Line, bool) {
	if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		return Line{}, true
	}
	if is(line, tracebackHead) {
		f.tb = tbIn
		return Line{}, true
	}
	switch f.tb {
	case tbIn:
		n := copy(f.curExc[:], line)
		f.cur.Exception = f.curExc[:validUTF8Prefix(f.curExc[:n])]
		f.tb = tbAfter
		return Line{}, true
	case tbAfter:
		if len(line) == 0 || is(line, duringHandling) || is(line, directCause) {
			return Line{}, true
		}
	}
	if f.cur.Block == BlockLoggingError {
		if is(line, "Call stack:") || hasPrefix(line, "Unable to print the message and arguments") ||
			hasPrefix(line, "Use the traceback above") {
			return Line{}, true
		}
		if rest, ok := cut(line, "Message: "); ok {
			f.msgLen = unrepr(f.msg[:], rest)
			return Line{}, true
		}
		if rest, ok := cut(line, "Arguments: "); ok {
			var out Line
			if f.msgLen >= 0 {
				if n := pyFormat(f.rec[:], f.msg[:f.msgLen], rest); n >= 0 {
					out.Recovered = f.rec[:n]
				}
			}
			f.msgLen = -1
			return out, true
		}
	}
	return Line{}, false
}

// validUTF8Prefix returns the length of b without a rune cut in half at the
// end (a copy truncated at MaxExceptionLen can split one).
func validUTF8Prefix(b []byte) int {
	n := len(b)
	for i := 0; i < utf8.UTFMax && n > 0; i++ {
		r, size := utf8.DecodeLastRune(b[:n])
		if r != utf8.RuneError || size > 1 {
			return n
		}
		if b[n-1] < utf8.RuneSelf {
			return n
		}
		n--
	}
	return n
}

func hasNUL(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return true
		}
	}
	return false
}

// isPythonWarning recognises warnings.formatwarning's first line:
// "<filename>:<lineno>: <Category>: <message>" where Category ends in
// "Warning".
func isPythonWarning(b []byte) bool {
	for i := 2; i+1 < len(b) && i < 1024; i++ {
		if b[i] != ':' || b[i+1] != ' ' {
			continue
		}
		j := i - 1
		for j >= 0 && isDigit(b[j]) {
			j--
		}
		if j == i-1 || j < 1 || b[j] != ':' {
			continue
		}
		rest := b[i+2:]
		k := 0
		for k < len(rest) && (isDigit(rest[k]) || rest[k] == '_' || rest[k] == '.' ||
			(rest[k]|0x20 >= 'a' && rest[k]|0x20 <= 'z')) {
			k++
		}
		return k >= len("Warning") && k < len(rest) && rest[k] == ':' && string(rest[k-7:k]) == "Warning"
	}
	return false
}

// unrepr decodes a Python str repr ('...' or "...") into dst and returns
// the length, or -1 if s is not a complete str repr that fits.
func unrepr(dst []byte, s []byte) int {
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') || s[len(s)-1] != s[0] {
		return -1
	}
	q := s[0]
	s = s[1 : len(s)-1]
	n := 0
	put := func(c byte) bool {
		if n >= len(dst) {
			return false
		}
		dst[n] = c
		n++
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == q {
			return -1 // an unescaped quote inside: not one repr
		}
		if c != '\\' {
			if !put(c) {
				return -1
			}
			continue
		}
		i++
		if i >= len(s) {
			return -1
		}
		var r rune
		switch s[i] {
		case '\\', '\'', '"':
			r = rune(s[i])
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'x', 'u', 'U':
			width := 2
			switch s[i] {
			case 'u':
				width = 4
			case 'U':
				width = 8
			}
			if i+width >= len(s) {
				return -1
			}
			v, ok := hexVal(s[i+1 : i+1+width])
			if !ok {
				return -1
			}
			r = rune(v)
			i += width
		default:
			return -1
		}
		var enc [utf8.UTFMax]byte
		for _, c := range enc[:utf8.EncodeRune(enc[:], r)] {
			if !put(c) {
				return -1
			}
		}
	}
	return n
}

func hexVal(b []byte) (int, bool) {
	v := 0
	for _, c := range b {
		switch {
		case isDigit(c):
			v = v*16 + int(c-'0')
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			v = v*16 + int(c|0x20-'a') + 10
		default:
			return 0, false
		}
	}
	return v, len(b) > 0
}

// pyFormat applies Python's "msg % args" for the conversions the logging
// module's callers in Gunicorn use (%s %d %i %r %%), with args given as the
// repr of a tuple as printed by logging's handleError ("Arguments: (1, 'x')").
// An empty tuple leaves msg unformatted, as logging does. It returns the
// length written to dst, or -1 when it cannot rebuild the message.
func pyFormat(dst, msg, args []byte) int {
	args = trimSpace(args)
	if len(args) < 2 || args[0] != '(' || args[len(args)-1] != ')' {
		return -1
	}
	inner := trimSpace(args[1 : len(args)-1])
	if len(inner) == 0 {
		if len(msg) > len(dst) {
			return -1
		}
		return copy(dst, msg)
	}
	n := 0
	put := func(b []byte) bool {
		if n+len(b) > len(dst) {
			return false
		}
		n += copy(dst[n:], b)
		return true
	}
	for i := 0; i < len(msg); i++ {
		if msg[i] != '%' {
			if !put(msg[i : i+1]) {
				return -1
			}
			continue
		}
		i++
		if i >= len(msg) {
			return -1
		}
		conv := msg[i]
		if conv == '%' {
			if !put(msg[i : i+1]) {
				return -1
			}
			continue
		}
		tok, rest, ok := nextPyToken(inner)
		if !ok {
			return -1
		}
		inner = rest
		switch conv {
		case 's':
			if len(tok) > 0 && (tok[0] == '\'' || tok[0] == '"') {
				m := unrepr(dst[n:], tok)
				if m < 0 {
					return -1
				}
				n += m
			} else if !put(tok) {
				return -1
			}
		case 'r':
			if !put(tok) {
				return -1
			}
		case 'd', 'i':
			t := tok
			if len(t) > 0 && t[0] == '-' {
				t = t[1:]
			}
			if _, ok := wholeInt(t); !ok {
				return -1
			}
			if !put(tok) {
				return -1
			}
		default:
			return -1
		}
	}
	if len(trimSpace(inner)) != 0 {
		return -1 // not all arguments converted
	}
	return n
}

// nextPyToken splits the first element off a tuple repr's inside.
func nextPyToken(s []byte) (tok, rest []byte, ok bool) {
	s = trimSpace(s)
	if len(s) == 0 {
		return nil, nil, false
	}
	depth := 0
	var quote byte
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			switch c {
			case '\\':
				i++
			case quote:
				quote = 0
			}
			continue
		}
		switch c {
		case '\'', '"':
			quote = c
		case '(', '[', '{', '<':
			depth++
		case ')', ']', '}', '>':
			depth--
		case ',':
			if depth == 0 {
				return trimSpace(s[:i]), s[i+1:], true
			}
		}
	}
	if quote != 0 || depth != 0 {
		return nil, nil, false
	}
	return trimSpace(s), nil, true
}
