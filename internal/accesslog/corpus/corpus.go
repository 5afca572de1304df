// Package corpus generates synthetic Gunicorn access logs for benchmarks and
// load tests: Gunicorn's default access_log_format followed by " %(D)s",
// with realistic client addresses, methods, paths with ids, query strings,
// referers, user agents (some with escaped quotes), a status mix that
// includes handle_error lines, and skewed durations. Lines average about
// 178 bytes, so 2,000,000 of them make about 357 MB, the size of the ingest
// benchmark.
//
// The output depends only on the arguments: the generator uses its own
// integer-only random number generator, so a given seed gives byte-identical
// output on every platform and Go version.
package corpus

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"time"
)

// Format is the access_log_format of the generated lines: Gunicorn's default
// plus the request time in microseconds.
const Format = `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s`

// start is the %(t)s of the first generated line; lines then advance by
// about 20 ms each (one-second resolution, as Gunicorn writes it).
var start = time.Date(2026, time.November, 24, 0, 0, 0, 0, time.UTC)

// rng is SplitMix64: tiny, fast, and fully specified, unlike math/rand
// whose derived methods may change between Go releases.
type rng struct{ s uint64 }

func (r *rng) u64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a value in [0, n) for n > 0 (Lemire's multiply-shift; the
// bias is negligible for these sizes).
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.u64(), uint64(n))
	return int(hi)
}

// skewed returns a value in [0, n) biased towards 0 (roughly log-uniform).
func (r *rng) skewed(n int) int { return r.intn(r.intn(n) + 1) }

// pick returns an index into weights, chosen proportionally.
func (r *rng) pick(weights []int, total int) int {
	x := r.intn(total)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

type weighted[T any] struct {
	items   []T
	weights []int
	total   int
}

func newWeighted[T any](pairs ...any) weighted[T] {
	var w weighted[T]
	for i := 0; i < len(pairs); i += 2 {
		w.items = append(w.items, pairs[i].(T))
		w.weights = append(w.weights, pairs[i+1].(int))
		w.total += pairs[i+1].(int)
	}
	return w
}

func (w *weighted[T]) pick(r *rng) T { return w.items[r.pick(w.weights, w.total)] }

var (
	methods = newWeighted[string](
		"GET", 780, "POST", 120, "PUT", 30, "DELETE", 20, "PATCH", 20, "HEAD", 20, "OPTIONS", 10)
	protos = newWeighted[string]("HTTP/1.1", 95, "HTTP/1.0", 5)
	users  = newWeighted[string]("-", 970, "alice", 15, "bob.smith", 10, "svc-deploy", 4, "ops team", 1)
	// Raw user agents; quotes are escaped on output the way Gunicorn does.
	agents = newWeighted[string](
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 232,
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", 75,
		"Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0", 60,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", 50,
		"curl/7.88.1", 90,
		"python-requests/2.32.3", 120,
		"Go-http-client/1.1", 80,
		"kube-probe/1.31", 90,
		"okhttp/4.12.0", 40,
		"Prometheus/2.55.1", 30,
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 20,
		`Mozilla/5.0 (compatible; "SiteAuditBot" 3.2; +https://audit.example/bot)`, 10,
		`Apache-HttpClient/4.5.14 (Java/17.0.9) "internal"`, 10,
		"-", 90,
	)
	referers = newWeighted[string](
		"-", 700,
		"https://www.example.com/", 80,
		"https://app.example.com/dashboard", 80,
		"https://app.example.com/orders?status=open&page=2", 60,
		"https://www.google.com/", 60,
		`https://app.example.com/search?q="red shoes"`, 20,
	)
	queries = newWeighted[string](
		"", 750,
		"page=", 80,
		"page=&per_page=50", 50,
		"q=&sort=desc", 40,
		"utm_source=newsletter&utm_medium=email&utm_campaign=", 30,
		"ts=", 30,
		"include=items,customer&fields[order]=id,total", 20,
	)
	words = []string{"shoes", "red", "jacket", "laptop", "usb-c", "coffee", "garden", "lamp", "desk", "books"}
)

// Path templates: fixed endpoints first (each is one distinct path), then
// shapes with ids, which make every further path distinct.
var fixedPaths = []string{
	"/", "/health", "/healthz", "/metrics", "/login", "/logout", "/api/v1/users/me",
	"/api/v1/search", "/favicon.ico", "/robots.txt", "/api/v1/orders", "/api/v1/products",
}

func templatedPath(dst []byte, k int, r *rng) []byte {
	id := strconv.Itoa(k)
	switch k % 9 {
	case 0:
		return append(append(dst, "/api/v1/users/"...), id...)
	case 1:
		return append(append(append(dst, "/api/v1/users/"...), id...), "/orders"...)
	case 2:
		dst = append(append(dst, "/api/v1/orders/"...), id...)
		dst = append(dst, "/items/"...)
		return strconv.AppendInt(dst, int64(r.intn(40)+1), 10)
	case 3:
		return append(append(dst, "/api/v2/products/"...), id...)
	case 4:
		dst = append(dst, "/static/js/chunk-"...)
		dst = strconv.AppendUint(dst, uint64(k)*2654435761%(1<<32), 16)
		return append(dst, ".js"...)
	case 5:
		dst = append(append(dst, "/images/products/"...), id...)
		return append(dst, "/thumb_320x240.jpg"...)
	case 6:
		dst = append(dst, "/api/v1/sessions/"...)
		h := uint64(k)*0x9e3779b97f4a7c15 + 12345
		dst = strconv.AppendUint(dst, h>>32, 16)
		dst = append(dst, '-')
		return strconv.AppendUint(dst, uint64(k), 16) // k keeps it distinct
	case 7:
		return append(append(dst, "/accounts/"...), id...)
	default:
		dst = append(append(dst, "/api/v1/invoices/"...), id...)
		return append(dst, "/pdf"...)
	}
}

// Mix chooses the request paths of a corpus.
type Mix int

const (
	// MixDefault is the benchmark corpus: 12 fixed endpoints and 9 shapes
	// with ids, which collapse into 29 routes.
	MixDefault Mix = iota
	// MixSite is a web site as a route table meets it: the 46 route
	// templates of SiteRoutes, about a quarter of the paths numbered or hashed
	// asset files (/static/img/43380.png, /static/css/app.93266.css,
	// /static/js/vendor-BfG7c2Xa.js), API routes far heavier than any
	// single asset.
	MixSite
)

// ParseMix returns the Mix named by s: "default" or "site".
func ParseMix(s string) (Mix, error) {
	switch s {
	case "default", "":
		return MixDefault, nil
	case "site":
		return MixSite, nil
	}
	return 0, fmt.Errorf("corpus: unknown mix %q (want default or site)", s)
}

// siteTemplate is one route of MixSite: the template a route table should
// reduce its paths to, how often paths of it are drawn, and how path k of it
// is written (k makes each path distinct).
type siteTemplate struct {
	route  string
	weight int
	path   func(dst []byte, k int) []byte
}

func fixed(p string) func([]byte, int) []byte {
	return func(dst []byte, _ int) []byte { return append(dst, p...) }
}

// idPath writes prefix, k in decimal, suffix.
func idPath(prefix, suffix string) func([]byte, int) []byte {
	return func(dst []byte, k int) []byte {
		dst = strconv.AppendInt(append(dst, prefix...), int64(k), 10)
		return append(dst, suffix...)
	}
}

// hexPath writes prefix, a hex hash of k of the given width, suffix.
func hexPath(prefix string, width int, suffix string) func([]byte, int) []byte {
	return func(dst []byte, k int) []byte {
		h := (uint64(k)*0x9e3779b97f4a7c15 + 0x1234567) >> (64 - 4*width)
		// The first digit is 1-9: no leading zero to drop, and a digit, so
		// that it is a hash and not a word.
		h = h&^(0xf<<(4*(width-1))) | uint64(1+k%9)<<(4*(width-1))
		dst = strconv.AppendUint(append(dst, prefix...), h, 16)
		return append(dst, suffix...)
	}
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// b64Path writes prefix, an 8-character base64url-like hash of k (Vite's
// asset names) with an upper-case and a lower-case letter and a digit,
// suffix. Two k may give the same name; MixSite promises no exact count.
func b64Path(prefix, suffix string) func([]byte, int) []byte {
	return func(dst []byte, k int) []byte {
		dst = append(dst, prefix...)
		h := uint64(k)*0xd1b54a32d192ed03 + 99
		dst = append(dst, b64url[h%26], b64url[26+(h>>5)%26], b64url[52+(h>>10)%10])
		for i := 0; i < 5; i++ {
			dst = append(dst, b64url[(h>>(15+6*i))%62])
		}
		return append(dst, suffix...)
	}
}

// SiteRoutes returns the 46 route templates of MixSite, in the order of the
// generator's table: a route table that normalises MixSite perfectly ends up
// with exactly these.
func SiteRoutes() []string {
	out := make([]string, len(site))
	for i, t := range site {
		out[i] = t.route
	}
	return out
}

// site is MixSite's table: fixed endpoints first (each path of them is the
// same), then templates with ids. Weights are per path drawn; fixed
// endpoints also get the skew of the path pool towards its first entries.
var site = []siteTemplate{
	{"/", 0, fixed("/")},
	{"/health", 0, fixed("/health")},
	{"/healthz", 0, fixed("/healthz")},
	{"/metrics", 0, fixed("/metrics")},
	{"/login", 0, fixed("/login")},
	{"/logout", 0, fixed("/logout")},
	{"/api/v1/users/me", 0, fixed("/api/v1/users/me")},
	{"/api/v1/search", 0, fixed("/api/v1/search")},
	{"/favicon.ico", 0, fixed("/favicon.ico")},
	{"/robots.txt", 0, fixed("/robots.txt")},
	{"/api/v1/orders", 0, fixed("/api/v1/orders")},
	{"/api/v1/products", 0, fixed("/api/v1/products")},
	{"/api/v1/cart", 0, fixed("/api/v1/cart")},
	{"/sitemap.xml", 0, fixed("/sitemap.xml")},

	{"/api/v1/users/:id", 60, idPath("/api/v1/users/", "")},
	{"/api/v1/users/:id/orders", 40, idPath("/api/v1/users/", "/orders")},
	{"/api/v1/users/:id/avatar", 15, idPath("/api/v1/users/", "/avatar")},
	{"/api/v1/orders/:id", 50, idPath("/api/v1/orders/", "")},
	{"/api/v1/orders/:id/items/:id", 30, func(dst []byte, k int) []byte {
		return strconv.AppendInt(idPath("/api/v1/orders/", "/items/")(dst, k), int64(k%40+1), 10)
	}},
	{"/api/v1/orders/:id/refunds", 6, idPath("/api/v1/orders/", "/refunds")},
	{"/api/v2/products/:id", 80, idPath("/api/v2/products/", "")},
	{"/api/v2/products/:id/reviews", 25, idPath("/api/v2/products/", "/reviews")},
	{"/api/v1/products/:id/stock", 20, idPath("/api/v1/products/", "/stock")},
	{"/api/v1/categories/:id/products", 20, idPath("/api/v1/categories/", "/products")},
	{"/api/v1/sessions/:id", 25, hexPath("/api/v1/sessions/", 16, "")},
	{"/accounts/:id", 15, idPath("/accounts/", "")},
	{"/accounts/:id/settings", 5, idPath("/accounts/", "/settings")},
	{"/api/v1/invoices/:id/pdf", 8, idPath("/api/v1/invoices/", "/pdf")},
	{"/api/v1/shipments/:id/track", 10, idPath("/api/v1/shipments/", "/track")},
	{"/api/v1/webhooks/:id/deliveries", 3, idPath("/api/v1/webhooks/", "/deliveries")},
	{"/api/v1/notifications/:id/read", 8, idPath("/api/v1/notifications/", "/read")},
	{"/api/v1/events/:id", 6, idPath("/api/v1/events/", "")},
	{"/api/v1/files/:id/download", 4, func(dst []byte, k int) []byte {
		dst = append(dst, "/api/v1/files/"...)
		dst = fmt.Appendf(dst, "%08x-%04x-4%03x-a%03x-%012x", uint32(k)*2654435761, k&0xffff, k&0xfff, (k>>3)&0xfff, uint64(k)*0x9e3779b97f4a7c15>>16)
		return append(dst, "/download"...)
	}},
	{"/static/img/:id.png", 30, idPath("/static/img/", ".png")},
	{"/static/img/thumbs/:id_thumb.jpg", 15, idPath("/static/img/thumbs/", "_thumb.jpg")},
	{"/static/css/app.:id.css", 12, idPath("/static/css/app.", ".css")},
	{"/static/css/vendor.:id.css", 6, hexPath("/static/css/vendor.", 6, ".css")},
	{"/static/js/chunk-:id.js", 20, hexPath("/static/js/chunk-", 8, ".js")},
	{"/static/js/app.:id.js", 10, hexPath("/static/js/app.", 10, ".js")},
	{"/static/js/vendor-:id.js", 8, b64Path("/static/js/vendor-", ".js")},
	{"/static/fonts/inter-:id.woff2", 5, hexPath("/static/fonts/inter-", 7, ".woff2")},
	{"/media/products/:id/:id.jpg", 25, func(dst []byte, k int) []byte {
		return append(strconv.AppendInt(idPath("/media/products/", "/")(dst, k/7), int64(k), 10), ".jpg"...)
	}},
	{"/media/avatars/:id.webp", 10, idPath("/media/avatars/", ".webp")},
	{"/images/products/:id/thumb_320x240.jpg", 12, idPath("/images/products/", "/thumb_320x240.jpg")},
	{"/downloads/report-:id.pdf", 3, idPath("/downloads/report-", ".pdf")},
	{"/api/v1/coupons/:id/redeem", 4, idPath("/api/v1/coupons/", "/redeem")},
}

// siteFixed is the number of fixed endpoints at the start of site.
var siteFixed, siteTotal = func() (int, int) {
	n, total := 0, 0
	for _, t := range site {
		if t.weight == 0 {
			n++
		}
		total += t.weight
	}
	return n, total
}()

// sitePath returns path k of MixSite: the fixed endpoints for the first k,
// then a template drawn by weight (from k alone, so the pool is the same
// for every seed) with k as its id.
func sitePath(dst []byte, k int) []byte {
	if k < siteFixed {
		return site[k].path(dst, k)
	}
	r := &rng{s: uint64(k) * 0xd1b54a32d192ed03}
	x := r.intn(siteTotal)
	for _, t := range site[siteFixed:] {
		if x < t.weight {
			return t.path(dst, k)
		}
		x -= t.weight
	}
	return site[len(site)-1].path(dst, k)
}

type status struct {
	code      int
	errHandle bool // a handle_error line: 0 bytes, "-" agent and referer
}

var statuses = newWeighted[status](
	status{200, false}, 8000,
	status{201, false}, 250,
	status{204, false}, 150,
	status{301, false}, 60,
	status{302, false}, 120,
	status{304, false}, 400,
	status{400, false}, 120,
	status{400, true}, 30,
	status{401, false}, 100,
	status{403, false}, 50,
	status{404, false}, 400,
	status{429, false}, 30,
	status{500, false}, 20,
	status{500, true}, 30,
	status{502, false}, 15,
	status{503, false}, 15,
)

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func appendTime(dst []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	dst = append(dst, '[')
	dst = append2(dst, d)
	dst = append(dst, '/')
	dst = append(dst, months[mo-1]...)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(y), 10)
	dst = append(dst, ':')
	dst = append2(dst, h)
	dst = append(dst, ':')
	dst = append2(dst, mi)
	dst = append(dst, ':')
	dst = append2(dst, s)
	return append(dst, " +0000]"...)
}

func append2(dst []byte, v int) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }

// appendEscaped writes s the way Gunicorn's SafeAtoms does: '"' becomes
// `\"`, nothing else changes.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return dst
}

// Generate writes n lines in Format to w with the MixDefault paths. The same
// (n, seed, distinctPaths) always produce the same bytes. Exactly
// min(n, distinctPaths) distinct %(r)s paths (query strings excluded) occur,
// spread over the whole output, with a skew towards the first paths of the
// pool.
func Generate(w io.Writer, n int, seed int64, distinctPaths int) error {
	return GenerateMix(w, n, seed, distinctPaths, MixDefault)
}

// GenerateMix is Generate with the paths of mix. For MixSite, at most
// min(n, distinctPaths) distinct paths occur (the 14 fixed endpoints can
// only occur once each).
func GenerateMix(w io.Writer, n int, seed int64, distinctPaths int, mix Mix) error {
	if mix != MixDefault && mix != MixSite {
		return fmt.Errorf("corpus: unknown mix %d", mix)
	}
	if n < 0 {
		return errors.New("corpus: negative line count")
	}
	if distinctPaths < 1 {
		return fmt.Errorf("corpus: distinctPaths must be at least 1, got %d", distinctPaths)
	}
	r := &rng{s: uint64(seed) ^ 0x6a09e667f3bcc908}
	bw := bufio.NewWriterSize(w, 1<<16)

	// Path pool: paths[k] is built lazily and cached.
	pool := make([][]byte, distinctPaths)
	pathOf := func(k int) []byte {
		if pool[k] == nil {
			if mix == MixSite {
				pool[k] = sitePath(nil, k)
			} else if k < len(fixedPaths) {
				pool[k] = []byte(fixedPaths[k])
			} else {
				pr := &rng{s: uint64(k) * 0xd1b54a32d192ed03}
				pool[k] = templatedPath(nil, k, pr)
			}
		}
		return pool[k]
	}
	// Coverage: unseen paths are handed out in a shuffled order, at a rate
	// that guarantees every one appears by the end.
	order := make([]int32, distinctPaths)
	for i := range order {
		order[i] = int32(i)
	}
	for i := len(order) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		order[i], order[j] = order[j], order[i]
	}
	seen := make([]bool, distinctPaths)
	nextUnseen, unseen := 0, distinctPaths

	// A pool of clients: proxies and direct clients.
	clients := make([]string, 400)
	for i := range clients {
		switch {
		case i < 4:
			clients[i] = "127.0.0.1"
		case i < 40:
			clients[i] = fmt.Sprintf("10.0.%d.%d", r.intn(8), r.intn(254)+1)
		default:
			clients[i] = fmt.Sprintf("%d.%d.%d.%d", r.intn(200)+11, r.intn(256), r.intn(256), r.intn(254)+1)
		}
	}

	var (
		line    = make([]byte, 0, 1024)
		nowMS   int64
		lastSec int64 = -1
		tsBuf   []byte
	)
	for i := 0; i < n; i++ {
		// Time: about 50 lines per second.
		nowMS += int64(r.intn(40))
		if sec := nowMS / 1000; sec != lastSec {
			lastSec = sec
			tsBuf = appendTime(tsBuf[:0], start.Add(time.Duration(sec)*time.Second))
		}

		// Path.
		var k int
		remaining := n - i
		if unseen > 0 && (unseen >= remaining || r.intn(remaining) < unseen*2) {
			for seen[order[nextUnseen]] {
				nextUnseen++
			}
			k = int(order[nextUnseen])
		} else {
			k = r.skewed(distinctPaths)
		}
		if !seen[k] {
			seen[k] = true
			unseen--
		}
		path := pathOf(k)

		st := statuses.pick(r)
		method := methods.pick(r)
		if st.code == 201 {
			method = "POST"
		}
		var size int
		switch {
		case st.errHandle || st.code == 204 || st.code == 304 || method == "OPTIONS":
			size = 0
		case st.code >= 300:
			size = 100 + r.intn(400)
		case len(path) > 8 && string(path[:8]) == "/static/" || len(path) > 8 && string(path[:8]) == "/images/":
			size = 2000 + r.skewed(400000)
		default:
			size = 20 + r.skewed(30000)
		}
		referer, agent := "-", "-"
		if !st.errHandle {
			referer, agent = referers.pick(r), agents.pick(r)
		}
		var durUS int
		switch {
		case st.errHandle:
			durUS = 600 + r.intn(900)
		case k < 4: // /, /health, /healthz, /metrics
			durUS = 150 + r.intn(1500)
		default:
			// Product of four uniforms: median about 40 ms, up to 1.5 s,
			// plus a rare slow tail of up to 12 s.
			durUS = 800 + r.intn(r.intn(r.skewed(1_500_000)+1)+1) + r.intn(3000)
			if r.intn(1000) < 5 {
				durUS += r.intn(12_000_000)
			}
		}

		line = line[:0]
		line = append(line, clients[r.skewed(len(clients))]...)
		line = append(line, " - "...)
		line = appendEscaped(line, users.pick(r))
		line = append(line, ' ')
		line = append(line, tsBuf...)
		line = append(line, ` "`...)
		line = append(line, method...)
		line = append(line, ' ')
		line = appendEscaped(line, string(path))
		if q := queries.pick(r); q != "" {
			line = append(line, '?')
			line = appendQuery(line, q, r)
		}
		line = append(line, ' ')
		line = append(line, protos.pick(r)...)
		line = append(line, `" `...)
		line = strconv.AppendInt(line, int64(st.code), 10)
		line = append(line, ' ')
		line = strconv.AppendInt(line, int64(size), 10)
		line = append(line, ` "`...)
		line = appendEscaped(line, referer)
		line = append(line, `" "`...)
		line = appendEscaped(line, agent)
		line = append(line, `" `...)
		line = strconv.AppendInt(line, int64(durUS), 10)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("corpus: write: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("corpus: write: %w", err)
	}
	return nil
}

// appendQuery fills the '=' holes of a query template ("page=&x=1") with
// generated values where the template leaves them empty.
func appendQuery(dst []byte, q string, r *rng) []byte {
	for i := 0; i < len(q); i++ {
		dst = append(dst, q[i])
		if q[i] == '=' && (i+1 == len(q) || q[i+1] == '&') {
			switch {
			case i >= 1 && q[i-1] == 'q':
				dst = append(dst, words[r.intn(len(words))]...)
			case i >= 2 && q[i-2:i] == "ts":
				dst = strconv.AppendInt(dst, 1795500000+int64(r.intn(100000)), 10)
			case i >= 8 && q[i-8:i] == "campaign":
				dst = append(dst, "winter-sale-"...)
				dst = strconv.AppendInt(dst, int64(r.intn(30)), 10)
			default:
				dst = strconv.AppendInt(dst, int64(r.intn(200)+1), 10)
			}
		}
	}
	return dst
}
