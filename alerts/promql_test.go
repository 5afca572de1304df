package alerts

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// The rules and the dashboard use a small, regular subset of PromQL, so the
// metric names an expression reads can be found by removing what cannot be
// a metric name (strings, label matchers, ranges, grouping clauses,
// numbers) and keeping the identifiers that are neither keywords nor
// function calls. The live test cross-checks the result against a real
// /metrics, so a name this gets wrong fails loudly rather than passing.
var (
	stringRe   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	matchersRe = regexp.MustCompile(`\{[^{}]*\}`)
	rangeRe    = regexp.MustCompile(`\[[^\[\]]*\]`)
	groupingRe = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	offsetRe   = regexp.MustCompile(`\boffset\s+-?[0-9a-z]+`)
	numberRe   = regexp.MustCompile(`(?:^|[^A-Za-z0-9_:])(?:0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)`)
	identRe    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	identChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:"
	keywords   = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "by": true, "without": true, "on": true,
		"ignoring": true, "group_left": true, "group_right": true, "offset": true, "inf": true, "nan": true,
	}
	// counterFuncRe finds the functions that are only meaningful on
	// counters, with the metric name they are applied to.
	counterFuncRe = regexp.MustCompile(`\b(rate|irate|increase|resets)\s*\(\s*([A-Za-z_:][A-Za-z0-9_:]*)`)
	// rangeUseRe finds every range selector or subquery.
	rangeUseRe = regexp.MustCompile(`\[([^\[\]]*)\]`)
)

// metricNames returns the metric names expr selects, sorted and unique. A
// selector with no metric name ({__name__=~...}) is an error: nothing could
// check what it reads.
func metricNames(expr string) ([]string, error) {
	s := stringRe.ReplaceAllString(expr, `""`)
	for _, loc := range matchersRe.FindAllStringIndex(s, -1) {
		before := strings.TrimRight(s[:loc[0]], " \t\n")
		if before == "" || !strings.ContainsAny(before[len(before)-1:], identChars) {
			return nil, fmt.Errorf("selector without a metric name at offset %d of %q", loc[0], expr)
		}
	}
	s = matchersRe.ReplaceAllString(s, " ")
	for prev := ""; prev != s; {
		prev = s
		s = rangeRe.ReplaceAllString(s, " ")
	}
	s = groupingRe.ReplaceAllString(s, " ")
	s = offsetRe.ReplaceAllString(s, " ")
	s = numberRe.ReplaceAllStringFunc(s, func(m string) string {
		if m[0] < '0' || m[0] > '9' {
			return m[:1] + " " // the character before the number
		}
		return " "
	})
	seen := map[string]bool{}
	for _, loc := range identRe.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if keywords[name] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		seen[name] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// histogramFamily maps a classic histogram's series name to its family.
func histogramFamily(name string) (string, bool) {
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if strings.HasSuffix(name, suffix) {
			return strings.TrimSuffix(name, suffix), true
		}
	}
	return "", false
}
