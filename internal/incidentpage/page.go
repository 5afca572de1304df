package incidentpage

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Incident is what the pages show of one incident: the engine's model,
// taken as plain data so the templates do not depend on the engine.
type Incident struct {
	ID    string
	App   string
	State string // "open" or "closed"
	// OpenedAt and ClosedAt (zero while open).
	OpenedAt, ClosedAt time.Time
	Cause              string  // the verdict, one of the closed set
	Confidence         float64 // 0..1
	// Summary is the verdict in one sentence; Action what a person
	// should do ("" when the verdict gives nothing to do).
	Summary, Action string
	// Trigger is what opened the incident (a WORKER TIMEOUT, an alert,
	// ...), as the engine names it.
	Trigger   string
	Evidence  []Evidence
	Decisions []Decision
	// Causes is the verdict's history, oldest first, the last being the
	// current verdict; CausesDropped counts the entries after the first
	// that the engine's cap left out.
	Causes        []CauseSpan
	CausesDropped int
}

// CauseSpan is one verdict the incident held and when.
type CauseSpan struct {
	Cause      string
	Confidence float64
	Summary    string
	// From and Until (zero while it is the open incident's verdict).
	From, Until time.Time
}

// Evidence is one item the verdict rests on.
type Evidence struct {
	Time time.Time // zero when the item has no time of its own
	Kind string
	Text string
	// Decisive marks the items that decided the verdict.
	Decisive bool
}

// Decision is one remediation decision taken during the incident.
type Decision struct {
	Time    time.Time
	Action  string
	Outcome string
	Reason  string
	// Cause is the verdict the decision was taken under ("" unknown).
	Cause string
}

// Marker is a vertical line on the chart: a deploy, a remediation
// decision or a change of the verdict.
type Marker struct {
	Time  time.Time
	Kind  string // MarkerDeploy, MarkerDecision or MarkerVerdict
	Label string
}

// Marker kinds.
const (
	MarkerDeploy   = "deploy"
	MarkerDecision = "decision"
	MarkerVerdict  = "verdict_change"
)

// Source is where the pages read incidents (the incident engine).
type Source interface {
	// Incidents returns the incidents matching app and state ("" = any),
	// newest first, at most limit.
	Incidents(app, state string, limit int) []Incident
	// Incident returns one incident by id.
	Incident(id string) (Incident, bool)
}

// PageOptions configure the pages. Zero values mean the documented
// defaults.
type PageOptions struct {
	// Incidents is required.
	Incidents Source
	// Series holds the chart's numbers; nil draws no chart.
	Series *Series
	// Markers returns the deploy markers (and any other vertical lines)
	// of app in [from, to]; nil means none beyond the incident's own
	// decisions.
	Markers func(app string, from, to time.Time) []Marker
	// Lead is how much before the opening the chart starts; zero means
	// 5 minutes. Tail is how much after the closing it goes on (an open
	// incident's chart ends now); zero means 2 minutes.
	Lead, Tail time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger for template failures; nil discards.
	Logger *slog.Logger
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Pages serves /incidents, /incidents/{id} and the static files they use.
type Pages struct {
	opts   PageOptions
	tmpl   *template.Template
	static http.Handler
}

// MaxListLimit bounds ?limit= on the list page.
const MaxListLimit = 1000

// NewPages parses the embedded templates.
func NewPages(opts PageOptions) (*Pages, error) {
	if opts.Incidents == nil {
		return nil, fmt.Errorf("incidentpage: no incident source")
	}
	if opts.Lead <= 0 {
		opts.Lead = 5 * time.Minute
	}
	if opts.Tail <= 0 {
		opts.Tail = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("incidentpage: templates: %w", err)
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("incidentpage: static files: %w", err)
	}
	return &Pages{opts: opts, tmpl: tmpl, static: http.StripPrefix("/incidents/static/", http.FileServerFS(sub))}, nil
}

// Register adds the pages to mux.
func (p *Pages) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /incidents", p.serveList)
	mux.HandleFunc("GET /incidents/{id}", p.serveIncident)
	mux.Handle("GET /incidents/static/", p.static)
}

// securityHeaders: the pages run only their own script and styles, so a
// string from a log line that slipped past escaping could still not load
// or run anything.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

type listData struct {
	Incidents  []Incident
	App, State string
	Limit      int
	Apps       []string
	Now        time.Time
}

func (p *Pages) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := listData{App: q.Get("app"), State: q.Get("state"), Limit: 50, Now: p.opts.Now()}
	if d.State != "" && d.State != "open" && d.State != "closed" {
		http.Error(w, fmt.Sprintf("state must be open or closed, not %q", d.State), http.StatusBadRequest)
		return
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxListLimit {
			http.Error(w, fmt.Sprintf("limit must be an integer between 1 and %d", MaxListLimit), http.StatusBadRequest)
			return
		}
		d.Limit = n
	}
	d.Incidents = p.opts.Incidents.Incidents(d.App, d.State, d.Limit)
	if p.opts.Series != nil {
		d.Apps = p.opts.Series.Apps()
	}
	p.render(w, "list.html", d)
}

type incidentData struct {
	Incident
	Now        time.Time
	From, To   time.Time
	Chart      chartData
	HasChart   bool
	HasDB      bool
	Points     []Point
	Markers    []Marker
	Decisive   []Evidence
	Supporting []Evidence
	// History is the verdict history as listed, when the cause changed.
	History []historyItem
}

// historyItem is one line of the verdict history: a cause, or a note of
// how many the cap left out (Dropped > 0).
type historyItem struct {
	CauseSpan
	Current bool
	Dropped int
}

// historyOf lists the verdict history when there is one to tell (more
// than one cause), with the cap's gap where it is: after the first.
func historyOf(inc Incident) []historyItem {
	if len(inc.Causes) < 2 {
		return nil
	}
	var out []historyItem
	for i, c := range inc.Causes {
		out = append(out, historyItem{CauseSpan: c, Current: i == len(inc.Causes)-1})
		if i == 0 && inc.CausesDropped > 0 {
			out = append(out, historyItem{Dropped: inc.CausesDropped})
		}
	}
	return out
}

func (p *Pages) serveIncident(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	inc, ok := p.opts.Incidents.Incident(id)
	if !ok {
		http.Error(w, fmt.Sprintf("no incident %q (it may have been dropped: only the newest are kept)", id), http.StatusNotFound)
		return
	}
	now := p.opts.Now()
	d := incidentData{Incident: inc, Now: now, From: inc.OpenedAt.Add(-p.opts.Lead), To: now, History: historyOf(inc)}
	if !inc.ClosedAt.IsZero() {
		if end := inc.ClosedAt.Add(p.opts.Tail); end.Before(now) {
			d.To = end
		}
	}
	for _, e := range inc.Evidence {
		if e.Decisive {
			d.Decisive = append(d.Decisive, e)
		} else {
			d.Supporting = append(d.Supporting, e)
		}
	}
	if p.opts.Markers != nil {
		d.Markers = p.opts.Markers(inc.App, d.From, d.To)
	}
	for _, dec := range inc.Decisions {
		label := dec.Action + ": " + dec.Outcome
		if dec.Cause != "" {
			label += " under " + causeTitle(dec.Cause)
		}
		d.Markers = append(d.Markers, Marker{Time: dec.Time, Kind: MarkerDecision, Label: label})
	}
	for i, c := range inc.Causes {
		if i > 0 {
			d.Markers = append(d.Markers, Marker{Time: c.From, Kind: MarkerVerdict, Label: "now " + causeTitle(c.Cause)})
		}
	}
	slices.SortStableFunc(d.Markers, func(a, b Marker) int { return a.Time.Compare(b.Time) })
	if p.opts.Series != nil {
		d.Points = p.opts.Series.Window(inc.App, d.From, d.To)
	}
	d.Chart = newChart(inc, d.From, d.To, d.Points, d.Markers)
	d.From = time.Unix(d.Chart.From, 0)
	d.HasChart = len(d.Points) > 0
	d.HasDB = d.Chart.HasDB
	p.render(w, "incident.html", d)
}

// render executes a template into a buffer first, so a failing template
// is a clean 500 and never half a page.
func (p *Pages) render(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		p.opts.Logger.Error("incident page", "template", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	securityHeaders(w)
	_, _ = w.Write(buf.Bytes())
}

// num is a chart value: NaN (unknown) is JSON null, a gap in the line.
type num float64

// MarshalJSON implements json.Marshaler.
func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 6, 64), nil
}

// chartData is what static/chart.js draws; times are Unix seconds.
type chartData struct {
	From, To int64
	Opened   int64
	Closed   int64 // 0 while open
	T        []int64
	Series   map[string][]num
	Markers  []chartMarker
	HasDB    bool
	Cause    string
}

type chartMarker struct {
	T     int64  `json:"t"`
	Kind  string `json:"kind"`
	Label string `json:"label"`
}

// chartSeries names the series, in the order chart.js reads them.
var chartSeries = []string{"timeouts", "workers", "busy", "heartbeat_age", "latency", "timeout",
	"db_longest_active", "db_active", "db_blocked", "db_idle_in_transaction", "db_saturation", "db_pool_waiting"}

func newChart(inc Incident, from, to time.Time, points []Point, markers []Marker) chartData {
	c := chartData{From: from.Unix(), To: to.Unix(), Opened: inc.OpenedAt.Unix(), Series: map[string][]num{}, Cause: inc.Cause}
	if !inc.ClosedAt.IsZero() {
		c.Closed = inc.ClosedAt.Unix()
	}
	for _, name := range chartSeries {
		c.Series[name] = make([]num, 0, len(points))
	}
	for _, pt := range points {
		c.T = append(c.T, pt.Time.Unix())
		vals := []float64{pt.Timeouts, pt.Workers, pt.Busy, pt.HeartbeatAge, pt.Latency, pt.Timeout,
			pt.DBLongestActive, pt.DBActive, pt.DBBlocked, pt.DBIdleInTransaction, 100 * pt.DBSaturation, pt.DBPoolWaiting}
		for i, name := range chartSeries {
			c.Series[name] = append(c.Series[name], num(vals[i]))
		}
		if !math.IsNaN(pt.DBActive) {
			c.HasDB = true
		}
	}
	for _, m := range markers {
		c.Markers = append(c.Markers, chartMarker{T: m.Time.Unix(), Kind: m.Kind, Label: m.Label})
	}
	// The time axis starts where there is something to draw: a daemon
	// started a minute before the incident has no samples of the minutes
	// before that, and an empty four fifths of a chart hides the rest.
	first := c.Opened
	if len(c.T) > 0 {
		first = min(first, c.T[0])
	}
	for _, m := range c.Markers {
		first = min(first, m.T)
	}
	c.From = max(c.From, first)
	return c
}

// MarshalJSON keeps the field names chart.js reads.
func (c chartData) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		From    int64            `json:"from"`
		To      int64            `json:"to"`
		Opened  int64            `json:"opened"`
		Closed  int64            `json:"closed"`
		T       []int64          `json:"t"`
		Series  map[string][]num `json:"series"`
		Markers []chartMarker    `json:"markers"`
		HasDB   bool             `json:"has_db"`
		Cause   string           `json:"cause"`
	}{c.From, c.To, c.Opened, c.Closed, c.T, c.Series, c.Markers, c.HasDB, c.Cause})
}

var funcs = template.FuncMap{
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("15:04:05")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"percent": func(f float64) string {
		return strconv.FormatFloat(100*f, 'f', 0, 64) + "%"
	},
	"since": func(from, to time.Time) string {
		if from.IsZero() || to.IsZero() {
			return ""
		}
		return to.Sub(from).Round(time.Second).String()
	},
	"cause":      causeTitle,
	"numberRows": numberRows,
}

// numberRows renders the rows of the table of the chart's numbers. They
// are numbers and times only, nothing from outside, so they are written
// directly rather than through the template: an hour of samples is 1800
// rows, and the template's reflection cost 60 ms and 200,000 allocations
// a page.
func numberRows(points []Point, db bool) template.HTML {
	var b []byte
	cell := func(f float64) {
		b = append(b, "<td>"...)
		b = appendValue(b, f)
		b = append(b, "</td>"...)
	}
	for _, p := range points {
		b = append(b, "<tr><td>"...)
		b = p.Time.UTC().AppendFormat(b, "15:04:05")
		b = append(b, "</td>"...)
		cell(p.Timeouts)
		b = append(b, "<td>"...)
		b = appendValue(b, p.Busy)
		b = append(b, " / "...)
		b = appendValue(b, p.Workers)
		b = append(b, "</td>"...)
		cell(p.HeartbeatAge)
		cell(p.Latency)
		cell(p.Requests)
		if db {
			cell(p.DBLongestActive)
			cell(p.DBActive)
			cell(p.DBBlocked)
			cell(p.DBIdleInTransaction)
			b = append(b, "<td>"...)
			if math.IsNaN(p.DBSaturation) {
				b = append(b, "–"...)
			} else {
				b = strconv.AppendFloat(b, 100*p.DBSaturation, 'f', 0, 64)
				b = append(b, '%')
			}
			b = append(b, "</td>"...)
			cell(p.DBPoolWaiting)
		}
		b = append(b, "</tr>\n"...)
	}
	return template.HTML(b) // digits, times and fixed markup only
}

// appendValue writes a number as the table shows it: four significant
// digits, "–" when unknown.
func appendValue(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "–"...)
	}
	return strconv.AppendFloat(b, f, 'g', 4, 64)
}

// causeTitle is a verdict as people read it: "database_lock" is
// "Database lock".
func causeTitle(cause string) string {
	if cause == "" {
		return "Unknown"
	}
	s := strings.ReplaceAll(cause, "_", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}
