// Command gunicorn-reflex exports what explains Gunicorn worker timeouts as
// Prometheus metrics: worker lifecycle from the error log, and (in later
// releases) latency, live worker state and the database's side.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/gunicorn-reflex/gunicorn-reflex/collector"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/appset"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

const programName = "gunicorn-reflex"

// defaultListenAddress: the Prometheus default-port allocation list is
// full; 9615 is held there by an unpublished work-in-progress reservation
// and no well-known exporter listens on it.
const defaultListenAddress = ":9615"

// defaultDBTimeout bounds database queries of a scrape that did not say
// its timeout (no X-Prometheus-Scrape-Timeout-Seconds: curl, a browser).
const defaultDBTimeout = 10 * time.Second

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }

// flags holds every command-line setting; flags live only in this package.
type flags struct {
	configFile    string
	configCheck   bool
	telemetryPath string
	maxRequests   int
	web           *web.FlagConfig
	log           *promslog.Config

	oneShotAccessLog  string
	oneShotFormat     string
	oneShotApp        string
	oneShotRoutes     bool
	oneShotCPUProfile string
}

func parseFlags(args []string, stdout, stderr io.Writer) (*flags, error) {
	app := kingpin.New(programName, "Exports Gunicorn worker lifecycle (timeouts, boots, exits) from its logs as Prometheus metrics.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.Terminate(nil)
	f := &flags{log: &promslog.Config{}}
	app.Flag("config.file", "YAML configuration file. Without one, Gunicorn masters are discovered from /proc.").
		StringVar(&f.configFile)
	app.Flag("config.check", "Validate --config.file and exit: 0 if valid, 1 with the field and line at fault otherwise.").
		BoolVar(&f.configCheck)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&f.telemetryPath)
	app.Flag("web.max-requests", "Maximum number of parallel scrape requests; 0 disables the limit.").Default("40").IntVar(&f.maxRequests)
	app.Flag("oneshot.access-log", "Read this access log from start to end, print its metrics to stdout and exit (no server).").
		StringVar(&f.oneShotAccessLog)
	app.Flag("oneshot.access-log-format", "Gunicorn access_log_format of --oneshot.access-log.").
		Default(accesslog.DefaultFormat).StringVar(&f.oneShotFormat)
	app.Flag("oneshot.app", "The app label for --oneshot.access-log.").Default("oneshot").StringVar(&f.oneShotApp)
	app.Flag("oneshot.routes", "Per-route latency for --oneshot.access-log.").BoolVar(&f.oneShotRoutes)
	app.Flag("oneshot.cpuprofile", "Write a CPU profile of --oneshot.access-log to this file.").Hidden().StringVar(&f.oneShotCPUProfile)
	f.web = kingpinflag.AddFlags(app, defaultListenAddress)
	promslogflag.AddFlags(app, f.log)
	app.Version(version.Print(programName))
	app.HelpFlag.Short('h')
	var exited bool
	app.Terminate(func(int) { exited = true })
	if _, err := app.Parse(args); err != nil {
		return nil, err
	}
	if exited {
		return nil, errHelpOrVersion
	}
	return f, nil
}

var errHelpOrVersion = errors.New("help or version printed")

func run(parent context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, errHelpOrVersion) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v (try --help)\n", programName, err)
		return 2
	}
	f.log.Writer = stderr
	logger := promslog.New(f.log)
	if f.oneShotAccessLog != "" {
		return oneShotAccessLog(parent, f, stdout, stderr)
	}

	cfg, err := loadConfig(f.configFile)
	if f.configCheck {
		if err != nil {
			fmt.Fprintf(stderr, "%s: invalid configuration: %v\n", programName, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: configuration OK (%d apps, discovery %s)\n", nonEmpty(f.configFile, "embedded defaults"), len(cfg.Apps), onOff(cfg.DiscoveryEnabled()))
		return 0
	}
	if err != nil {
		logger.Error("cannot load configuration", "file", f.configFile, "err", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger.Info("starting "+programName, "version", version.Info(), "build_context", version.BuildContext())
	d, err := newDaemon(ctx, f, cfg, logger)
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	defer d.wait()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = d.reload() // reload logs its own outcome
			}
		}
	}()

	server := &http.Server{
		Handler:           d.mux,
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

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

// daemon wires the components together and owns the HTTP handlers.
type daemon struct {
	flags    *flags
	logger   *slog.Logger
	apps     *appset.Manager
	timeline *timeline.Timeline
	mux      *http.ServeMux
	exporter *collector.Exporter // bound to each scrape's deadline by the /metrics handler

	reloadMu        sync.Mutex
	dbsMu           sync.Mutex
	dbs             *pgmon.Set
	scrapeOffset    atomic.Int64 // config's scrape_timeout_offset, read by every scrape
	reloadOK        prometheus.Gauge
	reloadTimestamp prometheus.Gauge
	ready           chan struct{}
}

func newDaemon(ctx context.Context, f *flags, cfg *config.Config, logger *slog.Logger) (*daemon, error) {
	d := &daemon{
		flags:    f,
		logger:   logger,
		timeline: timeline.New(cfg.Timeline.MaxEvents, cfg.Timeline.MaxAge.D()),
		mux:      http.NewServeMux(),
		ready:    make(chan struct{}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reflex_config_last_reload_successful",
			Help: "1 if the last configuration load (start, SIGHUP or POST /-/reload) succeeded.",
		}),
		reloadTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reflex_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load.",
		}),
	}
	d.reloadOK.Set(1)
	d.reloadTimestamp.SetToCurrentTime()
	d.apps = appset.New(logger, d.timeline)
	if fs, err := procinfo.NewFS(cfg.Discovery.ProcPath); err == nil {
		d.apps.EnableProc(fs)
	} else {
		logger.Warn("live worker state off: cannot read the proc filesystem", "proc_path", cfg.Discovery.ProcPath, "err", err)
	}
	d.apps.Start(ctx)
	d.apps.Apply(cfg)
	d.setDatabases(cfg)
	go d.apps.RunDiscovery(ctx, cfg, d.ready)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("reflex"),
		d.reloadOK, d.reloadTimestamp,
	)
	d.exporter = collector.NewExporter(logger, map[string]collector.Collector{
		"lifecycle": collector.NewLifecycle(d.apps),
		"logfollow": collector.NewLogFollow(d.apps),
		"access":    collector.NewAccess(d.apps),
		"proc":      collector.NewProc(d.apps),
		"timeline":  collector.NewTimeline(d.timeline),
		"postgres":  collector.NewPostgres(d.databases),
	})
	d.routes(reg)
	return d, nil
}

func (d *daemon) wait() {
	d.apps.Wait()
	d.databases().Close()
}

func (d *daemon) databases() *pgmon.Set {
	d.dbsMu.Lock()
	defer d.dbsMu.Unlock()
	return d.dbs
}

// setDatabases (re)builds the PostgreSQL and PgBouncer targets. A target
// whose DSN cannot be read is left out with a log line; the others run.
func (d *daemon) setDatabases(cfg *config.Config) {
	d.scrapeOffset.Store(int64(cfg.ScrapeTimeoutOffset.D()))
	dbs := &pgmon.Set{}
	for _, pg := range cfg.Postgres {
		dsn, err := config.ReadDSN(pg.DSNFile, pg.DSNEnv)
		if err != nil {
			d.logger.Error("PostgreSQL target left out: no DSN", "target", pg.Name, "err", err)
			continue
		}
		tc := pgmon.TargetConfig{Name: pg.Name, DSN: dsn, MaxGroups: pg.MaxGroups, QueryText: pg.QueryText,
			StatementTimeout: pg.StatementTimeout.D(), LockTimeout: pg.LockTimeout.D(), ConnectTimeout: pg.ConnectTimeout.D()}
		for _, a := range pg.AgeThresholds {
			tc.AgeThresholds = append(tc.AgeThresholds, a.D())
		}
		for _, g := range pg.AppGroups {
			tc.AppGroups = append(tc.AppGroups, pgmon.AppGroup{Match: g.Match, Group: g.Group})
		}
		t, err := pgmon.NewTarget(tc, d.logger.With("target", pg.Name))
		if err != nil {
			d.logger.Error("PostgreSQL target left out", "target", pg.Name, "err", err)
			continue
		}
		dbs.Targets = append(dbs.Targets, t)
	}
	for _, b := range cfg.PgBouncer {
		dsn, err := config.ReadDSN(b.DSNFile, b.DSNEnv)
		if err != nil {
			d.logger.Error("PgBouncer target left out: no DSN", "target", b.Name, "err", err)
			continue
		}
		bn, err := pgmon.NewBouncer(pgmon.BouncerConfig{Name: b.Name, DSN: dsn}, d.logger.With("target", b.Name))
		if err != nil {
			d.logger.Error("PgBouncer target left out", "target", b.Name, "err", err)
			continue
		}
		dbs.Bouncers = append(dbs.Bouncers, bn)
	}
	d.dbsMu.Lock()
	old := d.dbs
	d.dbs = dbs
	d.dbsMu.Unlock()
	old.Close()
	d.apps.SetBackendLinker(dbs.LinkBackend)
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
	if d.flags.telemetryPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        programName,
			Description: "Gunicorn worker lifecycle, from the logs, for Prometheus",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: d.flags.telemetryPath, Text: "Metrics"},
				{Address: "/api/v1/events", Text: "Event timeline", Description: "recent lifecycle events (JSON)"},
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
	_ = enc.Encode(map[string]any{"events": d.timeline.Select(q)})
}

// reload re-reads the config file; a bad file keeps the running config.
func (d *daemon) reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := loadConfig(d.flags.configFile)
	if err != nil {
		d.reloadOK.Set(0)
		d.logger.Error("config reload failed; keeping the running configuration", "file", d.flags.configFile, "err", err)
		return err
	}
	d.apps.Apply(cfg)
	d.setDatabases(cfg)
	d.reloadOK.Set(1)
	d.reloadTimestamp.SetToCurrentTime()
	d.logger.Info("configuration reloaded", "file", nonEmpty(d.flags.configFile, "embedded defaults"), "apps", len(cfg.Apps))
	return nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
