package incidentpage

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeSource is a fixed list of incidents, newest first.
type fakeSource []Incident

func (f fakeSource) Incidents(app, state string, limit int) []Incident {
	var out []Incident
	for _, i := range f {
		if (app == "" || i.App == app) && (state == "" || i.State == state) && len(out) < limit {
			out = append(out, i)
		}
	}
	return out
}

func (f fakeSource) Incident(id string) (Incident, bool) {
	for _, i := range f {
		if i.ID == id {
			return i, true
		}
	}
	return Incident{}, false
}

// opened is when the fixture's incident opened: a lock wait behind an idle
// transaction, a deploy three minutes before, a refused scale-up.
var opened = t0.Add(5 * time.Minute)

func lockIncident() Incident {
	return Incident{
		ID: "inc-7", App: "shop", State: "closed", OpenedAt: opened, ClosedAt: opened.Add(90 * time.Second),
		Cause: "database_lock", Confidence: 0.9, Trigger: "worker_timeout",
		Summary: "Workers of shop waited on a row lock held by pid 4242, idle in transaction for 40 s.",
		Action:  "End the transaction of pid 4242 (SELECT pg_terminate_backend(4242)) and set idle_in_transaction_session_timeout.",
		Evidence: []Evidence{
			{Time: opened, Kind: "worker_timeout", Text: "WORKER TIMEOUT (pid:101)", Decisive: true},
			{Time: opened.Add(-2 * time.Second), Kind: "worker_waits_on_backend", Text: "backend 555 waits on Lock/transactionid, blocked by 4242 (idle in transaction 40s)", Decisive: true},
			{Time: opened.Add(time.Second), Kind: "traceback", Text: "app.py:42 in checkout"},
			{Kind: "note", Text: "<script>alert('x')</script> from a log line"},
		},
		Decisions: []Decision{{Time: opened.Add(30 * time.Second), Action: "scale_up", Outcome: "refused", Reason: "verdict database_lock: more workers would wait on the same lock"}},
	}
}

// lockSeries has samples every 5 s from 5 minutes before the opening to
// 2 minutes after: busy workers climb to all 4, heartbeats age past the 3 s
// timeout, two timeouts at the opening, a query blocked behind the lock.
func lockSeries() *Series {
	s := NewSeries(Options{})
	var timeouts, reqs uint64
	var lat float64
	for i := 0; i <= 7*12; i++ {
		at := t0.Add(time.Duration(i) * 5 * time.Second)
		stuck := at.After(opened.Add(-20*time.Second)) && at.Before(opened.Add(80*time.Second))
		a := AppSample{App: "shop", ProcKnown: true, Workers: 4, Busy: 1 + i%2, HeartbeatKnown: true, HeartbeatAge: 200 * time.Millisecond,
			LatencyKnown: true, Timeout: 3 * time.Second}
		db := DBSample{Known: true, Active: 2, Saturation: 0.3, LongestActive: 100 * time.Millisecond}
		if stuck {
			a.Busy, a.HeartbeatAge = 4, 2900*time.Millisecond
			db.Blocked, db.IdleInTransaction, db.LongestActive = 4, 1, 40*time.Second
			lat += 3 * 2
			reqs += 2
		} else {
			lat += 0.05 * 10
			reqs += 10
		}
		if at.Equal(opened) {
			timeouts += 2
		}
		a.Timeouts, a.Requests, a.LatencySum = timeouts, reqs, lat
		s.Observe(at, []AppSample{a}, db)
	}
	return s
}

// twoFaults is the demo's incident: workers hung on an external service,
// then, with no quiet period between, on a slow query; the receiver scaled
// up under the first verdict and refused under the second. The history
// had one more change the engine's cap left out.
func twoFaults() Incident {
	changed, closed := opened.Add(7*time.Second), opened.Add(3*time.Minute)
	slow := "Workers of shop wait on PostgreSQL backend 777, running a query for 4.0s: SELECT pg_sleep(?)."
	return Incident{
		ID: "inc-9", App: "shop", State: "closed", OpenedAt: opened, ClosedAt: closed, Trigger: "alert",
		Cause: "database_slow_query", Confidence: 0.9, Summary: slow,
		Action: "Make the query faster (EXPLAIN ANALYZE it) and set statement_timeout below the worker timeout.",
		Causes: []CauseSpan{
			{Cause: "external_call", Confidence: 0.8, From: opened, Until: changed,
				Summary: "2 stuck worker(s) of shop wait on a socket to 127.0.0.1:9999, which is not a known database."},
			{Cause: "database_slow_query", Confidence: 0.9, Summary: slow, From: changed, Until: closed},
		},
		CausesDropped: 1,
		Decisions: []Decision{
			{Time: opened.Add(3 * time.Second), Action: "scale_up", Outcome: "acted", Cause: "external_call"},
			{Time: opened.Add(20 * time.Second), Action: "scale_up", Outcome: "refused", Cause: "database_slow_query",
				Reason: "verdict_database_slow_query: incident inc-9: database_slow_query"},
		},
	}
}

func testPages(t *testing.T) *httptest.Server {
	t.Helper()
	second := Incident{ID: "inc-8", App: "api", State: "open", OpenedAt: opened.Add(time.Hour), Cause: "capacity", Confidence: 0.6,
		Summary: "All 4 workers of api busy with requests that each finish under the timeout."}
	return testServer(t, fakeSource{second, lockIncident()})
}

// testServer serves src's incidents with the lock incident's series and
// a deploy marker.
func testServer(t *testing.T, src fakeSource) *httptest.Server {
	t.Helper()
	p, err := NewPages(PageOptions{
		Incidents: src,
		Series:    lockSeries(),
		Markers: func(_ string, _, _ time.Time) []Marker {
			return []Marker{{Time: opened.Add(-3 * time.Minute), Kind: MarkerDeploy, Label: "release 2026-12-01-a (current -> releases/42)"}}
		},
		Now: func() time.Time { return opened.Add(2 * time.Hour) },
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	p.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// TestIncidentPageIsHTML reads the page as a browser without JavaScript
// would: the verdict, what to do, every evidence item, the decision and
// the numbers are in the HTML itself.
func TestIncidentPageIsHTML(t *testing.T) {
	srv := testPages(t)
	code, h, body := get(t, srv.URL+"/incidents/inc-7")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"))
	require.Contains(t, h.Get("Content-Security-Policy"), "script-src 'self'")
	inc := lockIncident()
	require.Contains(t, body, `<span class="cause" id="cause">Database lock</span>`)
	require.Contains(t, body, "(90% confidence)")
	require.Contains(t, body, "idle in transaction for 40 s.")
	require.Contains(t, body, "pg_terminate_backend(4242)")
	for _, e := range inc.Evidence[:3] {
		require.Contains(t, body, e.Text)
	}
	require.Contains(t, body, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; from a log line", "log text is escaped")
	require.NotContains(t, body, "<script>alert")
	require.Contains(t, body, "verdict database_lock: more workers would wait on the same lock")
	require.Contains(t, body, "release 2026-12-01-a (current -&gt; releases/42)")
	require.Contains(t, body, "closed <time datetime=\"2026-12-01T10:06:30Z\">2026-12-01 10:06:30 UTC</time> after 1m30s")
	require.Contains(t, body, "<noscript>", "a reader without JavaScript is told where the numbers are")
	require.Contains(t, body, `by <span class="kind">worker_timeout</span>`)
	require.NotContains(t, body, "Still open", "closed")
	// The decisive evidence comes first, under its own heading.
	require.Less(t, strings.Index(body, "What decided the verdict"), strings.Index(body, "backend 555"))
	require.Less(t, strings.Index(body, "backend 555"), strings.Index(body, "Also seen"))
	require.Less(t, strings.Index(body, "Also seen"), strings.Index(body, "app.py:42"))

	chart := chartJSON(t, body)
	// Window: 5 minutes before the opening to 2 minutes after the closing.
	require.Equal(t, opened.Add(-5*time.Minute).Unix(), chart.From)
	require.Equal(t, opened.Add(90*time.Second+2*time.Minute).Unix(), chart.To)
	require.Equal(t, opened.Unix(), chart.Opened)
	require.True(t, chart.HasDB)
	require.Len(t, chart.T, 85, "every sample from 5 minutes before the opening on (the series ends 2 minutes after it)")
	for name, vals := range chart.Series {
		require.Len(t, vals, len(chart.T), name)
	}
	require.Nil(t, chart.Series["timeouts"][0], "the first sample has no interval: null, a gap")
	var sum float64
	for _, v := range chart.Series["timeouts"][1:] {
		sum += *v
	}
	require.Equal(t, 2.0, sum)
	require.Equal(t, 30.0, *chart.Series["db_saturation"][5], "saturation is drawn in percent")
	kinds := []string{}
	for _, m := range chart.Markers {
		kinds = append(kinds, m.Kind)
	}
	sort.Strings(kinds)
	require.Equal(t, []string{MarkerDecision, MarkerDeploy}, kinds)

	// The numbers behind the chart, as a table.
	require.Contains(t, body, "Numbers behind the chart (85 samples)")
	require.Contains(t, body, "<td>10:05:00</td><td>2</td><td>4 / 4</td><td>2.9</td>")
}

// The verdict history is server-rendered: a line per cause with its span
// and confidence, the earlier ones with their summary, the cap's gap
// after the first, and each decision with the verdict it was taken under.
// An incident whose cause never changed has no such list.
func TestIncidentPageShowsVerdictHistory(t *testing.T) {
	srv := testServer(t, fakeSource{twoFaults(), lockIncident()})
	code, _, body := get(t, srv.URL+"/incidents/inc-9")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `<li><time datetime="2026-12-01T10:05:00Z">10:05:00</time>–<time datetime="2026-12-01T10:05:07Z">10:05:07</time> `+
		`<span class="cause">External call</span> <span class="confidence">(80%)</span>: 2 stuck worker(s) of shop wait on a socket to 127.0.0.1:9999, which is not a known database.</li>`)
	require.Contains(t, body, `<li class="dropped">1 more verdict(s) left out by the cap</li>`)
	require.Contains(t, body, `<li class="current"><time datetime="2026-12-01T10:05:07Z">10:05:07</time>–<time datetime="2026-12-01T10:08:00Z">10:08:00</time> `+
		`<span class="cause">Database slow query</span> <span class="confidence">(90%)</span> · the verdict above</li>`)
	require.Less(t, strings.Index(body, "External call</span>"), strings.Index(body, "left out by the cap"), "oldest first, the gap after the first")
	require.Less(t, strings.Index(body, "left out by the cap"), strings.Index(body, `class="current"`))
	require.Contains(t, body, `<td>acted</td><td class="cause">External call</td>`)
	require.Contains(t, body, `<td>refused</td><td class="cause">Database slow query</td>`)
	// The change and the decisions are lines on the chart, in time order.
	require.Contains(t, body, `<li class="marker verdict_change"><time datetime="2026-12-01T10:05:07Z">10:05:07</time> <span class="kind">verdict_change</span> now Database slow query</li>`)
	require.Less(t, strings.Index(body, "scale_up: acted under External call"), strings.Index(body, "now Database slow query"))
	require.Less(t, strings.Index(body, "now Database slow query"), strings.Index(body, "scale_up: refused under Database slow query"))
	var verdictMarkers []chartMarker
	for _, m := range chartJSON(t, body).Markers {
		if m.Kind == MarkerVerdict {
			verdictMarkers = append(verdictMarkers, m)
		}
	}
	require.Equal(t, []chartMarker{{T: opened.Add(7 * time.Second).Unix(), Kind: MarkerVerdict, Label: "now Database slow query"}}, verdictMarkers)

	_, _, body = get(t, srv.URL+"/incidents/inc-7")
	require.NotContains(t, body, `id="causes"`, "one cause, no history to tell")
	require.Contains(t, body, `<td>refused</td><td class="cause">–</td>`, "a decision with no verdict named")
}

type decodedChart struct {
	From, To, Opened, Closed int64
	T                        []int64
	Series                   map[string][]*float64
	Markers                  []chartMarker
	HasDB                    bool `json:"has_db"`
}

var chartData1 = regexp.MustCompile(`(?s)<script type="application/json" id="chart-data">(.*?)</script>`)

func chartJSON(t *testing.T, body string) decodedChart {
	t.Helper()
	m := chartData1.FindStringSubmatch(body)
	require.NotNil(t, m, "the page carries the chart's data")
	var c decodedChart
	require.NoError(t, json.Unmarshal([]byte(m[1]), &c), m[1])
	return c
}

func TestIncidentPageErrors(t *testing.T) {
	srv := testPages(t)
	code, _, body := get(t, srv.URL+"/incidents/nope")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body, `no incident "nope"`)

	for q, want := range map[string]string{
		"?state=sleeping": `state must be open or closed, not "sleeping"`,
		"?limit=0":        "limit must be an integer between 1 and 1000",
		"?limit=abc":      "limit must be an integer between 1 and 1000",
		"?limit=1001":     "limit must be an integer between 1 and 1000",
	} {
		code, _, body := get(t, srv.URL+"/incidents"+q)
		require.Equal(t, http.StatusBadRequest, code, q)
		require.Contains(t, body, want, q)
	}
}

func TestListPage(t *testing.T) {
	srv := testPages(t)
	code, _, body := get(t, srv.URL+"/incidents")
	require.Equal(t, http.StatusOK, code)
	require.Less(t, strings.Index(body, `href="/incidents/inc-8"`), strings.Index(body, `href="/incidents/inc-7"`), "newest first")
	require.Contains(t, body, "Database lock")
	require.Contains(t, body, "Capacity")
	require.Contains(t, body, "<td>1m30s</td>", "a closed incident's length")
	require.Contains(t, body, "<td>1h0m0s so far</td>", "an open one's so far")

	_, _, body = get(t, srv.URL+"/incidents?state=closed")
	require.Contains(t, body, `href="/incidents/inc-7"`)
	require.NotContains(t, body, `href="/incidents/inc-8"`)
	require.Contains(t, body, `<option value="closed" selected>`)

	_, _, body = get(t, srv.URL+"/incidents?app=nobody")
	require.Contains(t, body, "No incidents for app nobody")
}

func TestStaticFilesServedFromTheBinary(t *testing.T) {
	srv := testPages(t)
	for path, want := range map[string]string{
		"/incidents/static/uPlot.iife.min.js": "uPlot (v1.6.32)",
		"/incidents/static/uPlot.min.css":     ".uplot",
		"/incidents/static/chart.js":          "data-drawn",
		"/incidents/static/page.css":          ".verdict",
	} {
		code, _, body := get(t, srv.URL+path)
		require.Equal(t, http.StatusOK, code, path)
		require.Contains(t, body, want, path)
	}
}

func TestNumMarshalsNaNAsNull(t *testing.T) {
	b, err := json.Marshal([]num{1.5, num(math.NaN()), num(math.Inf(1)), 0})
	require.NoError(t, err)
	require.Equal(t, "[1.5,null,null,0]", string(b))
}

// TestChartStartsAtItsData: the time axis starts at the first sample,
// marker or the opening, whichever is first, never minutes of nothing
// before them.
func TestChartStartsAtItsData(t *testing.T) {
	inc := Incident{OpenedAt: opened}
	from := opened.Add(-5 * time.Minute)
	pts := []Point{{Time: opened.Add(-30 * time.Second)}, {Time: opened}}
	require.Equal(t, opened.Add(-30*time.Second).Unix(), newChart(inc, from, opened, pts, nil).From)
	require.Equal(t, opened.Add(-time.Minute).Unix(),
		newChart(inc, from, opened, pts, []Marker{{Time: opened.Add(-time.Minute)}}).From, "a deploy before the first sample is on the chart")
	require.Equal(t, opened.Unix(), newChart(inc, from, opened, nil, nil).From)
	require.Equal(t, from.Unix(), newChart(inc, from, opened, []Point{{Time: from.Add(-time.Hour)}}, nil).From, "never before the window")
}

// BenchmarkIncidentPage renders one incident page over a full hour of
// samples (1800 points), the largest chart the default Series keeps.
func BenchmarkIncidentPage(b *testing.B) {
	s := NewSeries(Options{})
	start := opened.Add(-time.Hour)
	for i := range 1800 {
		s.Observe(start.Add(time.Duration(i)*2*time.Second), []AppSample{{App: "shop", Timeouts: uint64(i / 100), ProcKnown: true, Workers: 4, Busy: i % 5,
			HeartbeatKnown: true, HeartbeatAge: time.Duration(i%30) * 100 * time.Millisecond, LatencyKnown: true, Requests: uint64(i * 10), LatencySum: float64(i)}},
			DBSample{Known: true, Active: 2, Blocked: i % 3})
	}
	inc := lockIncident()
	inc.OpenedAt, inc.ClosedAt = start.Add(5*time.Minute), opened
	p, err := NewPages(PageOptions{Incidents: fakeSource{inc}, Series: s, Lead: 5 * time.Minute, Now: func() time.Time { return opened }})
	require.NoError(b, err)
	req := httptest.NewRequest(http.MethodGet, "/incidents/inc-7", nil)
	req.SetPathValue("id", "inc-7")
	b.ReportAllocs()
	var size int
	for b.Loop() {
		w := httptest.NewRecorder()
		p.serveIncident(w, req)
		size = w.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/page")
}

// BenchmarkObserve is one sampling instant of 8 apps into full rings.
func BenchmarkObserve(b *testing.B) {
	s := NewSeries(Options{})
	apps := make([]AppSample, 8)
	for i := range apps {
		apps[i] = AppSample{App: "app" + strconv.Itoa(i), ProcKnown: true, Workers: 4, LatencyKnown: true}
	}
	at := t0
	for range 1800 {
		s.Observe(at, apps, DBSample{Known: true})
		at = at.Add(2 * time.Second)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Observe(at, apps, DBSample{Known: true})
		at = at.Add(2 * time.Second)
	}
}

// TestIncidentPageWithoutSamples: an incident older than the series (or
// an app never sampled) still shows its verdict and evidence, says why
// there is no chart, and loads no chart script.
func TestIncidentPageWithoutSamples(t *testing.T) {
	srv := testPages(t)
	code, _, body := get(t, srv.URL+"/incidents/inc-8")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "Capacity")
	require.Contains(t, body, "All 4 workers of api busy")
	require.Contains(t, body, "No samples of this app's numbers cover this incident")
	require.Contains(t, body, "Still open")
	require.NotContains(t, body, "uPlot.iife.min.js")
	require.NotContains(t, body, `id="chart-data"`)
}

// TestChartDataCannotCloseItsScript: text from logs and deploy APIs ends
// up in the chart's JSON; html/template escapes it there so it cannot
// close the script element and start one of its own.
func TestChartDataCannotCloseItsScript(t *testing.T) {
	hostile := `</script><script>alert(1)</script>`
	inc := lockIncident()
	inc.Decisions[0].Action = hostile
	p, err := NewPages(PageOptions{
		Incidents: fakeSource{inc},
		Series:    lockSeries(),
		Markers: func(_ string, _, _ time.Time) []Marker {
			return []Marker{{Time: opened, Kind: MarkerDeploy, Label: hostile}}
		},
		Now: func() time.Time { return opened.Add(time.Hour) },
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	p.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, _, body := get(t, srv.URL+"/incidents/inc-7")
	require.NotContains(t, body, "<script>alert(1)")
	chart := chartJSON(t, body)
	labels := []string{}
	for _, m := range chart.Markers {
		labels = append(labels, m.Label)
	}
	require.Contains(t, labels, hostile, "the label arrives intact for the chart to draw as text")
	require.Contains(t, labels, hostile+": refused")
}
