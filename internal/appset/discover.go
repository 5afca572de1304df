package appset

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// RunDiscovery finds Gunicorn masters in /proc every discovery interval and
// follows the error log of each one it finds; masters that start later are
// picked up by the next pass. ready is closed after the first pass and the
// first /proc sample of every master it found (or at once when discovery
// is off). It returns when ctx is done.
func (m *Manager) RunDiscovery(ctx context.Context, cfg *config.Config, ready chan<- struct{}) {
	enabled := cfg.DiscoveryEnabled()
	if !enabled && len(m.PidfileApps()) == 0 {
		close(ready)
		m.logger.Info("discovery off: following only the configured apps", "apps", len(cfg.Apps))
		return
	}
	if !enabled {
		m.logger.Info("discovery off: looking up only the masters of apps configured by pidfile")
	}
	fs, err := procinfo.NewFS(cfg.Discovery.ProcPath)
	if err != nil {
		close(ready)
		m.logger.Error("discovery disabled: cannot read the proc filesystem", "proc_path", cfg.Discovery.ProcPath, "err", err)
		return
	}
	m.containers = newContainerDiscovery(cfg)
	reported := map[string]string{} // master key -> what was last said about it
	// One Discoverer for the life of the loop: it keeps what a pass read
	// from a master's command line before setproctitle overwrote it, so the
	// timeout (and its source) and the notes stay those of that pass.
	d := &discovery.Discoverer{}
	m.discoverOnce(d, fs, reported, enabled)
	// Ready means the scrapes are true: until its first /proc sample an
	// app would show reflex_proc_up 0 and no gunicorn_workers, a false
	// outage to anyone who scrapes as soon as the exporter says it is
	// ready. Waiting for one pass (milliseconds per app) is better than
	// hiding the series until then, which would make absent() alerts and
	// dashboards flap at every restart.
	m.sampleProcNow(ctx)
	close(ready)
	t := time.NewTicker(cfg.Discovery.Interval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.discoverOnce(d, fs, reported, enabled)
		}
	}
}

// discoverOnce runs one pass. It logs what it found and what it could not
// find once per change, not on every pass. With follow false it only
// resolves configured apps that named a pidfile but no error log.
func (m *Manager) discoverOnce(d *discovery.Discoverer, fs procinfo.FS, reported map[string]string, follow bool) {
	masters, err := d.Discover(fs)
	if err != nil && len(masters) == 0 {
		m.logger.Warn("discovery pass failed", "err", err)
		return
	}
	m.resolvePidfileApps(masters, reported)
	m.checkDeploys(masters, follow)
	if !follow {
		return
	}
	if len(masters) == 0 && reported[""] != "none" {
		reported[""] = "none"
		m.logger.Info("discovery found no running Gunicorn master yet; looking again every interval")
	}
	live := map[string]bool{}
	for _, ms := range masters {
		key := ms.Name
		said := ms.ErrorLog + "|" + ms.AccessLog
		if reported[key] != said {
			reported[key] = said
			reported[""] = ""
			m.logger.Info("discovered Gunicorn master",
				"app", ms.Name, "pid", ms.Identity.PID, "name_source", ms.NameSource,
				"error_log", nonEmptyOr(ms.ErrorLog, "not found"), "access_log", nonEmptyOr(ms.AccessLog, "not found"),
				"timeout", ms.Timeout, "workers", len(ms.Workers))
		}
		// Each finding is logged once per master (pid and start time), not
		// again whenever another note comes or goes: a copytruncate rotation
		// empties the logs and adds "is empty" notes on every rotation.
		master := fmt.Sprintf("%s%d.%d/", noteKeyPrefix, ms.Identity.PID, ms.Identity.StartTicks)
		live[master] = true
		for _, note := range ms.Notes {
			if _, done := reported[master+note]; !done {
				reported[master+note] = ""
				m.logger.Log(context.Background(), noteLevel(note), "discovery: "+note, "app", ms.Name, "pid", ms.Identity.PID)
			}
		}
		m.reportTimeout(ms, reported)
		if ms.ErrorLog == "" || ms.ErrorLog == "-" {
			if !m.ensureContainer(ms, reported, master) {
				m.ensureJournal(ms, reported, master)
			}
			continue
		}
		if m.proc != nil {
			app := m.appFor(ms)
			m.proc.setMaster(app, ms, m.configuredTimeout(app))
		}
		m.Ensure(sharedFile(Spec{Name: ms.Name, Source: SourceDiscovery, ErrorLog: ms.ErrorLog,
			AccessLog: ms.AccessLog, AccessLogFormat: ms.AccessLogFormat, Routes: config.Routes{MaxRoutes: config.DefaultMaxRoutes}}))
	}
	for k := range reported {
		if rest, ok := strings.CutPrefix(k, noteKeyPrefix); ok {
			if id, _, _ := strings.Cut(rest, "/"); !live[noteKeyPrefix+id+"/"] {
				delete(reported, k) // the master is gone
			}
		}
	}
}

// noteKeyPrefix marks the keys of reported that record a logged note.
const noteKeyPrefix = "note/"

// noteLevel is WARN for a note that asks the user to act (set a field, run
// with other rights) without a condition, INFO for the rest: what was
// read, assumed harmlessly or worked around ("log paths taken from open
// files", "set ... if it differs").
func noteLevel(note string) slog.Level {
	if (strings.Contains(note, "set apps[]") && !strings.Contains(note, " if ")) || strings.Contains(note, "run as") {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// reportTimeout says once per master that its timeout is assumed, unless
// the config sets it (then the assumption is not made).
func (m *Manager) reportTimeout(ms discovery.Master, reported map[string]string) {
	if ms.TimeoutNote == "" || m.configuredTimeout(m.appFor(ms)) > 0 {
		return
	}
	key := fmt.Sprintf("timeout/%d/%d", ms.Identity.PID, ms.Identity.StartTicks)
	if reported[key] != "" {
		return
	}
	if len(reported) > 4096 { // masters come and go: forget old ones
		for k := range reported {
			if strings.HasPrefix(k, "timeout/") {
				delete(reported, k)
			}
		}
	}
	reported[key] = ms.TimeoutNote
	m.logger.Warn("discovery: "+ms.TimeoutNote, "app", ms.Name, "pid", ms.Identity.PID)
}

func nonEmptyOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// resolvePidfileApps finds the error log of configured apps that gave only a
// pidfile, from the discovered master with that pid.
func (m *Manager) resolvePidfileApps(masters []discovery.Master, reported map[string]string) {
	for name, pidfile := range m.PidfileApps() {
		pid, err := procinfo.ReadPidfile(pidfile)
		var found *discovery.Master
		for i := range masters {
			if err == nil && masters[i].Identity.PID == pid {
				found = &masters[i]
			}
		}
		said := "pidfile:" + pidfile
		switch {
		case err != nil:
			said += " unreadable: " + err.Error()
		case found == nil:
			said += " names no running Gunicorn master"
		case found.ErrorLog == "" || found.ErrorLog == "-":
			said += " master found, but its error log was not: " + strings.Join(found.Notes, "; ")
		default:
			m.Resolve(name, found.ErrorLog, found.AccessLog, found.AccessLogFormat)
			said = ""
		}
		if found != nil && m.proc != nil {
			m.proc.setMaster(name, *found, m.configuredTimeout(name))
		}
		if said != "" && reported["pidfile/"+name] != said {
			m.logger.Warn("cannot find the error log of a configured app from its pidfile", "app", name, "detail", said)
		}
		reported["pidfile/"+name] = said
	}
}

// appFor names the app a discovered master belongs to: a configured app
// that follows the same error log, else the discovered name.
func (m *Manager) appFor(ms discovery.Master) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, p := range m.apps {
		if p.configured.Source == SourceConfig && p.spec.ErrorLog == ms.ErrorLog {
			return name
		}
	}
	return ms.Name
}
