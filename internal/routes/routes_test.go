package routes

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNormalize(t *testing.T) {
	for path, want := range map[string]string{
		"":                   "/",
		"/":                  "/",
		"/ok":                "/ok",
		"/users/42":          "/users/:id",
		"/users/42/orders/7": "/users/:id/orders/:id",
		"/item/550e8400-e29b-41d4-a716-446655440000":       "/item/:id",
		"/commit/9fceb02d0ae598e95dc970b74767f19372d61af8": "/commit/:id",
		"/blob/deadbeef12":            "/blob/:id",
		"/s/AbCdEfGhIjKlMnOpQrSt1234": "/s/:id",
		"/static/app.css":             "/static/app.css",
		"/api/v2/users":               "/api/v2/users",
		"/deadbeef":                   "/deadbeef", // hex but no digit: a word
		"/trailing/":                  "/trailing/",
		"/a//b":                       "/a//b",
		"/weird/caf\xc3\xa9":          "/weird/caf\xc3\xa9",
		// Numbered and hashed file names (issue 9 item 4).
		"/static/img/43380.png":           "/static/img/:id.png",
		"/static/css/app.93266.css":       "/static/css/app.:id.css",
		"/static/css/vendor.3f9a2c.css":   "/static/css/vendor.:id.css",
		"/static/js/chunk-1136bf0e.js":    "/static/js/chunk-:id.js",
		"/static/js/index-BfG7c2Xa.js":    "/static/js/index-:id.js",
		"/static/img/thumbs/12_thumb.jpg": "/static/img/thumbs/:id_thumb.jpg",
		"/downloads/report-2024.pdf":      "/downloads/report-:id.pdf",
		"/media/products/4/301.jpg":       "/media/products/:id/:id.jpg",
		// Real words stay, hex-looking ones and ones with digits included.
		"/static/css/facade.css":          "/static/css/facade.css",
		"/static/decade-added.txt":        "/static/decade-added.txt",
		"/images/thumb_320x240.jpg":       "/images/thumb_320x240.jpg",
		"/static/fonts/inter-latin.woff2": "/static/fonts/inter-latin.woff2",
		"/video/h264.mp4":                 "/video/h264.mp4",
		"/2fa/setup":                      "/2fa/setup",
		"/static/js/jquery.min.js":        "/static/js/jquery.min.js",
		"/api/v1/oauth2/token":            "/api/v1/oauth2/token",
		"/static/Background-Image.png":    "/static/Background-Image.png",
	} {
		require.Equal(t, want, string(Normalize(nil, []byte(path))), "path %q", path)
	}
}

func TestRulesFirstThenDefault(t *testing.T) {
	r, err := ParseRule(`/shop/[^/]+/cart`, "/shop/:shop/cart")
	require.NoError(t, err)
	tb := NewTable([]Rule{r}, 10)
	require.Equal(t, "/shop/:shop/cart", tb.Name(tb.Index([]byte("/shop/acme/cart"))))
	require.Equal(t, "/shop/acme", tb.Name(tb.Index([]byte("/shop/acme"))))
	require.Equal(t, "/users/:id", tb.Name(tb.Index([]byte("/users/1"))))
	require.Equal(t, tb.Index([]byte("/users/1")), tb.Index([]byte("/users/2")), "ids collapse to one route")
	_, err = ParseRule(`(`, "/x")
	require.Error(t, err)
}

// 10,000 distinct raw paths never make more routes than the cap; the rest
// is counted in Other.
func TestCapHolds(t *testing.T) {
	tb := NewTable(nil, 100)
	for i := 0; i < 10000; i++ {
		tb.Index([]byte(fmt.Sprintf("/section%d/item/%d", i, i)))
	}
	require.Equal(t, 101, tb.Len(), "100 routes plus other")
	require.Equal(t, uint64(10000-100), tb.Overflow())
}

func TestIndexDoesNotAllocateForKnownPaths(t *testing.T) {
	tb := NewTable(nil, 100)
	paths := [][]byte{[]byte("/users/42"), []byte("/ok"), []byte("/item/9/detail")}
	for _, p := range paths {
		tb.Index(p)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, p := range paths {
			tb.Index(p)
		}
	})
	require.Zero(t, allocs)
}

func BenchmarkIndexCached(b *testing.B) {
	tb := NewTable(nil, 100)
	p := []byte("/api/v1/users/123456/orders")
	tb.Index(p)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tb.Index(p)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "/users/42", "/a//b", "x", "/%2F", "/550e8400-e29b-41d4-a716-446655440000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		out := Normalize(nil, []byte(path))
		require.NotEmpty(t, out)
		require.Equal(t, byte('/'), out[0])
		// Normalising a template again changes nothing.
		require.Equal(t, string(out), string(Normalize(nil, out)))
	})
}

// Past the cap the heaviest routes take the slots from the first ones seen
// (issue 9 item 4: first come, first served kept rare routes and put busy
// endpoints in Other for good).
func TestHeavyRoutesTakeSlotsFromFirstSeen(t *testing.T) {
	tb := NewTable(nil, 10)
	for i := range 10 {
		tb.Index(fmt.Appendf(nil, "/rare%d", i))
	}
	require.Equal(t, 11, tb.Len())
	for i := range 20000 {
		tb.Index(fmt.Appendf(nil, "/busy%d/item/%d", i%10, i)) // ten routes, every path new
	}
	got := map[string]bool{}
	for i := 1; i < tb.Len(); i++ {
		got[tb.Name(i)] = true
	}
	for i := range 10 {
		require.True(t, got[fmt.Sprintf("/busy%d/item/:id", i)], "busy route %d holds a slot", i)
	}
	require.Equal(t, 11, tb.Len(), "still bounded")
	require.Equal(t, uint64(10), tb.Evictions())
	require.Less(t, tb.Overflow(), uint64(20000/10), "most busy requests got their route")

	// A cached path of an evicted route now lands in Other, and the slot it
	// had changed generation.
	require.Zero(t, tb.Index([]byte("/rare0")))
}

// Counts decay, so routes that were busy once give their slots to the
// routes busy now, and a route whose count is within a factor of two of the
// weakest slot does not evict it (no trading a slot back and forth).
func TestRankingFollowsRecentTraffic(t *testing.T) {
	tb := NewTable(nil, 5)
	for i := range 50000 {
		tb.Index(fmt.Appendf(nil, "/old%d", i%5))
	}
	gens := make([]uint32, 6)
	for i := 1; i < 6; i++ {
		gens[i] = tb.Gen(i)
	}
	// As busy as the old routes were: nothing changes at first ...
	for i := range 20000 {
		tb.Index(fmt.Appendf(nil, "/new%d", i%5))
	}
	require.Zero(t, tb.Evictions(), "not twice as heavy as the weakest slot yet")
	// ... but once the old routes' counts have decayed, the new ones win.
	for i := range 4 * DecayEvery {
		tb.Index(fmt.Appendf(nil, "/new%d", i%5))
	}
	for i := 1; i < 6; i++ {
		require.Contains(t, tb.Name(i), "/new", "slot %d", i)
		require.NotEqual(t, gens[i], tb.Gen(i), "slot %d changed hands", i)
	}
	require.Equal(t, uint64(5), tb.Evictions())
}

// An adversarial stream of distinct routes (nothing to collapse) never
// evicts anything: no route gets the sketch count a slot needs.
func TestDistinctRoutesEvictNothing(t *testing.T) {
	tb := NewTable(nil, 100)
	for i := range 100000 {
		tb.Index(fmt.Appendf(nil, "/section%d", i))
	}
	require.Equal(t, 101, tb.Len())
	require.Zero(t, tb.Evictions())
	require.Equal(t, uint64(100000-100), tb.Overflow())
}

func TestIndexDoesNotAllocatePastTheCap(t *testing.T) {
	tb := NewTable(nil, 2)
	paths := [][]byte{[]byte("/a"), []byte("/b"), []byte("/c/1"), []byte("/d/2")}
	for range 100 {
		for _, p := range paths {
			tb.Index(p)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, p := range paths {
			tb.Index(p)
		}
	})
	require.Zero(t, allocs)
}

func BenchmarkIndexOther(b *testing.B) {
	tb := NewTable(nil, 1)
	tb.Index([]byte("/first"))
	p := []byte("/api/v1/users/123456/orders")
	tb.Index(p)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tb.Index(p)
	}
}

// Past the path cache, paths of routes without a slot are normalised on
// every request without allocating, and such a route can still win a slot.
func TestPastThePathCache(t *testing.T) {
	tb := NewTable(nil, 1)
	tb.Index([]byte("/first"))
	for i := range MaxPathCache {
		tb.Index(fmt.Appendf(nil, "/filler%d", i))
	}
	p := []byte("/busy/42")
	require.Zero(t, testing.AllocsPerRun(100, func() { tb.Index(p) }))
	for range 10000 {
		tb.Index(p)
	}
	require.Equal(t, "/busy/:id", tb.Name(1), "the busy route took the slot")
	require.Equal(t, 1, tb.Index(p))
}
