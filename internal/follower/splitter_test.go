package follower

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// splitResult is what a splitter produced.
type splitResult struct {
	lines []string
	cnt   counters
}

// runSplitter feeds chunks to a fresh splitter and flushes at the end.
func runSplitter(max int, atStart bool, chunks [][]byte) splitResult {
	var r splitResult
	s := splitter{h: func(b []byte) { r.lines = append(r.lines, string(b)) }, max: max, c: &r.cnt}
	s.reset(atStart)
	for _, c := range chunks {
		s.write(context.Background(), c)
	}
	s.flush(context.Background())
	if len(s.buf) > max || cap(s.buf) > max {
		panic("partial buffer exceeded max")
	}
	return r
}

// refSplit is the splitter's specification written the slow, obvious way on
// the whole input (see the rules on the splitter type).
func refSplit(data []byte, max int, atStart bool) splitResult {
	var r splitResult
	parts := bytes.Split(data, []byte{'\n'})
	rest := parts[len(parts)-1]
	parts = parts[:len(parts)-1]
	if len(rest) > 0 {
		parts = append(parts, rest)
	}
	first := atStart
	for _, line := range parts {
		n := 0
		for n < len(line) && line[n] == 0 {
			n++
		}
		r.cnt.discarded += uint64(n)
		skipped := n > 0
		line = line[n:]
		if len(line) > max {
			r.cnt.discarded += uint64(len(line) - max)
			r.cnt.oversized++
			line = line[:max]
		}
		if first {
			line = bytes.TrimPrefix(line, utf8BOM)
			first = false
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 && skipped {
			continue
		}
		r.cnt.lines++
		r.lines = append(r.lines, string(line))
	}
	return r
}

func TestSplitterRules(t *testing.T) {
	for _, tc := range []struct {
		name           string
		in             string
		max            int
		atStart        bool
		want           []string
		discarded, ovs uint64
	}{
		{name: "plain", in: "a\nbb\n\nccc\n", max: 10, want: []string{"a", "bb", "", "ccc"}},
		{name: "unterminated rest is flushed", in: "a\nrest", max: 10, want: []string{"a", "rest"}},
		{name: "crlf", in: "one\r\ntwo\r\n\r\n", max: 10, want: []string{"one", "two", ""}},
		{name: "only one cr stripped", in: "x\r\r\n", max: 10, want: []string{"x\r"}},
		{name: "bom at offset 0", in: "\xEF\xBB\xBFfirst\n\xEF\xBB\xBFsecond\n", max: 20, atStart: true,
			want: []string{"first", "\xEF\xBB\xBFsecond"}},
		{name: "bom kept when not at offset 0", in: "\xEF\xBB\xBFx\n", max: 20, want: []string{"\xEF\xBB\xBFx"}},
		{name: "nul prefix dropped", in: "\x00\x00\x00abc\n", max: 10, want: []string{"abc"}, discarded: 3},
		{name: "nul-only line dropped", in: "\x00\x00\n\x00\r\nx\n", max: 10, want: []string{"x"}, discarded: 3},
		{name: "nul inside a line kept", in: "a\x00b\n", max: 10, want: []string{"a\x00b"}},
		{name: "invalid utf8 passed through", in: "\xff\xfe\xc3\x28\n", max: 10, want: []string{"\xff\xfe\xc3\x28"}},
		{name: "exactly max is not oversized", in: "12345\n", max: 5, want: []string{"12345"}},
		{name: "oversized cut", in: "1234567\nok\n", max: 5, want: []string{"12345", "ok"}, discarded: 2, ovs: 1},
		{name: "oversized unterminated", in: "123456789", max: 4, want: []string{"1234"}, discarded: 5, ovs: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Whole, then byte by byte: both must give the same result.
			for _, chunks := range [][][]byte{{[]byte(tc.in)}, bytesOf(tc.in)} {
				got := runSplitter(tc.max, tc.atStart, chunks)
				require.Equal(t, tc.want, got.lines)
				require.Equal(t, tc.discarded, got.cnt.discarded, "discarded")
				require.Equal(t, tc.ovs, got.cnt.oversized, "oversized")
				require.Equal(t, uint64(len(tc.want)), got.cnt.lines)
			}
			require.Equal(t, tc.want, refSplit([]byte(tc.in), tc.max, tc.atStart).lines)
		})
	}
}

func bytesOf(s string) [][]byte {
	out := make([][]byte, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = []byte{s[i]}
	}
	return out
}

// FuzzSplitter checks that feeding the input in arbitrary chunks gives the
// same lines and counters as feeding it whole, and that both match the
// reference specification.
func FuzzSplitter(f *testing.F) {
	f.Add([]byte("a\nb\nc"), []byte{1, 2, 3}, uint8(8), true)
	f.Add([]byte("line one\r\nline two\r\n"), []byte{9}, uint8(64), false)
	f.Add([]byte("\xEF\xBB\xBFbom\nx\n"), []byte{1, 1, 1}, uint8(16), true)
	f.Add([]byte("\x00\x00\x00\x00tail\n\x00\n"), []byte{2, 5}, uint8(16), false)
	f.Add([]byte(strings.Repeat("x", 300)+"\nshort\n"), []byte{100, 100, 50}, uint8(32), false)
	f.Add([]byte("\xff\xfe\xc3\x28\n\n\n"), []byte{0, 1}, uint8(1), true)
	f.Add([]byte("ab\r"), []byte{1}, uint8(2), false)
	f.Fuzz(func(t *testing.T, data, cuts []byte, maxLine uint8, atStart bool) {
		max := int(maxLine)%64 + 1
		var chunks [][]byte
		rest := data
		for _, c := range cuts {
			n := min(int(c), len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		chunks = append(chunks, rest)

		whole := runSplitter(max, atStart, [][]byte{data})
		pieces := runSplitter(max, atStart, chunks)
		ref := refSplit(data, max, atStart)
		require.Equal(t, whole, pieces, "chunked input must split like the whole input")
		require.Equal(t, ref.lines, whole.lines, "lines differ from the reference")
		require.Equal(t, ref.cnt, whole.cnt, "counters differ from the reference")
		for _, l := range whole.lines {
			require.LessOrEqual(t, len(l), max)
			require.NotContains(t, l, "\n")
		}
	})
}
