package pgmon

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestStripLiterals(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT 1", "SELECT ?"},
		{"select * from t where id = 42 and name = 'bob'", "select * from t where id = ? and name = ?"},
		{"SELECT 'it''s', 'x'", "SELECT ?, ?"},
		{"SELECT E'a\\'b', 'c'", "SELECT ?, ?"},
		{"SELECT e'\\\\', 1", "SELECT ?, ?"},
		{"SELECT B'101', X'1F', N'nat', U&'d\\0061t\\+000061' UESCAPE '!' , 2", "SELECT ?, ?, ?, ? , ?"},
		{"SELECT $$secret$$, $tag$ with $$ inside $tag$", "SELECT ?, ?"},
		{"SELECT $1, $2::int FROM t1 WHERE c2 = $3", "SELECT $1, $2::int FROM t1 WHERE c2 = $3"},
		{"SELECT 3.14, .5, 1e10, 1.5E-3, 0x1F, 0o17, 0b101, 1_000_000", "SELECT ?, ?, ?, ?, ?, ?, ?, ?"},
		{"SELECT a1, b_2, \"Col 3\", t.c4 FROM s5.t6", "SELECT a1, b_2, \"Col 3\", t.c4 FROM s5.t6"},
		{"SELECT \"a\"\"b\" FROM t", "SELECT \"a\"\"b\" FROM t"},
		{"SELECT 1 -- password=hunter2\n, 2", "SELECT ? , ?"},
		{"/* traceparent='00-abc' */ SELECT /* a /* nested */ b */ 7", "SELECT ?"},
		{"SELECT   x\n\t FROM  y", "SELECT x FROM y"},
		{"SELECT -5, x-1, x - 1", "SELECT -?, x-?, x - ?"},
		{"INSERT INTO t VALUES ('unterminated", "INSERT INTO t VALUES (?"},
		{"SELECT $x$ never closed", "SELECT ?"},
		{"SELECT a$b, $", "SELECT a$b, $"},
		{"SELECT '{1,2}'::int[], ARRAY[1,2]", "SELECT ?::int[], ARRAY[?,?]"},
		{"SELECT 123abc", "SELECT ?"},
		{"SELECT 'ünïcödé', ünï", "SELECT ?, ünï"},
		{"", ""},
	} {
		require.Equal(t, tc.want, StripLiterals(tc.in), "input %q", tc.in)
	}
}

func TestTruncateUTF8(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
		want  string
		cut   bool
	}{
		{"abc", 5, "abc", false},
		{"abc", 3, "abc", false},
		{"abcd", 3, "abc", true},
		{"aé", 2, "a", true}, // é is 2 bytes: never split
		{"日本", 4, "日", true},
		{"x", 0, "", true},
		{"x", -1, "", true},
	} {
		got, cut := TruncateUTF8(tc.in, tc.limit)
		require.Equal(t, tc.want, got, "%q/%d", tc.in, tc.limit)
		require.Equal(t, tc.cut, cut, "%q/%d", tc.in, tc.limit)
	}
}

// FuzzStripLiterals checks that stripping never panics, yields valid UTF-8
// no longer than the input, is idempotent, and that a string or number
// constant built from the fuzz input never survives.
func FuzzStripLiterals(f *testing.F) {
	for _, s := range []string{"SELECT 1", "x'y'", "$a$b$a$", "E'\\''", "/* /* */", "--\n1", "\"a\"\"\"", "U&'x' UESCAPE '!'", "0x1e+5", "\xff'\xfe'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := StripLiterals(q)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 from %q: %q", q, out)
		}
		if len(out) > len(strings.ToValidUTF8(q, "\uFFFD")) {
			t.Fatalf("output longer than input: %q -> %q", q, out)
		}
		if again := StripLiterals(out); again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", q, out, again)
		}
		lit := "SELECT '" + strings.ReplaceAll(q, "'", "''") + "' FROM t"
		if got := StripLiterals(lit); got != "SELECT ? FROM t" {
			t.Fatalf("string constant leaked: %q -> %q", lit, got)
		}
		var digits strings.Builder
		for _, r := range q {
			if r >= '0' && r <= '9' {
				digits.WriteRune(r)
			}
		}
		if digits.Len() > 0 {
			num := "SELECT " + digits.String() + " FROM t"
			if got := StripLiterals(num); got != "SELECT ? FROM t" {
				t.Fatalf("number leaked: %q -> %q", num, got)
			}
		}
	})
}
