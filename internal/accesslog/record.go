package accesslog

import (
	"errors"
	"fmt"
	"time"
)

// Method is the HTTP request method, folded into a closed set so that it can
// be used as a metric label.
type Method uint8

// The methods a Record can carry. MethodNone means the format has neither
// %(m)s nor %(r)s; MethodOther is any method outside the allow-list.
const (
	MethodNone Method = iota
	MethodGET
	MethodHEAD
	MethodPOST
	MethodPUT
	MethodDELETE
	MethodPATCH
	MethodOPTIONS
	MethodCONNECT
	MethodTRACE
	MethodOther
)

// NumMethods is the number of Method values; Method values index arrays of
// this size.
const NumMethods = 11

// AllMethods lists every method a line can yield (MethodNone excluded), in a
// stable order, so that callers can initialise one series per method.
var AllMethods = [...]Method{
	MethodGET, MethodHEAD, MethodPOST, MethodPUT, MethodDELETE,
	MethodPATCH, MethodOPTIONS, MethodCONNECT, MethodTRACE, MethodOther,
}

var methodNames = [NumMethods]string{
	"", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER",
}

// String returns the upper-case method name, "OTHER" for methods outside the
// allow-list and "" for MethodNone.
func (m Method) String() string {
	if int(m) < len(methodNames) {
		return methodNames[m]
	}
	return "OTHER"
}

// methodOf folds a raw method token into the closed set. The switch on
// string(b) does not allocate.
func methodOf(b []byte) Method {
	switch string(b) {
	case "GET":
		return MethodGET
	case "POST":
		return MethodPOST
	case "HEAD":
		return MethodHEAD
	case "PUT":
		return MethodPUT
	case "DELETE":
		return MethodDELETE
	case "PATCH":
		return MethodPATCH
	case "OPTIONS":
		return MethodOPTIONS
	case "CONNECT":
		return MethodCONNECT
	case "TRACE":
		return MethodTRACE
	}
	return MethodOther
}

// Record is one parsed access-log line. Parse fills it in place so that a
// caller can reuse one Record for every line without allocating.
//
// Every []byte field is a sub-slice of the line passed to Parse: it is only
// valid until that buffer is reused, and it is still escaped the way Gunicorn
// wrote it (a `"` inside a value reads `\"`; see AppendUnescaped). A field
// whose atom is not in the format is nil.
type Record struct {
	// Method comes from %(m)s, else from the first word of %(r)s.
	Method Method
	// Status is %(s)s; 0 if the format has no %(s)s.
	Status int

	// Duration is the request time from the finest duration atom that the
	// line carries as a number (D, then L, then M, then T). HasDuration is
	// false when the format has no duration atom or when its value is "-"
	// (%(M)s before Gunicorn 20.1 renders as "-") or does not fit a
	// time.Duration.
	Duration    time.Duration
	HasDuration bool
	// ErrorHandler is true when the line looks like one written by Gunicorn's
	// Worker.handle_error (400/403 for a bad request, 500 for an exception
	// or, from 22.0, a timeout). DurationTrusted is HasDuration &&
	// !ErrorHandler: handle_error resets request_start, so the duration of
	// such a line measures the error handling, not the request. See the
	// package documentation for the rule.
	ErrorHandler    bool
	DurationTrusted bool

	// RespBytes is the body size from %(B)s or %(b)s ("-" counts as 0).
	// HasBytes is false when neither atom is present or %(B)s is "None".
	RespBytes int64
	HasBytes  bool

	// Path is the path part of %(r)s (the raw request target without the
	// query string and without scheme and authority for absolute-form
	// targets), or %(U)s when the format has no %(r)s. It is empty for a
	// %(U)s of "None" (handle_error lines).
	Path []byte
	// Query is %(q)s, else the part of the %(r)s target after '?'.
	Query []byte
	// Proto is %(H)s, else the last word of %(r)s.
	Proto []byte
	// Remote is %(h)s. It is empty for unix-socket binds.
	Remote []byte
	// User is %(u)s ("-" when there was no basic-auth user).
	User []byte
	// Time is %(t)s verbatim, brackets included; see ParseTime.
	Time []byte
	// Referer and UserAgent are %(f)s and %(a)s.
	Referer   []byte
	UserAgent []byte
	// WorkerPID is the number inside %(p)s ("<20868>"); 0 if absent.
	WorkerPID int

	line []byte
	vals []span
	err  ParseError
}

// span is the raw value of one field in the current line.
type span struct {
	start, end int32
}

// Value returns the raw value of the i-th field of the format (the order of
// Parser.Fields) from the last successful Parse, or nil if i is out of range.
// It is a sub-slice of the line, still escaped.
func (r *Record) Value(i int) []byte {
	if i < 0 || i >= len(r.vals) || r.line == nil {
		return nil
	}
	s := r.vals[i]
	return r.line[s.start:s.end:s.end]
}

// ParseTime converts a %(t)s value such as "[24/Nov/2026:17:50:12 +0000]"
// (brackets optional) into a time.Time. It expects the English month
// abbreviations of the C locale, which is what Gunicorn writes unless the
// application changes LC_TIME.
func ParseTime(b []byte) (time.Time, error) {
	if len(b) >= 2 && b[0] == '[' && b[len(b)-1] == ']' {
		b = b[1 : len(b)-1]
	}
	t, err := time.Parse("02/Jan/2006:15:04:05 -0700", string(b))
	if err != nil {
		return time.Time{}, fmt.Errorf("accesslog: bad %%(t)s value %q: %w", b, err)
	}
	return t, nil
}

// AppendUnescaped appends src to dst with Gunicorn's only escape undone: each
// `\"` becomes `"`. Backslashes elsewhere are kept, as Gunicorn never escapes
// them.
func AppendUnescaped(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		if src[i] == '\\' && i+1 < len(src) && src[i+1] == '"' {
			continue
		}
		dst = append(dst, src[i])
	}
	return dst
}

// Sentinel errors wrapped by *ParseError.
var (
	// ErrMismatch means the line does not have the shape of the format.
	ErrMismatch = errors.New("line does not match the access log format")
	// ErrAmbiguous means the matcher gave up after trying too many ways to
	// split a line whose unquoted free-text fields contain their delimiter.
	ErrAmbiguous = errors.New("line is too ambiguous for the access log format")
)

// ParseError says where a line stopped matching its format. Parse returns a
// pointer into the Record it was given so that failing lines do not allocate
// either: copy the value if it must outlive the next Parse.
type ParseError struct {
	// Offset is the furthest byte offset in the line the matcher reached.
	Offset int
	// Field is the atom (as in Parser.Fields) that could not be matched
	// there, or "" for a literal part of the format.
	Field string
	// Err is ErrMismatch or ErrAmbiguous.
	Err error
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("accesslog: %v at byte %d", e.Err, e.Offset)
	}
	return fmt.Sprintf("accesslog: %v at byte %d (atom %%(%s)s)", e.Err, e.Offset, e.Field)
}

func (e *ParseError) Unwrap() error { return e.Err }
