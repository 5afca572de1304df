package appset

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
)

// ensureJournal follows the journal of a master whose error log is its
// stderr when that stderr is a socket and the master runs in a system
// service: systemd connects a service's stdout and stderr to journald's
// stream socket (StandardOutput=journal, the default), so its lines are
// the unit's journal entries. It says once per master what it follows and
// reports whether the master is now followed.
func (m *Manager) ensureJournal(ms discovery.Master, reported map[string]string, master string) bool {
	if ms.ErrorLog != "" && ms.ErrorLog != "-" {
		return false
	}
	dir := filepath.Join(m.containers.procPath, strconv.Itoa(ms.Identity.PID))
	if target, err := os.Readlink(filepath.Join(dir, "fd", "2")); err != nil || !strings.HasPrefix(target, "socket:") {
		return false
	}
	cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
	if err != nil {
		return false
	}
	unit := discovery.CgroupUnit(cg)
	if unit == "" {
		return false
	}
	spec := Spec{Name: ms.Name, Source: SourceDiscovery, ErrorLog: "-", Output: Output{Kind: linesource.KindJournal, Unit: unit},
		Routes: config.Routes{MaxRoutes: config.DefaultMaxRoutes}}
	if accessOnStdout(ms) {
		spec.AccessLog, spec.AccessLogFormat = "-", ms.AccessLogFormat
	}
	const msg = "discovery: the master's stderr is the journal of its systemd unit; following the unit's entries from now on"
	if _, done := reported[master+msg]; !done {
		reported[master+msg] = ""
		m.logger.Info(msg, "app", ms.Name, "pid", ms.Identity.PID, "unit", unit, "access_log", nonEmptyOr(spec.AccessLog, "not on stdout"))
	}
	if m.proc != nil {
		m.proc.setMaster(ms.Name, ms, m.configuredTimeout(ms.Name))
	}
	m.Ensure(spec)
	return true
}
