package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// incidentsAPI is the incidents' JSON API.
const incidentsAPI = "/api/v1/incidents"

// maxIncidentsLimit bounds ?limit= (the engine keeps fewer anyway).
const maxIncidentsLimit = 10000

// startIncidents builds the incident engine over the timeline, the apps'
// /proc state and the database targets, and runs it until ctx is done.
func (d *daemon) startIncidents(ctx context.Context, cfg *config.Config) {
	opts := incident.EngineOptions{
		Timeline:  d.timeline,
		Apps:      d.apps.Names,
		Snapshot:  d.apps.IncidentSnapshot,
		Databases: d.scrapeDatabases,
	}
	if fs, err := procinfo.NewFS(cfg.Discovery.ProcPath); err == nil {
		opts.ReadProc = fs.ReadRootFile
	}
	d.incidents = incident.NewEngine(opts)
	d.incidentsDone = make(chan struct{})
	go func() {
		defer close(d.incidentsDone)
		d.incidents.Run(ctx)
	}()
}

// incidentRoutes registers the incidents' API.
func (d *daemon) incidentRoutes() {
	d.mux.HandleFunc("GET "+incidentsAPI, d.serveIncidents)
	d.mux.HandleFunc("GET "+incidentsAPI+"/{id}", d.serveIncident)
}

// parseIncidentFilter reads ?app= ?state= ?limit=; any other parameter,
// a repeated one or a bad value is an error naming it.
func parseIncidentFilter(q url.Values) (incident.Filter, error) {
	var f incident.Filter
	for k, v := range q {
		if len(v) != 1 {
			return f, fmt.Errorf("parameter %q given %d times", k, len(v))
		}
		switch k {
		case "app":
			f.App = v[0]
		case "state":
			s, ok := incident.ParseState(v[0])
			if !ok {
				return f, fmt.Errorf("state must be open or closed, not %q", v[0])
			}
			f.State = s
		case "limit":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 1 || n > maxIncidentsLimit {
				return f, fmt.Errorf("limit must be an integer between 1 and %d, not %q", maxIncidentsLimit, v[0])
			}
			f.Limit = n
		default:
			return f, fmt.Errorf("unknown parameter %q (app, state and limit are)", k)
		}
	}
	return f, nil
}

// serveIncidents lists incidents, newest first.
func (d *daemon) serveIncidents(w http.ResponseWriter, r *http.Request) {
	f, err := parseIncidentFilter(r.URL.Query())
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	l := d.incidents.List(f)
	if l == nil {
		l = []incident.Incident{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": l})
}

// serveIncident returns one incident by id.
func (d *daemon) serveIncident(w http.ResponseWriter, r *http.Request) {
	inc, ok := d.incidents.Get(r.PathValue("id"))
	if !ok {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no incident %q (closed incidents are kept up to a bound)", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, inc)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// runExplain runs `gunicorn-reflex explain [--app NAME] [--url URL]`: the
// latest incident from the running daemon, as text. No incident is not an
// error (exit 0, a line saying so); a daemon that cannot be asked is (1).
func runExplain(ctx context.Context, f *flags, stdout, stderr io.Writer) int {
	q := url.Values{"limit": {"1"}}
	if f.explainApp != "" {
		q.Set("app", f.explainApp)
	}
	u := strings.TrimRight(f.explainURL, "/") + incidentsAPI + "?" + q.Encode()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "%s: GET %s: %s: %s\n", programName, u, resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	var out struct {
		Incidents []incident.Incident `json:"incidents"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		fmt.Fprintf(stderr, "%s: unexpected answer from %s: %v\n", programName, u, err)
		return 1
	}
	if len(out.Incidents) == 0 {
		what := "any app"
		if f.explainApp != "" {
			what = f.explainApp
		}
		fmt.Fprintf(stdout, "No incident of %s is known to the daemon at %s.\n", what, f.explainURL)
		return 0
	}
	if err := incident.WriteText(stdout, out.Incidents[0]); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 1
	}
	return 0
}
