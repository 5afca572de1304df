// Package appset owns the set of Gunicorn apps gunicorn-reflex watches and
// the per-app pipelines that feed its state: log follower → error-log
// parser → lifecycle tracker → event timeline. Apps come from the config
// file and, when enabled, from /proc discovery; Apply reconciles the set
// after a config reload without losing the counters of apps that stay.
package appset

import (
	"context"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accessstats"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/journal"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/lifecycle"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// Source says where an app came from.
type Source string

// Sources of apps.
const (
	SourceConfig    Source = "config"
	SourceDiscovery Source = "discovery"
	// SourceStdin is the app whose output is piped into gunicorn-reflex.
	SourceStdin Source = "stdin"
)

// MaxApps bounds how many apps one exporter follows, so a host running
// hundreds of short-lived masters cannot grow memory or series without end.
const MaxApps = 64

// Snapshot is a consistent copy of one app's state for a scrape.
type Snapshot struct {
	App          string
	Source       Source
	ErrorLogPath string
	Lifecycle    lifecycle.Counts
	ErrorLog     follower.Stats
	HasErrorLog  bool
	// ErrorLogSource and AccessLogSource say what carries each log.
	ErrorLogSource  linesource.Kind
	AccessLogSource linesource.Kind
	// Access is nil when the app has no access log to follow.
	Access    *accessstats.Stats
	AccessLog follower.Stats
	// OtherLines counts lines of a source carrying both logs that were
	// neither (an app's own output on stdout); they are dropped.
	OtherLines uint64
	// Journal is the journal reader's own state when the journal carries
	// the logs, else nil.
	Journal *journal.Stats
	// Proc is the latest live worker state from /proc.
	Proc ProcState
}

// Spec is what an app pipeline needs; it is built from config or discovery.
type Spec struct {
	Name            string
	Source          Source
	ErrorLog        string
	AccessLog       string
	AccessLogFormat string
	Routes          config.Routes
	// Pidfile names the master of a configured app; when ErrorLog is empty
	// the discovery pass fills it from that master's arguments and files.
	Pidfile string
	// Timeout is the configured --timeout; 0 = as read from the master.
	Timeout time.Duration
	// Output, when its Kind is set, is one source carrying both logs (a
	// container's log, a journal unit, stdin): the error log comes from it,
	// and the access log too when AccessLog is "-". ErrorLog then only
	// describes where Gunicorn writes ("-").
	Output Output
}

// Output names a source that carries an app's stdout and stderr.
type Output struct {
	Kind linesource.Kind
	// Path is the log file of a container (docker, cri).
	Path string
	// Unit is the systemd unit whose journal carries the logs (journal).
	Unit string
	// Reader is the input of a stdin app.
	Reader *linesource.Reader
}

// Manager runs one pipeline per app.
type Manager struct {
	logger   *slog.Logger
	timeline *timeline.Timeline
	now      func() time.Time

	mu      sync.Mutex
	logs    config.Logs
	apps    map[string]*pipeline
	ctx     context.Context
	wg      sync.WaitGroup
	refused map[string]bool
	proc    *procTracker // nil until EnableProc
	// overlays are apps[] entries with only a name and a timeout: the
	// timeout of the discovered app of that name.
	overlays map[string]time.Duration
	// containers is where discovery finds container logs (RunDiscovery).
	containers containerDiscovery

	deployOnce sync.Once
	deploy     *deployWatch // deploy markers, see deploys()
}

// EnableProc turns on live worker state from /proc (masters come from
// discovery and pidfiles). Call it before Start.
func (m *Manager) EnableProc(fs procinfo.FS) {
	m.proc = newProcTracker(fs, m.timeline, m.logger)
}

// New returns a manager; call Start before Apply/Ensure.
func New(logger *slog.Logger, tl *timeline.Timeline) *Manager {
	return &Manager{logger: logger, timeline: tl, now: time.Now, apps: map[string]*pipeline{}, refused: map[string]bool{}}
}

// Start binds the manager to ctx: every pipeline stops when ctx is done.
func (m *Manager) Start(ctx context.Context) {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	if m.proc != nil {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.runProcSampler(ctx)
		}()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.runBacklogSampler(ctx)
		}()
	}
}

// Wait blocks until every pipeline has stopped (after ctx is cancelled).
func (m *Manager) Wait() { m.wg.Wait() }

// Apply makes the configured apps exactly cfg.Apps, leaving discovered apps
// alone. Apps whose spec is unchanged keep their pipeline and counters.
func (m *Manager) Apply(cfg *config.Config) {
	m.mu.Lock()
	defer m.mu.Unlock()
	logsChanged := m.logs != cfg.Logs
	m.logs = cfg.Logs
	want := map[string]Spec{}
	m.overlays = map[string]time.Duration{}
	markers := map[string]string{}
	for _, a := range cfg.Apps {
		if a.DeployMarker != "" {
			markers[a.Name] = a.DeployMarker
		}
		if a.Overlay() {
			m.overlays[a.Name] = a.Timeout.D()
			if m.proc != nil {
				m.proc.setTimeout(a.Name, a.Timeout.D())
			}
			continue
		}
		spec := Spec{Name: a.Name, Source: SourceConfig, ErrorLog: a.ErrorLog, Pidfile: a.Pidfile, Timeout: a.Timeout.D(),
			AccessLog: a.AccessLog, AccessLogFormat: a.AccessLogFormat, Routes: a.Routes}
		if a.JournalUnit != "" {
			spec.ErrorLog, spec.Output = "-", Output{Kind: linesource.KindJournal, Unit: a.JournalUnit}
		} else if out, ok := configuredOutput(a); ok {
			spec.ErrorLog, spec.AccessLog, spec.AccessLogFormat, spec.Output = "-", "-", a.ContainerLog.AccessLogFormat, out
		}
		want[a.Name] = sharedFile(spec)
	}
	m.deploys().setMarkers(markers)
	for name, p := range m.apps {
		spec, keep := want[name]
		if p.spec.Source == SourceConfig && !keep {
			m.logger.Info("app removed from config; no longer followed", "app", name)
			m.stopLocked(name)
			continue
		}
		if keep && (!reflect.DeepEqual(spec, p.configured) || logsChanged) {
			m.stopLocked(name)
		}
	}
	for _, name := range sortedKeys(want) {
		if _, ok := m.apps[name]; !ok {
			m.startLocked(want[name], want[name])
		}
	}
}

// PidfileApps lists configured apps that name their master by pidfile:
// name -> pidfile. Their master gives their /proc state and, when the
// config names no error log, their error log.
func (m *Manager) PidfileApps() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for name, p := range m.apps {
		if p.configured.Source == SourceConfig && p.configured.Pidfile != "" {
			out[name] = p.configured.Pidfile
		}
	}
	return out
}

// Resolve sets the error log of a configured app that named only a
// pidfile, as found on its running master.
func (m *Manager) Resolve(name, errorLog, accessLog, accessLogFormat string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.apps[name]
	if !ok || p.configured.ErrorLog != "" || p.spec.ErrorLog == errorLog {
		return
	}
	configured := p.configured
	effective := configured
	effective.ErrorLog = errorLog
	if effective.AccessLog == "" {
		effective.AccessLog, effective.AccessLogFormat = accessLog, accessLogFormat
	}
	m.stopLocked(name)
	m.startLocked(effective, configured)
}

// Ensure adds or updates a discovered app. A configured app of the same name
// wins: discovery never overrides what a person wrote down.
func (m *Manager) Ensure(spec Spec) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.apps[spec.Name]; ok {
		if p.spec.Source == SourceConfig || reflect.DeepEqual(p.currentSpec(), spec) {
			return
		}
		if gainsAccessLog(p.currentSpec(), spec) {
			if err := p.attachAccess(spec, m.logs); err != nil {
				m.logger.Error("cannot follow the access log found later", "app", spec.Name, "err", err)
			} else {
				m.logger.Info("following the access log found later", "app", spec.Name, "access_log", spec.AccessLog)
			}
			return
		}
		m.logger.Info("discovered app changed its error log", "app", spec.Name, "old", p.spec.ErrorLog, "new", spec.ErrorLog)
		m.stopLocked(spec.Name)
	}
	if len(m.apps) >= MaxApps {
		if !m.refused[spec.Name] {
			m.refused[spec.Name] = true
			m.logger.Warn("too many apps; not following this one", "app", spec.Name, "max_apps", MaxApps)
		}
		return
	}
	m.startLocked(spec, spec)
}

// Names lists the followed apps, sorted.
func (m *Manager) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.apps)
}

// Snapshot copies every app's state, sorted by app name.
func (m *Manager) Snapshot() []Snapshot {
	m.mu.Lock()
	ps := make([]*pipeline, 0, len(m.apps))
	for _, name := range sortedKeys(m.apps) {
		ps = append(ps, m.apps[name])
	}
	m.mu.Unlock()
	out := make([]Snapshot, 0, len(ps))
	for _, p := range ps {
		s := p.snapshot()
		if m.proc != nil {
			s.Proc = m.proc.state(s.App)
		}
		out = append(out, s)
	}
	return out
}

// startLocked runs a pipeline for spec; configured is the spec as the
// config file (or discovery) gave it, before any resolution.
func (m *Manager) startLocked(spec, configured Spec) {
	if m.ctx == nil {
		panic("appset: Start must be called before Apply or Ensure")
	}
	p, err := newPipeline(spec, m.logs, m.logger.With("app", spec.Name), m.timeline, m.now)
	if err == nil && m.proc != nil {
		proc, app := m.proc, spec.Name
		p.onSIGKILL = func(f lifecycle.Fact) { proc.judgeOOM(app, f) }
	}
	if err != nil {
		m.logger.Error("cannot follow app", "app", spec.Name, "err", err)
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	p.cancel = cancel
	p.configured = configured
	m.apps[spec.Name] = p
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		p.run(ctx)
	}()
	m.logger.Info("following app", "app", spec.Name, "app_source", string(spec.Source),
		"error_log", nonEmptyOr(spec.ErrorLog, "not known yet: looking it up from the pidfile"),
		"access_log", nonEmptyOr(spec.AccessLog, "none"))
}

func (m *Manager) stopLocked(name string) {
	if p, ok := m.apps[name]; ok {
		p.cancel()
		delete(m.apps, name)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// configuredTimeout is the --timeout the config gives an app (in its own
// entry or in a by-name entry), 0 if none.
func (m *Manager) configuredTimeout(app string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.apps[app]; ok && p.configured.Timeout > 0 {
		return p.configured.Timeout
	}
	return m.overlays[app]
}

// gainsAccessLog reports whether next is cur plus an access log cur lacked.
func gainsAccessLog(cur, next Spec) bool {
	if cur.AccessLog != "" || next.AccessLog == "" {
		return false
	}
	cur.AccessLog, cur.AccessLogFormat = next.AccessLog, next.AccessLogFormat
	return reflect.DeepEqual(cur, next)
}
