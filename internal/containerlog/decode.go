// Package containerlog owns the log files container runtimes write for a
// container's stdout and stderr: their decoding (Docker's json-file and
// the CRI format of containerd, CRI-O and the kubelet), the joining of
// lines the runtime split, a line source that follows such a file, and
// finding the file of the container a process runs in.
package containerlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
)

// Format is a container runtime's log file format.
type Format uint8

// Formats.
const (
	// FormatDocker is Docker's json-file driver: one JSON object per line,
	// {"log":"text\n","stream":"stderr","time":"RFC3339Nano"}. A "log"
	// without a trailing "\n" is part of a longer line: Docker splits
	// lines at 16 KiB.
	FormatDocker Format = iota + 1
	// FormatCRI is the CRI format: "<RFC3339Nano> <stdout|stderr> <P|F>
	// <text>", where P marks a partial line continued by the next entry of
	// the same stream and F a full or final one.
	FormatCRI
)

// ParseFormat reads "docker" (or "json-file") and "cri".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "docker", "json-file":
		return FormatDocker, nil
	case "cri":
		return FormatCRI, nil
	}
	return 0, fmt.Errorf("unknown container log format %q (want docker or cri)", s)
}

// String returns "docker" or "cri".
func (f Format) String() string {
	switch f {
	case FormatDocker:
		return "docker"
	case FormatCRI:
		return "cri"
	}
	return "unknown"
}

// Kind is the line-source kind of files in this format.
func (f Format) Kind() linesource.Kind {
	if f == FormatCRI {
		return linesource.KindCRI
	}
	return linesource.KindDocker
}

// Entry is one decoded line of a runtime's log file.
type Entry struct {
	Stream linesource.Stream
	// Text is the logged text without the line's newline. For the CRI
	// format it aliases the input; for json-file it is in the dst buffer
	// given to DecodeDocker.
	Text []byte
	// Partial says the text continues in the next entry of this stream.
	Partial bool
}

// ErrDecode is wrapped by every decoding error.
var ErrDecode = errors.New("not a container log line")

// DecodeCRI decodes one line of a CRI log (no trailing newline; a "\r" is
// part of the text). The time is checked for shape, not parsed: nothing
// downstream needs it, since Gunicorn's own lines carry their time.
func DecodeCRI(line []byte) (Entry, error) {
	sp := bytes.IndexByte(line, ' ')
	if sp < len("2006-01-02T15:04:05Z") || line[4] != '-' || line[10] != 'T' {
		return Entry{}, fmt.Errorf("%w: no RFC 3339 time at the start", ErrDecode)
	}
	rest := line[sp+1:]
	var e Entry
	switch {
	case bytes.HasPrefix(rest, []byte("stdout ")):
		e.Stream, rest = linesource.StreamStdout, rest[len("stdout "):]
	case bytes.HasPrefix(rest, []byte("stderr ")):
		e.Stream, rest = linesource.StreamStderr, rest[len("stderr "):]
	default:
		return Entry{}, fmt.Errorf("%w: stream is neither stdout nor stderr", ErrDecode)
	}
	// Tags are "P" or "F", possibly followed by more tags after ':'
	// (the CRI leaves room for them); an empty text may lose its space.
	tags := rest
	if i := bytes.IndexByte(rest, ' '); i >= 0 {
		tags, e.Text = rest[:i], rest[i+1:]
	} else {
		e.Text = rest[len(rest):]
	}
	if i := bytes.IndexByte(tags, ':'); i >= 0 {
		tags = tags[:i]
	}
	switch string(tags) {
	case "P":
		e.Partial = true
	case "F":
	default:
		return Entry{}, fmt.Errorf("%w: tag %q is neither P nor F", ErrDecode, tags)
	}
	return e, nil
}

// DecodeDocker decodes one line of a json-file log. The "log" text is
// unescaped into dst[:0] (grown as needed) and returned in Entry.Text;
// the caller passes the returned text back as dst to reuse it. The common
// shape (string values only) is decoded by hand without allocating;
// anything else (log-opts "attrs", unusual spacing) goes through
// encoding/json.
func DecodeDocker(line, dst []byte) (Entry, error) {
	e, ok := decodeDockerFast(line, dst[:0])
	if ok {
		return finishDocker(e)
	}
	var v struct {
		Log    *string `json:"log"`
		Stream string  `json:"stream"`
	}
	if err := json.Unmarshal(line, &v); err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	if v.Log == nil {
		return Entry{}, fmt.Errorf("%w: no \"log\" field", ErrDecode)
	}
	e = Entry{Text: append(dst[:0], *v.Log...)}
	switch v.Stream {
	case "stdout":
		e.Stream = linesource.StreamStdout
	case "stderr":
		e.Stream = linesource.StreamStderr
	}
	return finishDocker(e)
}

func finishDocker(e Entry) (Entry, error) {
	if n := len(e.Text); n > 0 && e.Text[n-1] == '\n' {
		e.Text = e.Text[:n-1]
	} else {
		e.Partial = true
	}
	return e, nil
}

// decodeDockerFast handles an object whose values are all strings, with no
// space between tokens, as Docker writes it. It reports false for
// anything else, leaving the decision to encoding/json.
func decodeDockerFast(line, dst []byte) (Entry, bool) {
	var e Entry
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' {
		return e, false
	}
	pos, hasLog := 1, false
	for {
		key, next, ok := rawString(line, pos)
		if !ok || next >= len(line) || line[next] != ':' {
			return e, false
		}
		pos = next + 1
		if (bytes.EqualFold(key, []byte("log")) && string(key) != "log") || (bytes.EqualFold(key, []byte("stream")) && string(key) != "stream") {
			return e, false // encoding/json matches keys without case
		}
		switch string(key) {
		case "log":
			if hasLog {
				return e, false // a duplicate key: the last wins in encoding/json
			}
			var text []byte
			text, pos, ok = unquote(line, pos, dst)
			if !ok {
				return e, false
			}
			e.Text, hasLog = text, true
		case "stream":
			var v []byte
			v, pos, ok = rawString(line, pos)
			if !ok {
				return e, false
			}
			switch string(v) {
			case "stdout":
				e.Stream = linesource.StreamStdout
			case "stderr":
				e.Stream = linesource.StreamStderr
			default:
				e.Stream = linesource.StreamUnknown
			}
		default:
			if _, pos, ok = rawString(line, pos); !ok {
				return e, false
			}
		}
		if pos >= len(line) {
			return e, false
		}
		switch line[pos] {
		case ',':
			pos++
		case '}':
			return e, hasLog && pos == len(line)-1
		default:
			return e, false
		}
	}
}

// rawString returns the bytes of a JSON string at line[pos] that has no
// escapes and only ASCII, and the position after its closing quote.
func rawString(line []byte, pos int) ([]byte, int, bool) {
	if pos >= len(line) || line[pos] != '"' {
		return nil, pos, false
	}
	for i := pos + 1; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"':
			return line[pos+1 : i], i + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, pos, false
		}
	}
	return nil, pos, false
}

// unquote appends the JSON string at line[pos] to dst, unescaped. It
// rejects what encoding/json would treat differently: control bytes and
// invalid UTF-8 (which encoding/json replaces by U+FFFD).
func unquote(line []byte, pos int, dst []byte) ([]byte, int, bool) {
	if pos >= len(line) || line[pos] != '"' {
		return nil, pos, false
	}
	i := pos + 1
	for i < len(line) {
		c := line[i]
		switch {
		case c == '"':
			return dst, i + 1, true
		case c < 0x20:
			return nil, pos, false
		case c >= 0x80:
			r, n := utf8.DecodeRune(line[i:])
			if r == utf8.RuneError && n <= 1 {
				return nil, pos, false
			}
			dst = append(dst, line[i:i+n]...)
			i += n
		case c != '\\':
			// Copy the run of plain bytes at once.
			j := i + 1
			for j < len(line) && line[j] != '"' && line[j] != '\\' && line[j] >= 0x20 && line[j] < 0x80 {
				j++
			}
			dst = append(dst, line[i:j]...)
			i = j
		default:
			if i+1 >= len(line) {
				return nil, pos, false
			}
			switch line[i+1] {
			case '"', '\\', '/':
				dst = append(dst, line[i+1])
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := hex4(line, i+2)
				if !ok {
					return nil, pos, false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					r2, ok2 := rune(0), false
					if i+1 < len(line) && line[i] == '\\' && line[i+1] == 'u' {
						r2, ok2 = hex4(line, i+2)
					}
					if d := utf16.DecodeRune(r, r2); ok2 && d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default:
				return nil, pos, false
			}
			i += 2
		}
	}
	return nil, pos, false
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
