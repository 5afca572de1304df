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
