package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
)

// logParseFailures is the one declaration of reflex_log_parse_failures_total:
// the lifecycle collector exports it for the error log and the access
// collector for the access log, so both logs share one name and HELP.
var logParseFailures = newDesc(reflexNS, "log", "parse_failures_total", "Log lines gunicorn-reflex could not parse or explain; they are counted and skipped.", "app", "log")

// LogFollow exports the health of every log follower: what it read, how
// the file rotated, and whether it is keeping up.
type LogFollow struct {
	apps AppSource

	lines, bytes, rotations, readErrors *prometheus.Desc
	oversized, discarded, behind, up    *prometheus.Desc
	missed, source                      *prometheus.Desc
	journalDenied, journalRestarts      *prometheus.Desc
}

// NewLogFollow returns the follower-health collector.
func NewLogFollow(apps AppSource) *LogFollow {
	return &LogFollow{
		apps:       apps,
		lines:      newDesc(reflexNS, "log", "lines_total", "Complete lines read from the log file.", "app", "log"),
		bytes:      newDesc(reflexNS, "log", "bytes_total", "Bytes read from the log file.", "app", "log"),
		rotations:  newDesc(reflexNS, "log", "rotations_total", "Rotations the follower detected, by how the file changed: rename, truncate (copytruncate), delete (deleted and recreated), symlink (target swapped).", "app", "log", "reason"),
		readErrors: newDesc(reflexNS, "log", "read_errors_total", "Failures to open, stat or read the log file (for example permission denied); the follower keeps retrying.", "app", "log"),
		oversized:  newDesc(reflexNS, "log", "oversized_lines_total", "Lines longer than logs.max_line_bytes; they were cut at that size.", "app", "log"),
		discarded:  newDesc(reflexNS, "log", "discarded_bytes_total", "Bytes skipped: NUL runs left by a non-append writer after copytruncate, and the tails of oversized lines.", "app", "log"),
		behind:     newDesc(reflexNS, "log", "bytes_behind", "Bytes written to the log file but not yet read, at the last poll.", "app", "log"),
		missed:     newDesc(reflexNS, "log", "missed_bytes_total", "Bytes of rotated log files that held the log between two polls but could not be read (unreadable, or compressed before the follower saw them); their lines may be lost.", "app", "log"),
		source:     newDesc(reflexNS, "log", "source_info", "Always 1; source says what carries the log: file, journal, docker (json-file), cri, or stdin. When one source carries both logs, its reading counters are under log=\"error\" and each log counts its own lines.", "app", "log", "source"),
		journalDenied: newDesc(reflexNS, "log", "journal_permission_denied",
			"1 if journalctl reports that this user may not read the system journal, so the unit's log lines are not seen: add the user to the systemd-journal group.", "app"),
		journalRestarts: newDesc(reflexNS, "log", "journal_restarts_total",
			"journalctl children restarted after one exited; each resumes after the last entry read.", "app"),
		up: newDesc(reflexNS, "log", "file_up", "1 if the log file is open and readable, 0 if it is missing or unreadable.", "app", "log"),
	}
}

// Update implements Collector.
func (c *LogFollow) Update(ch chan<- prometheus.Metric) error {
	e := &emitter{ch: ch}
	for _, s := range c.apps.Snapshot() {
		if s.HasErrorLog {
			c.emit(e, s.App, "error", s.ErrorLog)
			c.emitSource(e, s.App, "error", s.ErrorLogSource)
		}
		if j := s.Journal; j != nil {
			denied := 0.0
			if j.PermissionDenied {
				denied = 1
			}
			e.gauge(c.journalDenied, denied, s.App)
			e.counter(c.journalRestarts, j.Restarts, s.App)
		}
		if s.Access != nil {
			c.emit(e, s.App, "access", s.AccessLog)
			c.emitSource(e, s.App, "access", s.AccessLogSource)
		}
	}
	return e.err
}

func (c *LogFollow) emit(e *emitter, app, log string, st follower.Stats) {
	e.counter(c.lines, st.Lines, app, log)
	e.counter(c.bytes, st.Bytes, app, log)
	for _, r := range follower.RotationReasons() {
		e.counter(c.rotations, st.Rotations[r], app, log, r.String())
	}
	e.counter(c.readErrors, st.ReadErrors, app, log)
	e.counter(c.oversized, st.OversizedLines, app, log)
	e.counter(c.discarded, st.DiscardedBytes, app, log)
	e.counter(c.missed, st.MissedBytes, app, log)
	e.gauge(c.behind, float64(st.BytesBehind), app, log)
	up := 0.0
	if st.Open {
		up = 1
	}
	e.gauge(c.up, up, app, log)
}

// emitSource exports reflex_log_source_info; a snapshot that names no
// source is a plain file, the only source before others existed.
func (c *LogFollow) emitSource(e *emitter, app, log string, k linesource.Kind) {
	if k == "" {
		k = linesource.KindFile
	}
	e.gauge(c.source, 1, app, log, string(k))
}
