package appset

import (
	"context"
	"strings"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// RunDiscovery finds Gunicorn masters in /proc every discovery interval and
// follows the error log of each one it finds; masters that start later are
// picked up by the next pass. ready is closed after the first pass (or at
// once when discovery is off). It returns when ctx is done.
func (m *Manager) RunDiscovery(ctx context.Context, cfg *config.Config, ready chan<- struct{}) {
	if !cfg.DiscoveryEnabled() {
		close(ready)
		m.logger.Info("discovery off: following only the configured apps", "apps", len(cfg.Apps))
		return
	}
	fs, err := procinfo.NewFS(cfg.Discovery.ProcPath)
	if err != nil {
		close(ready)
		m.logger.Error("discovery disabled: cannot read the proc filesystem", "proc_path", cfg.Discovery.ProcPath, "err", err)
		return
	}
	reported := map[string]string{} // master key -> what was last said about it
	m.discoverOnce(fs, reported)
	close(ready)
	t := time.NewTicker(cfg.Discovery.Interval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.discoverOnce(fs, reported)
		}
	}
}

// discoverOnce runs one pass. It logs what it found and what it could not
// find once per change, not on every pass.
func (m *Manager) discoverOnce(fs procinfo.FS, reported map[string]string) {
	masters, err := discovery.Discover(fs)
	if err != nil {
		m.logger.Warn("discovery pass failed", "err", err)
		return
	}
	if len(masters) == 0 && reported[""] != "none" {
		reported[""] = "none"
		m.logger.Info("discovery found no running Gunicorn master yet; looking again every interval")
	}
	for _, ms := range masters {
		key := ms.Name
		said := ms.ErrorLog + "|" + strings.Join(ms.Notes, "|")
		if reported[key] != said {
			reported[key] = said
			reported[""] = ""
			m.logger.Info("discovered Gunicorn master",
				"app", ms.Name, "pid", ms.Identity.PID, "name_source", ms.NameSource,
				"error_log", nonEmptyOr(ms.ErrorLog, "not found"), "access_log", nonEmptyOr(ms.AccessLog, "not found"),
				"timeout", ms.Timeout, "workers", len(ms.Workers))
			for _, note := range ms.Notes {
				m.logger.Warn("discovery: "+note, "app", ms.Name, "pid", ms.Identity.PID)
			}
		}
		if ms.ErrorLog == "" || ms.ErrorLog == "-" {
			continue
		}
		m.Ensure(Spec{Name: ms.Name, Source: SourceDiscovery, ErrorLog: ms.ErrorLog})
	}
}

func nonEmptyOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
