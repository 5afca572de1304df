package containerlog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
)

func TestDecodeDocker(t *testing.T) {
	for _, tc := range []struct {
		name, line, text string
		stream           linesource.Stream
		partial, err     bool
	}{
		{name: "stderr line", line: `{"log":"[2026-12-01 19:27:56 +0000] [7] [INFO] Booting worker with pid: 7\n","stream":"stderr","time":"2026-12-01T19:27:56.123456789Z"}`,
			text: "[2026-12-01 19:27:56 +0000] [7] [INFO] Booting worker with pid: 7", stream: linesource.StreamStderr},
		{name: "escapes", line: `{"log":"a \"q\" \\ \t \u003chtml\u003e \u00e9 \ud83d\ude00\r\n","stream":"stdout","time":"2026-12-01T19:27:56Z"}`,
			text: "a \"q\" \\ \t <html> é 😀\r", stream: linesource.StreamStdout},
		{name: "partial (Docker splits at 16 KiB)", line: `{"log":"abc","stream":"stdout","time":"2026-12-01T19:27:56Z"}`, text: "abc", stream: linesource.StreamStdout, partial: true},
		{name: "attrs from log-opts", line: `{"log":"x\n","stream":"stderr","attrs":{"tag":"web"},"time":"2026-12-01T19:27:56Z"}`, text: "x", stream: linesource.StreamStderr},
		{name: "spaces", line: `{ "log" : "x\n" , "stream" : "stderr" }`, text: "x", stream: linesource.StreamStderr},
		{name: "no log", line: `{"stream":"stderr"}`, err: true},
		{name: "not json", line: `[2026-12-01 19:27:56 +0000] [7] [INFO] x`, err: true},
		{name: "cut short", line: `{"log":"x\n","stream":"std`, err: true},
		{name: "control byte", line: "{\"log\":\"a\x01\\n\"}", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := DecodeDocker([]byte(tc.line), nil)
			if tc.err {
				require.ErrorIs(t, err, ErrDecode)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.text, string(e.Text))
			require.Equal(t, tc.stream, e.Stream)
			require.Equal(t, tc.partial, e.Partial)
		})
	}
}

func TestDecodeCRI(t *testing.T) {
	for _, tc := range []struct {
		name, line, text string
		stream           linesource.Stream
		partial, err     bool
	}{
		{name: "full", line: "2026-12-01T19:27:56.123456789Z stderr F [2026-12-01 19:27:56 +0000] [7] [INFO] Booting worker with pid: 7",
			text: "[2026-12-01 19:27:56 +0000] [7] [INFO] Booting worker with pid: 7", stream: linesource.StreamStderr},
		{name: "partial", line: "2026-12-01T19:27:56.123456789+01:00 stdout P abc ", text: "abc ", stream: linesource.StreamStdout, partial: true},
		{name: "empty text", line: "2026-12-01T19:27:56Z stdout F ", text: "", stream: linesource.StreamStdout},
		{name: "empty text, no space", line: "2026-12-01T19:27:56Z stdout F", text: "", stream: linesource.StreamStdout},
		{name: "more tags", line: "2026-12-01T19:27:56Z stderr F:x y", text: "y", stream: linesource.StreamStderr},
		{name: "bad stream", line: "2026-12-01T19:27:56Z stdin F y", err: true},
		{name: "bad tag", line: "2026-12-01T19:27:56Z stdout X y", err: true},
		{name: "no time", line: "stdout F y", err: true},
		{name: "plain gunicorn line", line: "[2026-12-01 19:27:56 +0000] [7] [INFO] x", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := DecodeCRI([]byte(tc.line))
			if tc.err {
				require.ErrorIs(t, err, ErrDecode)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.text, string(e.Text))
			require.Equal(t, tc.stream, e.Stream)
			require.Equal(t, tc.partial, e.Partial)
		})
	}
}

// FuzzDecodeDocker checks the hand decoder against encoding/json: on valid
// UTF-8 both accept the same lines and give the same text and stream.
func FuzzDecodeDocker(f *testing.F) {
	for _, s := range []string{
		`{"log":"x\n","stream":"stderr","time":"2026-12-01T19:27:56.123456789Z"}`,
		`{"log":"\u00e9\ud83d\ude00\ud800x","stream":"stdout"}`,
		`{"log":"a","Log":"b"}`, `{"LOG":"a\n"}`, `{"log":"a\n","log":"b"}`,
		`{"log":"a\n","stream":1}`, `{"log":null}`, `{}`, `{"log":"\/\b\f"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := DecodeDocker(line, nil)
		if !utf8.Valid(line) {
			return
		}
		var v struct {
			Log    *string `json:"log"`
			Stream string  `json:"stream"`
		}
		jerr := json.Unmarshal(line, &v)
		if jerr != nil || v.Log == nil {
			require.Error(t, err, "json rejects %q: %v", line, jerr)
			return
		}
		require.NoError(t, err, "json accepts %q", line)
		want := *v.Log
		partial := !strings.HasSuffix(want, "\n")
		want = strings.TrimSuffix(want, "\n")
		require.Equal(t, want, string(e.Text))
		require.Equal(t, partial, e.Partial)
		wantStream := map[string]linesource.Stream{"stdout": linesource.StreamStdout, "stderr": linesource.StreamStderr}[v.Stream]
		require.Equal(t, wantStream, e.Stream)
	})
}

// FuzzDecodeCRI checks the decoder never panics and that what it accepts
// has the CRI shape: the text is the line's tail after stream and tag.
func FuzzDecodeCRI(f *testing.F) {
	for _, s := range []string{
		"2026-12-01T19:27:56.123456789Z stderr F x y", "2026-12-01T19:27:56Z stdout P ", "2026-12-01T19:27:56Z stdout F",
		"2026-12-01T19:27:56Z stdout F:a:b x", "x", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := DecodeCRI(line)
		if err != nil {
			require.True(t, errors.Is(err, ErrDecode))
			return
		}
		require.True(t, strings.HasSuffix(string(line), string(e.Text)))
		require.NotEqual(t, linesource.StreamUnknown, e.Stream)
		head := string(line[:len(line)-len(e.Text)])
		require.True(t, strings.Contains(head, " stdout ") || strings.Contains(head, " stderr "), head)
	})
}
