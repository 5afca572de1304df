// Package routes turns raw request paths into a bounded set of route
// templates for per-route latency: configured rules first (a regular
// expression and the template it stands for), then a default normaliser
// that collapses identifiers (numbers, UUIDs, hex strings, long tokens) into
// ":id". A per-app cap bounds the number of distinct routes; past it, paths
// land in the "other" route and are counted, so no path can grow the series
// count. The common path allocates nothing: a path seen before is a map
// lookup, and a new one is normalised into a reused buffer.
package routes

import (
	"bytes"
	"fmt"
	"regexp"
)

// Other is the route of every path past the cap.
const Other = "other"

// MaxPathCache bounds the raw-path cache; past it, paths are normalised on
// every request (still without allocating) instead of remembered.
const MaxPathCache = 16384

// Rule maps paths matching Match to the template Route.
type Rule struct {
	Match *regexp.Regexp
	Route string
}

// ParseRule compiles a rule from config text; the expression is anchored.
func ParseRule(match, route string) (Rule, error) {
	re, err := regexp.Compile("^(?:" + match + ")$")
	if err != nil {
		return Rule{}, fmt.Errorf("route rule %q: %w", match, err)
	}
	if route == "" {
		return Rule{}, fmt.Errorf("route rule %q: empty route", match)
	}
	return Rule{Match: re, Route: route}, nil
}

// Table assigns route indexes for one app. It is not safe for concurrent
// use: one goroutine (the app's access-log pipeline) owns it.
type Table struct {
	rules    []Rule
	max      int
	names    []string       // index -> route; names[0] is Other
	byRoute  map[string]int // route -> index
	cache    map[string]int // raw path -> index
	buf      []byte
	overflow uint64
}

// NewTable returns a table holding at most maxRoutes routes besides Other.
func NewTable(rules []Rule, maxRoutes int) *Table {
	if maxRoutes < 1 {
		maxRoutes = 1
	}
	return &Table{
		rules:   rules,
		max:     maxRoutes,
		names:   []string{Other},
		byRoute: map[string]int{Other: 0},
		cache:   map[string]int{},
		buf:     make([]byte, 0, 256),
	}
}

// Index returns the route index of path (without its query string).
func (t *Table) Index(path []byte) int {
	if i, ok := t.cache[string(path)]; ok { // no allocation for the lookup
		if i == 0 {
			t.overflow++
		}
		return i
	}
	i := t.assign(path)
	if len(t.cache) < MaxPathCache {
		t.cache[string(path)] = i
	}
	if i == 0 {
		t.overflow++
	}
	return i
}

func (t *Table) assign(path []byte) int {
	var route []byte
	for _, r := range t.rules {
		if r.Match.Match(path) {
			route = []byte(r.Route)
			break
		}
	}
	if route == nil {
		t.buf = Normalize(t.buf[:0], path)
		route = t.buf
	}
	if i, ok := t.byRoute[string(route)]; ok {
		return i
	}
	if len(t.names)-1 >= t.max {
		return 0
	}
	name := string(route)
	t.names = append(t.names, name)
	t.byRoute[name] = len(t.names) - 1
	return len(t.names) - 1
}

// Name returns the route of an index.
func (t *Table) Name(i int) string { return t.names[i] }

// Len is the number of routes, Other included.
func (t *Table) Len() int { return len(t.names) }

// Overflow counts requests that fell into Other because of the cap.
func (t *Table) Overflow() uint64 { return t.overflow }

// Normalize appends the template of path to dst: each path segment that
// looks like an identifier becomes ":id"; an empty path becomes "/".
func Normalize(dst, path []byte) []byte {
	if len(path) == 0 || path[0] != '/' {
		return append(dst, '/')
	}
	for len(path) > 0 {
		path = path[1:] // the '/'
		end := bytes.IndexByte(path, '/')
		if end < 0 {
			end = len(path)
		}
		seg := path[:end]
		dst = append(dst, '/')
		if isID(seg) {
			dst = append(dst, ":id"...)
		} else {
			dst = appendTokens(dst, seg)
		}
		path = path[end:]
	}
	return dst
}

// appendTokens appends seg with its hash-like tokens collapsed: build
// tools name assets "chunk-1136bf0e.js" or "app.3f9a2c1d.css", and each
// such name would otherwise be a route of its own.
func appendTokens(dst, seg []byte) []byte {
	for len(seg) > 0 {
		end := bytes.IndexAny(seg, "-_.")
		if end < 0 {
			end = len(seg)
		}
		if isHashToken(seg[:end]) {
			dst = append(dst, ":id"...)
		} else {
			dst = append(dst, seg[:end]...)
		}
		if end < len(seg) {
			dst = append(dst, seg[end])
			end++
		}
		seg = seg[end:]
	}
	return dst
}

// isHashToken: 7 or more hex characters, at least one of them a digit.
func isHashToken(tok []byte) bool {
	if len(tok) < 7 {
		return false
	}
	digit := false
	for _, c := range tok {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return digit
}

// isID reports whether a segment is an identifier rather than a name:
// all digits; a UUID; hex of 8+ digits with a digit (dashes allowed); or a token of 20+
// characters mixing letters and digits (base64 ids, hashes, session keys).
func isID(seg []byte) bool {
	n := len(seg)
	if n == 0 {
		return false
	}
	digits, hex, letters, dashes, other := 0, 0, 0, 0, 0
	for _, c := range seg {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			hex++
		case c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z':
			letters++
		case c == '-':
			dashes++
		case c == '_' || c == '=' || c == '.' || c == '~' || c == '%':
			other++
		default:
			return false
		}
	}
	switch {
	case digits == n:
		return true
	case n == 36 && isUUID(seg):
		return true
	case letters == 0 && other == 0 && n-dashes >= 8 && digits > 0:
		return true // hex, with or without dashes (UUID parts, short hashes)
	case n >= 20 && digits > 0 && (hex+letters) > 0:
		return true
	}
	return false
}

func isUUID(s []byte) bool {
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
