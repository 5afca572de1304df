package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Entry is the part of one journalctl --output=json entry the reader uses.
type Entry struct {
	Message    []byte
	Cursor     string
	PID        int
	Invocation string
}

// ErrNoMessage is returned for an entry without a usable MESSAGE field.
var ErrNoMessage = errors.New("journal entry has no MESSAGE")

type rawEntry struct {
	Message    json.RawMessage `json:"MESSAGE"`
	Cursor     string          `json:"__CURSOR"`
	PID        json.RawMessage `json:"_PID"`
	Invocation json.RawMessage `json:"_SYSTEMD_INVOCATION_ID"`
}

// DecodeEntry decodes one line of journalctl --output=json. MESSAGE is a
// string, or an array of byte values when it is not valid UTF-8 or holds
// control characters (journalctl's json output, "binary" fields); null (a
// field over the size threshold without --all) and an array of several
// values are not usable. The cursor is returned even when the message is
// not, so the reader can resume after the entry.
func DecodeEntry(line []byte) (Entry, error) {
	var raw rawEntry
	if err := json.Unmarshal(line, &raw); err != nil {
		return Entry{}, fmt.Errorf("journal entry: %w", err)
	}
	e := Entry{Cursor: raw.Cursor}
	if s, ok := jsonString(raw.PID); ok {
		e.PID, _ = strconv.Atoi(s)
	}
	e.Invocation, _ = jsonString(raw.Invocation)
	msg, ok := message(raw.Message)
	if !ok {
		return e, ErrNoMessage
	}
	// journald keeps a line's trailing '\r' (a CRLF writer); the file
	// follower drops it, so does this.
	if n := len(msg); n > 0 && msg[n-1] == '\r' {
		msg = msg[:n-1]
	}
	e.Message = msg
	return e, nil
}

func jsonString(b json.RawMessage) (string, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return "", false
	}
	return s, true
}

func message(b json.RawMessage) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	switch b[0] {
	case '"':
		var s string
		if json.Unmarshal(b, &s) != nil {
			return nil, false
		}
		return []byte(s), true
	case '[':
		var vals []int
		if json.Unmarshal(b, &vals) != nil {
			return nil, false
		}
		out := make([]byte, len(vals))
		for i, v := range vals {
			if v < 0 || v > 255 {
				return nil, false
			}
			out[i] = byte(v)
		}
		return out, true
	}
	return nil, false
}
