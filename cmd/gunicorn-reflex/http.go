package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	httppprof "net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/gunicorn-reflex/gunicorn-reflex/collector"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// serve runs the HTTP server until it fails or ctx ends, then shuts it down.
func serve(ctx context.Context, stop context.CancelFunc, handler http.Handler, f *flags, logger *slog.Logger) int {
	server := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      2 * time.Minute,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ListenAndServe(server, f.web, logger) }()
	select {
	case err := <-serveErr:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("HTTP server failed", "err", err)
			stop()
			return 1
		}
	case <-ctx.Done():
		logger.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdownCtx)
	}
	return 0
}

func (d *daemon) routes(reg *prometheus.Registry) {
	opts := promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(d.logger.Handler(), slog.LevelError),
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          reg,
		EnableOpenMetrics: true,
	}
	var inFlight chan struct{}
	if d.flags.maxRequests > 0 {
		inFlight = make(chan struct{}, d.flags.maxRequests)
	}
	d.mux.HandleFunc(d.flags.telemetryPath, func(w http.ResponseWriter, r *http.Request) {
		if inFlight != nil {
			select {
			case inFlight <- struct{}{}:
				defer func() { <-inFlight }()
			default:
				http.Error(w, "too many concurrent scrapes", http.StatusServiceUnavailable)
				return
			}
		}
		// Database queries run under the scrape's own deadline, so a hung
		// server makes a scrape report up 0 in time instead of timing out.
		offset := time.Duration(d.scrapeOffset.Load())
		timeout := collector.ScrapeDeadline(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), offset, defaultDBTimeout)
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		per := prometheus.NewRegistry()
		per.MustRegister(d.exporter.Bind(ctx))
		promhttp.HandlerFor(prometheus.Gatherers{reg, per}, opts).ServeHTTP(w, r)
	})
	d.mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Healthy.")
	})
	d.mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-d.ready:
			fmt.Fprintln(w, "Ready.")
		default:
			http.Error(w, "Not ready: first discovery pass and /proc sample still running.", http.StatusServiceUnavailable)
		}
	})
	d.mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "This endpoint requires a POST request.", http.StatusMethodNotAllowed)
			return
		}
		if err := d.reload(); err != nil {
			http.Error(w, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded.")
	})
	d.mux.HandleFunc("/api/v1/events", d.serveEvents)
	d.incidentRoutes()
	if d.flags.enablePprof {
		registerPprof(d.mux)
	}
	if d.flags.telemetryPath != "/" {
		// The toolkit's page links the pprof endpoints unless told not to;
		// they exist only with --web.enable-pprof.
		profiling := "false"
		if d.flags.enablePprof {
			profiling = "true"
		}
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        programName,
			Description: "Gunicorn worker lifecycle, request latency, live worker state and the database side, for Prometheus",
			Version:     version.Info(),
			Profiling:   profiling,
			Links: []web.LandingLinks{
				{Address: d.flags.telemetryPath, Text: "Metrics"},
				{Address: "/api/v1/events", Text: "Event timeline", Description: "recent lifecycle, worker-state and database events (JSON)"},
				{Address: incidentsAPI, Text: "Incidents", Description: "incidents with their verdict, evidence and remediation decisions (JSON)"},
				{Address: "/-/healthy", Text: "Health"},
				{Address: "/-/ready", Text: "Readiness"},
			},
		})
		if err != nil {
			d.logger.Error("landing page", "err", err)
		} else {
			d.mux.Handle("/", landing)
		}
	}
}

// serveEvents returns the timeline as JSON: ?app=NAME&limit=N&kind=K.
func (d *daemon) serveEvents(w http.ResponseWriter, r *http.Request) {
	q := timeline.Query{App: r.URL.Query().Get("app"), Kinds: r.URL.Query()["kind"], Limit: 500}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100000 {
			http.Error(w, "limit must be an integer between 1 and 100000", http.StatusBadRequest)
			return
		}
		q.Limit = n
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	events := d.timeline.Select(q)
	if events == nil {
		events = []timeline.Event{} // [] rather than null, so `jq '.events[]'` works on none
	}
	_ = enc.Encode(map[string]any{"events": events})
}

// registerPprof serves the Go runtime's profiles on mux (never on
// http.DefaultServeMux, which this program does not serve): the index under
// /debug/pprof/ also serves the named profiles (heap, goroutine, ...).
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
}
