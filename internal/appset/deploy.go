package appset

import (
	"sync"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/deploy"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// deployWatch turns changes of each app's code (release symlink, git
// HEAD, *.py mtimes, the configured marker file) into deploy markers in
// the timeline, once per discovery pass. Paths are read as this host sees
// them, like the configured log paths.
type deployWatch struct {
	det *deploy.Detector

	mu      sync.Mutex
	markers map[string]string // app -> apps[].deploy_marker
	said    map[string]string // app -> the last read error logged
}

func (m *Manager) deploys() *deployWatch {
	m.deployOnce.Do(func() {
		m.deploy = &deployWatch{det: deploy.NewDetector(m.timeline, deploy.Options{}), markers: map[string]string{}, said: map[string]string{}}
	})
	return m.deploy
}

// setMarkers records the configured marker files (by app name).
func (w *deployWatch) setMarkers(markers map[string]string) {
	w.mu.Lock()
	w.markers = markers
	w.mu.Unlock()
}

// checkDeploys observes the code of every app with a running master (the
// discovered ones when follow is set, and the configured apps found by
// pidfile) and of configured apps with a marker file but no master.
func (m *Manager) checkDeploys(masters []discovery.Master, follow bool) {
	w := m.deploys()
	targets := map[string]deploy.Target{}
	byPID := map[int]string{}
	for name, pidfile := range m.PidfileApps() {
		if pid, err := procinfo.ReadPidfile(pidfile); err == nil {
			byPID[pid] = name
		}
	}
	for _, ms := range masters {
		app, ok := byPID[ms.Identity.PID]
		if !ok {
			if !follow {
				continue
			}
			app = m.appFor(ms)
		}
		targets[app] = deploy.Target{Dir: ms.AppDir}
	}
	w.mu.Lock()
	for app, marker := range w.markers {
		t := targets[app]
		t.MarkerFile = marker
		targets[app] = t
	}
	w.mu.Unlock()
	now := m.now()
	for app, t := range targets {
		evs, err := w.det.Check(app, t, now)
		for _, ev := range evs {
			m.logger.Info("deploy marker", "app", app, "how", ev.Cause, "detail", ev.Detail)
		}
		w.report(m, app, err)
	}
}

// report logs a read error once per change, not on every pass.
func (w *deployWatch) report(m *Manager, app string, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	w.mu.Lock()
	changed := w.said[app] != msg
	w.said[app] = msg
	if len(w.said) > deploy.MaxApps {
		w.said = map[string]string{app: msg}
	}
	w.mu.Unlock()
	if changed && msg != "" {
		m.logger.Warn("cannot read all deploy markers of this app; the others still count", "app", app, "err", err)
	}
}
