package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"

	"github.com/gunicorn-reflex/gunicorn-reflex/collector"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/appset"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

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
	receiver *remediation        // nil unless receiver.enabled
	rxConfig config.Receiver     // the receiver section it started with

	incidents     *incident.Engine
	incidentsDone chan struct{} // closed when the engine stopped

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
	var listenStats func() (procinfo.ListenStats, error)
	if fs, err := procinfo.NewFS(cfg.Discovery.ProcPath); err == nil {
		d.apps.EnableProc(fs)
		listenStats = fs.TCPListenStats
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
	collectors := map[string]collector.Collector{
		"lifecycle": collector.NewLifecycle(d.apps),
		"logfollow": collector.NewLogFollow(d.apps),
		"access":    collector.NewAccess(d.apps),
		"proc":      collector.NewProc(d.apps),
		"timeline":  collector.NewTimeline(d.timeline),
		"postgres":  collector.NewPostgres(d.databases),
		"netstat":   collector.NewNetstat(listenStats),
	}
	d.startIncidents(ctx, cfg)
	collectors["incidents"] = collector.NewIncidents(d.incidents)
	if err := d.startReceiver(ctx, cfg); err != nil {
		return nil, err
	}
	if d.receiver != nil {
		collectors["receiver"] = collector.NewReceiver(d.receiver.engine)
	}
	d.exporter = collector.NewExporter(logger, collectors)
	d.routes(reg)
	return d, nil
}

// scrapeDatabases is the guard's view of the database targets.
func (d *daemon) scrapeDatabases(ctx context.Context) (pgmon.SetSnapshot, error) {
	return d.databases().Scrape(ctx)
}

func (d *daemon) wait() {
	d.apps.Wait()
	d.receiver.wait()
	<-d.incidentsDone
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
	d.warnReceiverChanged(cfg)
	d.reloadOK.Set(1)
	d.reloadTimestamp.SetToCurrentTime()
	// apps counts every app followed now, discovered ones included: the
	// configured count alone said apps=0 on a host whose masters are all
	// discovered.
	d.logger.Info("configuration reloaded", "file", nonEmpty(d.flags.configFile, "embedded defaults"),
		"apps", len(d.apps.Names()), "apps_configured", len(cfg.Apps))
	return nil
}

// reloadOnSIGHUP reloads the configuration on every SIGHUP until ctx ends.
// The handler is installed before it returns, so a SIGHUP sent once the
// server answers never takes the default action (exit); the returned
// function uninstalls it.
func (d *daemon) reloadOnSIGHUP(ctx context.Context) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
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
	return func() { signal.Stop(hup) }
}
