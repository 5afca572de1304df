package pgmon

import (
	"strings"
	"unicode/utf8"
)

// StripLiterals returns query with every constant replaced by '?' and
// comments removed, so it can be shown without the values it carries:
// string constants ('...', E'...', B'...', X'...', N'...', U&'...'),
// dollar-quoted strings ($$...$$, $tag$...$tag$) and numeric constants
// (42, 4.2, .5, 1e-3, 0x1F, 1_000). Identifiers, including "quoted" ones,
// keywords, operators and parameter placeholders ($1) are kept. Runs of
// white space become one space. Unterminated literals and comments run to
// the end of the text, so a query truncated by track_activity_query_size
// never leaks the tail of a literal. Invalid UTF-8 is replaced first.
func StripLiterals(query string) string {
	q := strings.ToValidUTF8(query, "\uFFFD")
	var b strings.Builder
	b.Grow(len(q))
	space := false // a space is pending
	emit := func(s string) {
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteString(s)
	}
	prevIdent := false // the last emitted character belongs to an identifier or keyword
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			space = true
			prevIdent = false
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				i = len(q)
			} else {
				i += j
			}
			space = true
			prevIdent = false
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			i = skipBlockComment(q, i)
			space = true
			prevIdent = false
		case c == '\'':
			i = skipQuoted(q, i, false)
			emit("?")
			prevIdent = false
		case c == '"':
			j := skipIdent(q, i)
			emit(q[i:j])
			i = j
			prevIdent = true
		case c == '$' && !prevIdent:
			if i+1 < len(q) && isDigit(q[i+1]) { // parameter placeholder $n
				j := i + 1
				for j < len(q) && isDigit(q[j]) {
					j++
				}
				emit(q[i:j])
				i = j
				prevIdent = true
				break
			}
			if end, ok := skipDollarQuoted(q, i); ok {
				emit("?")
				i = end
				prevIdent = false
				break
			}
			emit("$")
			i++
			prevIdent = false
		case !prevIdent && (isDigit(c) || c == '.' && i+1 < len(q) && isDigit(q[i+1])):
			i = skipNumber(q, i)
			emit("?")
			prevIdent = false
		case isIdentStart(c):
			j := i
			for j < len(q) && isIdentChar(q[j]) {
				j++
			}
			word := q[i:j]
			// A one-letter prefix glued to a quote is part of the constant.
			if j < len(q) && q[j] == '\'' && len(word) == 1 && strings.ContainsRune("eEbBxXnN", rune(word[0])) {
				i = skipQuoted(q, j, word == "e" || word == "E")
				emit("?")
				prevIdent = false
				break
			}
			if j+1 < len(q) && q[j] == '&' && q[j+1] == '\'' && (word == "u" || word == "U") {
				i = skipQuoted(q, j+1, false)
				i = skipUescape(q, i)
				emit("?")
				prevIdent = false
				break
			}
			emit(word)
			i = j
			prevIdent = true
		default:
			_, w := utf8.DecodeRuneInString(q[i:])
			emit(q[i : i+w])
			i += w
			prevIdent = false
		}
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

// skipQuoted returns the index after the '...' constant starting at i
// (” is an escaped quote; with backslash escapes, \x escapes x).
func skipQuoted(q string, i int, backslash bool) int {
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if backslash {
				j++
			}
		case '\'':
			if j+1 < len(q) && q[j+1] == '\'' {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}

// skipUescape skips an optional UESCAPE 'x' clause after a U&” constant.
func skipUescape(q string, i int) int {
	j := i
	for j < len(q) && (q[j] == ' ' || q[j] == '\t' || q[j] == '\n' || q[j] == '\r') {
		j++
	}
	if len(q)-j >= 7 && strings.EqualFold(q[j:j+7], "uescape") {
		k := j + 7
		for k < len(q) && (q[k] == ' ' || q[k] == '\t' || q[k] == '\n' || q[k] == '\r') {
			k++
		}
		if k < len(q) && q[k] == '\'' {
			return skipQuoted(q, k, false)
		}
	}
	return i
}

// skipIdent returns the index after the "..." identifier starting at i.
func skipIdent(q string, i int) int {
	for j := i + 1; j < len(q); j++ {
		if q[j] == '"' {
			if j+1 < len(q) && q[j+1] == '"' {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}

// skipBlockComment returns the index after the (possibly nested) /* */
// comment starting at i.
func skipBlockComment(q string, i int) int {
	depth := 0
	for j := i; j+1 < len(q); j++ {
		switch {
		case q[j] == '/' && q[j+1] == '*':
			depth++
			j++
		case q[j] == '*' && q[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(q)
}

// skipDollarQuoted recognises $tag$...$tag$ at i and returns the index after
// it (the end of the text when unterminated).
func skipDollarQuoted(q string, i int) (int, bool) {
	j := i + 1
	if j < len(q) && isIdentStart(q[j]) {
		for j < len(q) && isIdentStart(q[j]) || j < len(q) && isDigit(q[j]) {
			j++
		}
	}
	if j >= len(q) || q[j] != '$' {
		return 0, false
	}
	tag := q[i : j+1]
	end := strings.Index(q[j+1:], tag)
	if end < 0 {
		return len(q), true
	}
	return j + 1 + end + len(tag), true
}

// skipNumber returns the index after the numeric constant starting at i,
// including a trailing exponent, hex/octal/binary digits and underscores,
// and any identifier characters glued to it (PostgreSQL rejects "123abc",
// but it must not leak either).
func skipNumber(q string, i int) int {
	j := i
	for j < len(q) {
		c := q[j]
		switch {
		case isIdentChar(c), c == '.':
			j++
		case (c == '+' || c == '-') && j > i && (q[j-1] == 'e' || q[j-1] == 'E') && !isHexPrefixed(q[i:j]):
			j++
		default:
			return j
		}
	}
	return j
}

func isHexPrefixed(s string) bool { return len(s) > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') }

// TruncateUTF8 returns s cut to at most limit bytes without splitting a
// character, and whether it was cut.
func TruncateUTF8(s string, limit int) (string, bool) {
	limit = max(limit, 0)
	if len(s) <= limit {
		return s, false
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}
