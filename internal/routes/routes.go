// Package routes turns raw request paths into a bounded set of route
// templates for per-route latency: configured rules first (a regular
// expression and the template it stands for), then a default normaliser
// that collapses identifiers (numbers, UUIDs, hex strings, long tokens, and
// numbered or hashed file names such as 43380.png or app.93266.css) into
// ":id".
//
// A per-app cap bounds the number of routes with their own series. Routes
// fill the free slots first come, first served; once the cap is reached the
// table keeps the heaviest routes rather than the first ones seen: requests
// of routes without a slot land in the "other" route and are counted in a
// count-min sketch by route, and a route whose (recent) count there exceeds
// twice that of the weakest slot, and stands well above the sketch's noise,
// takes that slot over. Slot counts and the sketch are halved every
// DecayEvery requests, so the ranking follows recent traffic (a count halves
// every 65,536 requests), and the factor of two keeps two routes of similar
// weight from trading a slot back and forth. A stream of distinct,
// uncollapsible routes (a scan) evicts nothing: none of them stands out.
//
// An evicted route's series is dropped, not frozen or folded into "other":
// folding its lifetime count into "other" would make rate(other) jump by
// that count, and freezing it would export a route as idle while its
// requests go to "other". If the route wins a slot again, its series starts
// again from zero after having been absent, which Prometheus's rate() and
// increase() treat as a counter reset; Evictions counts these events.
//
// The common path allocates nothing: a path seen before is a map lookup, and
// a new one is normalised into a reused buffer.
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

// DecayEvery is the number of requests after which slot counts and the
// sketch are halved.
const DecayEvery = 1 << 16

const (
	// admitFactor is how much heavier than the weakest slot a route must be
	// to take that slot over.
	admitFactor = 2
	// admitMin is the smallest sketch count that can win a slot, so that
	// a handful of requests never evicts an idle route.
	admitMin = 16
	// noiseFactor is how many times the average sketch counter a route's
	// estimate must exceed to take a slot.
	noiseFactor = 4
	// weakestEvery is how often (in requests) the weakest slot is looked
	// up again; between two looks the threshold may be a little stale.
	weakestEvery = 1024
	// Count-min sketch shape: sketchDepth rows of sketchWidth counters.
	sketchDepth = 4
	sketchWidth = 2048
)

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

// route is a route template as the path cache sees it. A route with a slot
// is the one object byRoute holds for its name; a route without one (slot
// 0) is valid only while epoch equals the table's, because every admission
// or eviction may have given its name a slot.
type route struct {
	name  string
	hash  uint64
	slot  int
	epoch uint64
}

// Table assigns route indexes for one app. It is not safe for concurrent
// use: one goroutine (the app's access-log pipeline) owns it.
type Table struct {
	rules   []Rule
	max     int
	names   []string          // slot -> route name; names[0] is Other
	slots   []*route          // slot -> route; slots[0] is nil
	counts  []uint64          // slot -> requests, halved every DecayEvery
	gens    []uint32          // slot -> generation, bumped when the slot changes hands
	byRoute map[string]*route // routes that hold a slot
	cache   map[string]*route // raw path -> route
	buf     []byte
	sketch  [sketchDepth][sketchWidth]uint32

	// scratch stands for a path that is neither cached nor holds a slot;
	// scratchName is its route name, copied when it wins a slot.
	scratch     route
	scratchName []byte

	mass      uint64 // requests counted in the sketch, halved with it
	epoch     uint64 // bumped at every admission and eviction
	tick      uint64 // requests since the last decay
	weakest   int    // slot with the smallest count, as of the last look
	threshold uint64 // sketch count needed to take the weakest slot
	overflow  uint64
	evictions uint64
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
		slots:   []*route{nil},
		counts:  []uint64{0},
		gens:    []uint32{0},
		byRoute: map[string]*route{},
		cache:   map[string]*route{},
		buf:     make([]byte, 0, 256),
		// No admission can happen before the first look at the weakest
		// slot, which tock does once the slots are full.
		threshold: ^uint64(0),
	}
}

// Index returns the route index (slot) of path, without its query string,
// and counts the request. Index 0 is Other.
func (t *Table) Index(path []byte) int {
	r, ok := t.cache[string(path)] // no allocation for the lookup
	if !ok || r.slot == 0 && r.epoch != t.epoch {
		r = t.resolve(path, ok)
	}
	t.tick++
	if t.tick&(weakestEvery-1) == 0 {
		t.tock()
	}
	if r.slot != 0 {
		t.counts[r.slot]++
		return r.slot
	}
	t.overflow++
	// The second test keeps noise out: with many light routes every
	// sketch counter grows, so a route must also stand well above the
	// average counter to be heavy rather than merely collided with.
	if est := t.add(r.hash); est >= t.threshold && est*sketchWidth > noiseFactor*t.mass {
		return t.admit(r)
	}
	return 0
}

// resolve finds the route of a path not cached (or cached without a slot
// before the last admission or eviction) and caches it.
func (t *Table) resolve(path []byte, cached bool) *route {
	var name []byte
	for _, rule := range t.rules {
		if rule.Match.Match(path) {
			name = []byte(rule.Route)
			break
		}
	}
	if name == nil {
		t.buf = Normalize(t.buf[:0], path)
		name = t.buf
	}
	cache := cached || len(t.cache) < MaxPathCache
	r, ok := t.byRoute[string(name)]
	switch {
	case ok:
	case len(t.names)-1 < t.max:
		r = &route{name: string(name), hash: fnv1a(name)}
		t.assign(r, len(t.names), 0)
		if len(t.names)-1 == t.max {
			t.tock() // full from now on: find the weakest slot
		}
	case cache:
		r = &route{name: string(name), hash: fnv1a(name), epoch: t.epoch}
	default:
		// Neither cached nor holding a slot: a reused object, so that the
		// paths past the cache allocate nothing.
		t.scratch = route{hash: fnv1a(name), epoch: t.epoch}
		t.scratchName = append(t.scratchName[:0], name...)
		return &t.scratch
	}
	if cache {
		t.cache[string(path)] = r
	}
	return r
}

// assign gives slot i (a new one when i == len(names)) to r, starting its
// count at n.
func (t *Table) assign(r *route, i int, n uint64) {
	if i == len(t.names) {
		t.names = append(t.names, "")
		t.slots = append(t.slots, nil)
		t.counts = append(t.counts, 0)
		t.gens = append(t.gens, 0)
	}
	t.names[i], t.slots[i], t.counts[i] = r.name, r, n
	t.gens[i]++
	r.slot = i
	t.byRoute[r.name] = r
	t.epoch++
}

// admit gives r the weakest slot and returns it. The route there goes back
// to Other.
func (t *Table) admit(r *route) int {
	i := t.weakest
	if i == 0 {
		return 0
	}
	if r == &t.scratch {
		r = &route{name: string(t.scratchName), hash: t.scratch.hash}
	}
	old := t.slots[i]
	old.slot, old.epoch = 0, t.epoch+1
	delete(t.byRoute, old.name)
	t.evictions++
	// The newcomer starts with its sketch count, so that it is not at
	// once the weakest slot again.
	t.assign(r, i, t.estimate(r.hash))
	t.tock()
	return i
}

// tock finds the weakest slot again, and halves every count once per
// DecayEvery requests.
func (t *Table) tock() {
	if t.tick >= DecayEvery {
		t.tick = 0
		for i := range t.counts {
			t.counts[i] /= 2
		}
		for d := range t.sketch {
			for w := range t.sketch[d] {
				t.sketch[d][w] /= 2
			}
		}
		t.mass /= 2
	}
	if len(t.names)-1 < t.max {
		t.weakest, t.threshold = 0, ^uint64(0) // free slots are taken on first sight
		return
	}
	t.weakest = 1
	for i := 2; i < len(t.counts); i++ {
		if t.counts[i] < t.counts[t.weakest] {
			t.weakest = i
		}
	}
	t.threshold = max(admitFactor*t.counts[t.weakest], admitMin)
}

// add counts one request of the route with hash h in the sketch and returns
// its estimate. Conservative update: only the smallest counters grow, which
// keeps the over-estimate of light routes small.
func (t *Table) add(h uint64) uint64 {
	est := t.estimate(h)
	t.mass++
	for d := range t.sketch {
		c := &t.sketch[d][cell(h, d)]
		if uint64(*c) == est && *c < ^uint32(0) {
			*c++
		}
	}
	return est + 1
}

func (t *Table) estimate(h uint64) uint64 {
	est := uint64(^uint32(0))
	for d := range t.sketch {
		est = min(est, uint64(t.sketch[d][cell(h, d)]))
	}
	return est
}

// fnv1a hashes a route name. A fixed hash rather than a seeded one keeps the
// table's choices reproducible from run to run.
func fnv1a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// cell picks row d's counter for hash h: each row uses other bits of h.
func cell(h uint64, d int) int {
	return int((h >> (d * 11)) % sketchWidth)
}

// Name returns the route of an index.
func (t *Table) Name(i int) string { return t.names[i] }

// Gen returns the generation of slot i: it changes when the slot is given to
// another route, so a caller keeping per-slot state knows to start afresh.
func (t *Table) Gen(i int) uint32 { return t.gens[i] }

// Len is the number of routes, Other included.
func (t *Table) Len() int { return len(t.names) }

// Overflow counts requests that fell into Other because of the cap.
func (t *Table) Overflow() uint64 { return t.overflow }

// Evictions counts routes that lost their slot to a heavier one.
func (t *Table) Evictions() uint64 { return t.evictions }

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

// appendTokens appends seg with its numbered and hash-like tokens
// collapsed: build tools and uploads name files "chunk-1136bf0e.js",
// "app.93266.css", "index-BfG7c2Xa.js" or "43380.png", and each such name
// would otherwise be a route of its own.
func appendTokens(dst, seg []byte) []byte {
	for len(seg) > 0 {
		end := bytes.IndexAny(seg, "-_.")
		if end < 0 {
			end = len(seg)
		}
		if isIDToken(seg[:end]) {
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

// isIDToken reports whether a token between '-', '_' and '.' is an
// identifier: all digits; 5 or more hex characters with at least one digit
// (short content hashes: a word never has a digit); or 8 or more
// letters and digits with a digit, an upper-case and a lower-case letter
// (base64url hashes such as Vite's "BfG7c2Xa").
func isIDToken(tok []byte) bool {
	if len(tok) == 0 {
		return false
	}
	digits, hex, upper, lower := 0, 0, 0, 0
	for _, c := range tok {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f':
			hex++
			lower++
		case c >= 'A' && c <= 'F':
			hex++
			upper++
		case c >= 'g' && c <= 'z':
			lower++
		case c >= 'G' && c <= 'Z':
			upper++
		default:
			return false
		}
	}
	n := len(tok)
	switch {
	case digits == n:
		return true
	case digits > 0 && digits+hex == n && n >= 5:
		return true
	case n >= 8 && digits > 0 && upper > 0 && lower > 0:
		return true
	}
	return false
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
