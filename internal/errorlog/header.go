// Package errorlog owns the parsing of Gunicorn's error log ("gunicorn.error"
// logger) for 19.9 through 23.0: splitting one physical line into a record
// header (time, pid, level, message), folding the lines that continue a record
// (tracebacks, the "Current configuration:" dump), explaining the lines that
// bypass the formatter (raw stderr prints, Python warnings, "--- Logging
// error ---" blocks) and classifying a header's message into a closed set of
// lifecycle events.
//
// Everything here is a pure function or a small single-goroutine state
// machine over bytes. Nothing allocates per line on the hot path: messages
// and arguments are sub-slices of the caller's line and live exactly as long
// as the caller keeps that buffer unchanged. Counting and decisions belong to
// the lifecycle package; metrics belong to collectors.
package errorlog

import (
	"time"
)

// Level is a Python logging level name as Gunicorn writes it.
type Level uint8

// The five level names Gunicorn's error log uses, in severity order.
const (
	LevelDebug Level = iota
	LevelInfo
	LevelWarning
	LevelError
	LevelCritical
)

// NumLevels is the number of Level values; Level values index arrays of this
// size.
const NumLevels = 5

// AllLevels lists every Level in severity order.
var AllLevels = [NumLevels]Level{LevelDebug, LevelInfo, LevelWarning, LevelError, LevelCritical}

var levelNames = [NumLevels]string{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
var levelLabels = [NumLevels]string{"debug", "info", "warning", "error", "critical"}

// String returns the level name exactly as it appears in the log.
func (l Level) String() string {
	if int(l) < NumLevels {
		return levelNames[l]
	}
	return "UNKNOWN"
}

// Label returns the lower-case name, suitable as a metric label value.
func (l Level) Label() string {
	if int(l) < NumLevels {
		return levelLabels[l]
	}
	return "unknown"
}

func parseLevel(b []byte) (Level, bool) {
	switch string(b) {
	case "DEBUG":
		return LevelDebug, true
	case "INFO":
		return LevelInfo, true
	case "WARNING":
		return LevelWarning, true
	case "ERROR":
		return LevelError, true
	case "CRITICAL":
		return LevelCritical, true
	}
	return 0, false
}

// Header is the parsed first line of a record:
// "<asctime> [<pid>] [<LEVEL>] <message>".
//
// Message and TimeText are sub-slices of the line given to ParseHeader. They
// are valid only while the caller leaves that buffer untouched; copy them
// (string(h.Message)) to keep them.
type Header struct {
	// Time is the record time when HasTime is true. Times written with a
	// numeric offset are returned in UTC; times without a zone are read in
	// the location given to ParseHeader.
	Time    time.Time
	HasTime bool
	// TimeText is the raw text before "[pid]", without surrounding spaces;
	// empty when the format has no time at all.
	TimeText []byte
	PID      int
	Level    Level
	Message  []byte
}

// HeaderStatus says what ParseHeader made of a line.
type HeaderStatus uint8

// The results of ParseHeader.
const (
	// NotHeader: the line has no "[pid] [LEVEL]" skeleton. In a log it is a
	// continuation of the previous record or raw output (see Folder).
	NotHeader HeaderStatus = iota
	// HeaderOK: the Header is valid.
	HeaderOK
	// MalformedHeader: the line looks like a Gunicorn header (it starts
	// with the default "[YYYY-MM-DD" time, or has a "[digits] [UPPER]"
	// skeleton) but does not parse: a truncated or interleaved write, or an
	// unknown level name. This is the only kind of line the package calls a
	// parse failure, together with lines holding NUL bytes.
	MalformedHeader
)

const (
	// maxTimePrefix bounds where "[pid]" may start, so a long raw line is
	// not scanned for a skeleton past any sane datefmt.
	maxTimePrefix = 64
	maxPIDDigits  = 10
	// maxPID is the kernel's PID_MAX_LIMIT (2^22) with a wide margin; a
	// bigger number is not a pid.
	maxPID = 1<<31 - 1
)

// ParseHeader parses one physical line (a trailing "\n" or "\r\n" is
// ignored). loc is used for times written without a zone; nil means
// time.Local.
//
// The pid and level fields are found by hand: the first "[digits] [LEVEL]"
// followed by a space or the end of the line, starting within the first 64
// bytes. Whatever precedes it is the time, so custom logconfig datefmts work:
// bracketed or not, ISO 8601 with "T" and fractional seconds (".123" or
// ",123"), a zone as "Z", "+0000", "+00:00" or a name, the access-log style
// "24/Nov/2026:17:49:25 +0000", or no time at all. A time text it cannot read
// leaves HasTime false but the header still counts.
func ParseHeader(line []byte, loc *time.Location) (Header, HeaderStatus) {
	line = trimEOL(line)
	skeleton := false
	limit := len(line)
	if limit > maxTimePrefix+1 {
		limit = maxTimePrefix + 1
	}
	for i := 0; i < limit; i++ {
		if line[i] != '[' {
			continue
		}
		j := i + 1
		pid, nd := 0, 0
		for j < len(line) && isDigit(line[j]) && nd <= maxPIDDigits {
			pid = pid*10 + int(line[j]-'0')
			j++
			nd++
		}
		if nd == 0 || j+2 >= len(line) || line[j] != ']' || line[j+1] != ' ' || line[j+2] != '[' {
			continue
		}
		k := j + 3
		start := k
		for k < len(line) && k-start <= len("CRITICAL") && line[k] != ']' {
			k++
		}
		if k >= len(line) || line[k] != ']' {
			if k > start && allUpper(line[start:k]) {
				skeleton = true
			}
			continue
		}
		lvl, ok := parseLevel(line[start:k])
		if !ok {
			if k > start && allUpper(line[start:k]) {
				skeleton = true
			}
			continue
		}
		m := k + 1
		if m < len(line) {
			if line[m] != ' ' {
				skeleton = true
				continue
			}
			m++
		}
		if nd > maxPIDDigits || pid <= 0 || pid > maxPID {
			skeleton = true
			continue
		}
		prefix := trimSpace(line[:i])
		if !plausibleTimeText(prefix) {
			skeleton = true
			continue
		}
		h := Header{TimeText: prefix, PID: pid, Level: lvl, Message: line[m:]}
		if len(prefix) > 0 {
			h.Time, h.HasTime = parseTime(prefix, loc)
		}
		return h, HeaderOK
	}
	if skeleton || defaultTimeStart(line) {
		return Header{}, MalformedHeader
	}
	return Header{}, NotHeader
}

// plausibleTimeText accepts what a datefmt can render: empty, or printable
// text with at least one digit and no control bytes.
func plausibleTimeText(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	digit := false
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
		if isDigit(c) {
			digit = true
		}
	}
	return digit
}

// defaultTimeStart reports whether line starts like Gunicorn's default
// datefmt, "[YYYY-MM-DD".
func defaultTimeStart(line []byte) bool {
	return len(line) >= 11 && line[0] == '[' &&
		isDigit(line[1]) && isDigit(line[2]) && isDigit(line[3]) && isDigit(line[4]) &&
		line[5] == '-' && isDigit(line[6]) && isDigit(line[7]) && line[8] == '-' &&
		isDigit(line[9]) && isDigit(line[10])
}

var monthAbbr = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parseTime reads the time text of a header without allocating. It returns
// false for formats it does not know (for example a time of day with no
// date), which the caller treats as "no time".
func parseTime(b []byte, loc *time.Location) (time.Time, bool) {
	if len(b) >= 2 && b[0] == '[' && b[len(b)-1] == ']' {
		b = trimSpace(b[1 : len(b)-1])
	}
	var year, month, day int
	var p int
	switch {
	case len(b) >= 10 && b[4] == '-' && b[7] == '-':
		// YYYY-MM-DD
		var ok1, ok2, ok3 bool
		year, ok1 = atoiFixed(b[0:4])
		month, ok2 = atoiFixed(b[5:7])
		day, ok3 = atoiFixed(b[8:10])
		if !ok1 || !ok2 || !ok3 || len(b) < 11 || (b[10] != ' ' && b[10] != 'T') {
			return time.Time{}, false
		}
		p = 11
	case len(b) >= 12 && b[2] == '/' && b[6] == '/':
		// DD/Mon/YYYY:
		var ok1, ok3 bool
		day, ok1 = atoiFixed(b[0:2])
		month = 0
		for i, m := range monthAbbr {
			if string(b[3:6]) == m {
				month = i + 1
			}
		}
		year, ok3 = atoiFixed(b[7:11])
		if !ok1 || month == 0 || !ok3 || b[11] != ':' {
			return time.Time{}, false
		}
		p = 12
	default:
		return time.Time{}, false
	}
	// HH:MM:SS
	if len(b) < p+8 || b[p+2] != ':' || b[p+5] != ':' {
		return time.Time{}, false
	}
	hh, ok1 := atoiFixed(b[p : p+2])
	mm, ok2 := atoiFixed(b[p+3 : p+5])
	ss, ok3 := atoiFixed(b[p+6 : p+8])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	p += 8
	ns := 0
	if p < len(b) && (b[p] == '.' || b[p] == ',') {
		p++
		scale := 100000000
		nd := 0
		for p < len(b) && isDigit(b[p]) {
			if nd < 9 {
				ns += int(b[p]-'0') * scale
				scale /= 10
			}
			nd++
			p++
		}
		if nd == 0 {
			return time.Time{}, false
		}
	}
	// Python's datetime starts at year 1, so strftime never writes year 0.
	if year < 1 || month < 1 || month > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	for p < len(b) && b[p] == ' ' {
		p++
	}
	rest := b[p:]
	if len(rest) == 0 {
		if loc == nil {
			loc = time.Local
		}
		return time.Date(year, time.Month(month), day, hh, mm, ss, ns, loc), true
	}
	offset, ok := parseZone(rest)
	if !ok {
		return time.Time{}, false
	}
	if offset == zoneNamedLocal {
		if loc == nil {
			loc = time.Local
		}
		return time.Date(year, time.Month(month), day, hh, mm, ss, ns, loc), true
	}
	// Building a FixedZone would allocate; the instant is what matters.
	t := time.Date(year, time.Month(month), day, hh, mm, ss, ns, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

// zoneNamedLocal is returned by parseZone for a zone name other than UTC or
// GMT (%Z renders the process's zone name, which only the local zone
// database can resolve).
const zoneNamedLocal = 1 << 30

// parseZone reads "Z", "UTC", "GMT", "+HHMM", "+HH:MM", "+HH" or another
// zone name, returning the offset east of UTC in seconds.
func parseZone(b []byte) (int, bool) {
	switch string(b) {
	case "Z", "UTC", "GMT":
		return 0, true
	}
	if b[0] == '+' || b[0] == '-' {
		sign := 1
		if b[0] == '-' {
			sign = -1
		}
		d := b[1:]
		var h, m int
		var ok1, ok2 bool
		switch {
		case len(d) == 4:
			h, ok1 = atoiFixed(d[0:2])
			m, ok2 = atoiFixed(d[2:4])
		case len(d) == 5 && d[2] == ':':
			h, ok1 = atoiFixed(d[0:2])
			m, ok2 = atoiFixed(d[3:5])
		case len(d) == 2:
			h, ok1 = atoiFixed(d)
			ok2 = true
		}
		if !ok1 || !ok2 || h > 23 || m > 59 {
			return 0, false
		}
		return sign * (h*3600 + m*60), true
	}
	if len(b) <= 6 && allUpper(b) {
		return zoneNamedLocal, true
	}
	return 0, false
}

func atoiFixed(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allUpper(b []byte) bool {
	for _, c := range b {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
