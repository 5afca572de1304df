// Command gunicorn-reflex exports what explains Gunicorn worker timeouts as
// Prometheus metrics: the worker lifecycle from the error log, request
// latency from the access log, live worker state read from /proc, and
// PostgreSQL's and PgBouncer's side, queried at scrape time.
//
// main.go holds the flags and run; daemon.go wires the components and
// reloads the configuration; http.go serves metrics, the landing page, the
// health endpoints and the events API; remediation.go wires the
// remediation receiver, its endpoints and the `remediation` sub-commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
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
	enablePprof   bool
	web           *web.FlagConfig
	log           *promslog.Config

	oneShotAccessLog  string
	oneShotFormat     string
	oneShotApp        string
	oneShotRoutes     bool
	oneShotCPUProfile string

	// command is "" for the daemon, "explain", or the remediation sub-command
	// (status, pause, resume, reset-circuit) talking to a running daemon.
	command              string
	remediationURL       string
	remediationTokenFile string
	remediationApp       string

	// explainApp and explainURL are `explain`'s (command "explain").
	explainApp string
	explainURL string
}

func parseFlags(args []string, stdout, stderr io.Writer) (*flags, error) {
	app := kingpin.New(programName, "Exports what explains Gunicorn worker timeouts as Prometheus metrics: worker lifecycle (timeouts, boots, exits) from the error log, request latency from the access log, live worker state from /proc, and PostgreSQL and PgBouncer at scrape time.")
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
	app.Flag("web.enable-pprof", "Serve the Go runtime's profiles under /debug/pprof/ (off by default: a CPU profile costs CPU while it runs, and the endpoints are unauthenticated unless --web.config.file sets auth).").
		BoolVar(&f.enablePprof)
	app.Flag("oneshot.access-log", "Read this access log from start to end, print its metrics to stdout and exit (no server).").
		StringVar(&f.oneShotAccessLog)
	app.Flag("oneshot.access-log-format", "Gunicorn access_log_format of --oneshot.access-log.").
		Default(accesslog.DefaultFormat).StringVar(&f.oneShotFormat)
	app.Flag("oneshot.app", "The app label for --oneshot.access-log.").Default("oneshot").StringVar(&f.oneShotApp)
	app.Flag("oneshot.routes", "Per-route latency for --oneshot.access-log.").BoolVar(&f.oneShotRoutes)
	app.Flag("oneshot.cpuprofile", "Write a CPU profile of --oneshot.access-log to this file.").Hidden().StringVar(&f.oneShotCPUProfile)
	app.Command("serve", "Run the exporter (and the remediation receiver when the config enables it). The default.").Default().Hidden()
	rem := app.Command("remediation", "Talk to the running daemon's remediation receiver (its authenticated API under "+remediationAPI+").")
	rem.Flag("remediation.url", "Base URL of the running daemon.").Default("http://127.0.0.1" + defaultListenAddress).StringVar(&f.remediationURL)
	rem.Flag("remediation.token-file", "File holding the receiver's bearer token (receiver.bearer_token_file).").StringVar(&f.remediationTokenFile)
	rem.Command("status", "Show each app's remediation state: paused, circuit, desired workers, queue, last actions.")
	for _, c := range []struct{ name, help string }{
		{"pause", "Stop all remediation of APP until resume (saved: survives restarts)."},
		{"resume", "Undo pause."},
		{"reset-circuit", "Close APP's circuit after its reload/restart budget ran out; the budget starts again."},
	} {
		rem.Command(c.name, c.help).Arg("APP", "The app, as named in receiver.apps.").Required().StringVar(&f.remediationApp)
	}
	explain := app.Command("explain", "Print the latest incident (its verdict, what to do, the evidence and the remediation decisions) from the running daemon's "+incidentsAPI+".")
	explain.Flag("app", "Only this app's incidents.").StringVar(&f.explainApp)
	explain.Flag("url", "Base URL of the running daemon.").Default("http://127.0.0.1" + defaultListenAddress).StringVar(&f.explainURL)
	f.web = kingpinflag.AddFlags(app, defaultListenAddress)
	promslogflag.AddFlags(app, f.log)
	app.Version(version.Print(programName))
	app.HelpFlag.Short('h')
	var exited bool
	app.Terminate(func(int) { exited = true })
	cmd, err := app.Parse(args)
	if err != nil {
		return nil, err
	}
	if exited {
		return nil, errHelpOrVersion
	}
	if after, ok := strings.CutPrefix(cmd, "remediation "); ok {
		f.command = after
	}
	if cmd == "explain" {
		f.command = cmd
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
	if f.command == "explain" {
		return runExplain(parent, f, stdout, stderr)
	}
	if f.command != "" {
		return runRemediation(parent, f, stdout, stderr)
	}
	if f.oneShotAccessLog != "" {
		return oneShotAccessLog(parent, f, stdout, stderr)
	}

	cfg, err := loadConfig(f.configFile)
	if f.configCheck {
		if err != nil {
			fmt.Fprintf(stderr, "%s: invalid configuration: %v\n", programName, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: configuration OK (%s, discovery %s)\n", nonEmpty(f.configFile, "embedded defaults"), plural(len(cfg.Apps), "app", "apps"), onOff(cfg.DiscoveryEnabled()))
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

	defer d.reloadOnSIGHUP(ctx)()
	return serve(ctx, stop, d.mux, f, logger)
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// plural says "1 app", "0 apps", "3 apps".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
