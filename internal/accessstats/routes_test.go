package accessstats

import (
	"bufio"
	"bytes"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog/corpus"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/routes"
)

// siteCorpus is the realistic corpus: 46 route templates, 10,000
// distinct paths, numbered and hashed asset files.
func siteCorpus(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, corpus.GenerateMix(&buf, n, 1, 10000, corpus.MixSite))
	return buf.Bytes()
}

// feed observes every line and returns the number of lines.
func feed(s *Stats, data []byte) int {
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		s.ObserveLine(sc.Bytes())
		n++
	}
	return n
}

// Issue 9 item 4: with the default cap of 100, asset files took 56 slots one
// file each and 14-17% of the requests ended in route="other", whole real
// endpoints among them. Now every path collapses into its template: the 46
// templates get a series each and nothing is left in "other".
func TestSiteCorpusFitsUnderDefaultCap(t *testing.T) {
	s := newStats(t, corpus.Format, Options{Routes: true})
	n := feed(s, siteCorpus(t, 100000))
	m := gather(t, s)
	other := m[`gunicorn_http_route_request_duration_seconds_count{app="shop",route="other"}`]
	require.Less(t, other/float64(n), 0.01, "share of requests in route=other")

	want := corpus.SiteRoutes()
	var got []string
	for i := 1; i < s.table.Len(); i++ {
		got = append(got, s.table.Name(i))
	}
	slices.Sort(want)
	slices.Sort(got)
	require.Equal(t, want, got, "exactly the corpus's route templates")
	require.Zero(t, m[`reflex_http_route_evictions_total{app="shop"}`])
}

// Past the cap the heaviest routes keep the slots: with 20 slots for the 46
// templates, "other" holds little more than the 26 lightest templates'
// share, which is the best any table of 20 can do (before: 39%, with the
// first 20 routes seen kept and asset files not collapsed).
func TestSiteCorpusKeepsHeaviestRoutes(t *testing.T) {
	data := siteCorpus(t, 200000)
	s := newStats(t, corpus.Format, Options{Routes: true, MaxRoutes: 20})
	feed(s, data)

	// The best possible: exact counts per template, the 20 heaviest kept.
	p, err := accesslog.Compile(corpus.Format)
	require.NoError(t, err)
	counts := map[string]int{}
	var rec accesslog.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	routed := 0
	for sc.Scan() {
		require.NoError(t, p.Parse(sc.Bytes(), &rec))
		if rec.DurationTrusted {
			counts[string(routes.Normalize(nil, rec.Path))]++
			routed++
		}
	}
	var cs []int
	for _, c := range counts {
		cs = append(cs, c)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(cs)))
	best := 0
	for _, c := range cs[20:] {
		best += c
	}

	m := gather(t, s)
	other := m[`gunicorn_http_route_request_duration_seconds_count{app="shop",route="other"}`]
	require.Equal(t, 21.0, m[`reflex_http_routes{app="shop"}`], "bounded")
	require.InDelta(t, float64(best)/float64(routed), other/float64(routed), 0.01,
		"share in other (best possible %d of %d)", best, routed)
}

// An evicted route's series goes away and the route that took its slot
// starts from 0: it does not inherit the evicted route's counts, and the
// series count never exceeds the cap.
func TestEvictionReplacesTheSeries(t *testing.T) {
	s := newStats(t, formatD, Options{Routes: true, MaxRoutes: 1})
	s.ObserveLine([]byte(line("GET", "/rare", 200, 1000)))
	for range 5000 {
		s.ObserveLine([]byte(line("GET", "/busy/1", 200, 1000)))
	}
	m := gather(t, s)
	_, rare := m[`gunicorn_http_route_request_duration_seconds_count{app="shop",route="/rare"}`]
	require.False(t, rare, "the evicted route's series is gone")
	busy := m[`gunicorn_http_route_request_duration_seconds_count{app="shop",route="/busy/:id"}`]
	other := m[`gunicorn_http_route_request_duration_seconds_count{app="shop",route="other"}`]
	require.Positive(t, busy)
	require.Equal(t, 5000.0, busy+other, "every request of /busy is in its series or in other, none in /rare's")
	require.Equal(t, 1.0, m[`reflex_http_route_evictions_total{app="shop"}`])
	require.Equal(t, 2.0, m[`reflex_http_routes{app="shop"}`])
}
