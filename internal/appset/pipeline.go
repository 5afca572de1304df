package appset

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accessstats"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/containerlog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/errorlog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/journal"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/lifecycle"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// pipeline is one app's error-log source feeding its lifecycle tracker,
// and its access-log source feeding the access stats. The sources and the
// tracker run on one goroutine (run), so the tracker sees lines and
// flushes in order; Snapshot reads are safe concurrently. When one source
// carries both logs (Spec.Output), its lines are told apart by shape (see
// routeMixed).
type pipeline struct {
	mu         sync.Mutex // guards access, accLog and spec's access fields, which attachAccess sets late
	spec       Spec
	configured Spec
	logger     *slog.Logger
	timeline   *timeline.Timeline
	now        func() time.Time
	poll       time.Duration
	tracker    *lifecycle.Tracker
	errLog     linesource.Source
	access     *accessstats.Stats
	accLog     linesource.Source
	// mixed is set when errLog carries both logs; routed counts where its
	// lines went, so each log's reflex_log_lines_total stays its own.
	mixed  bool
	routed struct{ err, acc, other atomic.Uint64 }
	rec    accesslog.Record // scratch for routeMixed's access-format check
	// onSIGKILL, when set, judges a worker death by SIGKILL without a
	// timeout (OOM or not); it runs on the pipeline goroutine.
	onSIGKILL func(lifecycle.Fact)
	cancel    context.CancelFunc
}

func newPipeline(spec Spec, logs config.Logs, logger *slog.Logger, tl *timeline.Timeline, now func() time.Time) (*pipeline, error) {
	p := &pipeline{
		spec:     spec,
		logger:   logger,
		timeline: tl,
		now:      now,
		poll:     logs.PollInterval.D(),
		tracker:  lifecycle.NewTracker(lifecycle.Options{Now: now}),
	}
	switch {
	case spec.Output.Kind != "":
		src, err := openOutput(spec.Output, logs, now, logger.With("log", "output"), p.routeMixed)
		if err != nil {
			return nil, err
		}
		p.errLog, p.mixed = src, true
	case spec.ErrorLog != "":
		f, err := linesource.NewFile(followerOptions(spec.ErrorLog, logs, now, logger.With("log", "error")),
			func(_ linesource.Stream, line []byte) { p.observeErrorLine(line) })
		if err != nil {
			return nil, err
		}
		p.errLog = f
	}
	if err := p.attachAccess(spec, logs); err != nil {
		return nil, err
	}
	return p, nil
}

// attachAccess starts following spec's access log, if it has one. It is
// called at creation and when discovery finds the access log of an app
// later (an empty log cannot be recognised by its content): adding it must
// not restart the error-log side and reset its counters.
func (p *pipeline) attachAccess(spec Spec, logs config.Logs) error {
	if spec.AccessLog == "" || (spec.AccessLog == "-" && !p.mixed) {
		return nil
	}
	parser, err := accesslog.Compile(spec.AccessLogFormat)
	if err != nil {
		// A discovered format that cannot be compiled loses only the
		// access log; the error log is still followed.
		p.logger.Error("cannot parse this access_log_format; access log not followed", "format", spec.AccessLogFormat, "err", err)
		return nil
	}
	if !parser.HasDuration() {
		p.logger.Warn("the access log has no duration atom, so there is no latency histogram (request counts only); add %(D)s to Gunicorn's access_log_format",
			"access_log_format", parser.Format(), "suggested", "--access-logformat '"+parser.Format()+" %(D)s'")
	}
	stats := accessstats.New(spec.Name, parser, accessstats.Options{
		Routes: spec.Routes.Enabled, MaxRoutes: spec.Routes.MaxRoutes, Rules: config.App{Routes: spec.Routes}.RouteRules(),
	})
	var f linesource.Source
	if spec.AccessLog != "-" {
		src, err := linesource.NewFile(followerOptions(spec.AccessLog, logs, p.now, p.logger.With("log", "access")),
			func(_ linesource.Stream, line []byte) { stats.ObserveLine(line) })
		if err != nil {
			return err
		}
		f = src
	}
	p.mu.Lock()
	p.access, p.accLog = stats, f
	p.spec.AccessLog, p.spec.AccessLogFormat = spec.AccessLog, spec.AccessLogFormat
	p.mu.Unlock()
	return nil
}

// accessFollower returns the access-log source, nil if none (or if the
// access log arrives on the mixed source).
func (p *pipeline) accessFollower() linesource.Source {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accLog
}

// accessParser returns the compiled access format, nil until one is known.
func (p *pipeline) accessParser() *accesslog.Parser {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.access == nil {
		return nil
	}
	return p.access.Parser()
}

func followerOptions(path string, logs config.Logs, now func() time.Time, logger *slog.Logger) follower.Options {
	return follower.Options{
		Path:         path,
		PollInterval: logs.PollInterval.D(),
		RotateGrace:  logs.RotateGrace.D(),
		MaxLineBytes: logs.MaxLineBytes,
		Now:          now,
		Logger:       logger,
	}
}

// routeMixed sends a line of a source that carries both logs to the one it
// belongs to, by shape, because both can arrive on one stream (the journal
// does not tag streams, and a person may point both logs at stderr):
//  1. A line with an error-log header ("[time] [pid] [LEVEL]", even a
//     malformed one) goes to the error log.
//  2. A line the compiled access format parses goes to the access log.
//  3. Another line on stdout is neither log (an app's print, say): it is
//     counted and dropped, so it cannot join a traceback of the error log
//     that stderr is writing at the same time.
//  4. Another line goes to the error log, where it continues the open
//     record (a traceback) or is counted as raw output.
func (p *pipeline) routeMixed(stream linesource.Stream, line []byte) {
	if _, st := errorlog.ParseHeader(line, nil); st != errorlog.NotHeader {
		p.routed.err.Add(1)
		p.observeErrorLine(line)
		return
	}
	if parser := p.accessParser(); parser != nil && parser.Parse(line, &p.rec) == nil {
		p.routed.acc.Add(1)
		p.mu.Lock()
		stats := p.access
		p.mu.Unlock()
		stats.ObserveLine(line)
		return
	}
	if stream == linesource.StreamStdout {
		p.routed.other.Add(1)
		return
	}
	p.routed.err.Add(1)
	p.observeErrorLine(line)
}

func (p *pipeline) observeErrorLine(line []byte) {
	p.record(p.tracker.ObserveLine(line))
}

func (p *pipeline) record(facts []lifecycle.Fact) {
	for _, f := range facts {
		p.timeline.Append(timeline.Event{
			Time:   f.Time,
			App:    p.spec.Name,
			Source: timeline.SourceErrorLog,
			Kind:   f.Kind,
			PID:    f.PID,
			Cause:  f.Cause,
			Detail: f.Detail,
			Attrs:  f.Attrs,
		})
		if f.Kind == lifecycle.FactMasterNotReaping {
			p.logger.Error("this Gunicorn master does not replace dead workers: it logged \"Unhandled signal: cld\", a bug of Gunicorn 24.0.0 fixed in 24.1.0; the app loses a worker at every death until restarted, so upgrade Gunicorn",
				"version", f.Detail, "master_pid", f.PID)
		}
		if p.onSIGKILL != nil && f.Kind == lifecycle.FactWorkerExit && f.Cause == lifecycle.ExitSIGKILL.String() {
			p.onSIGKILL(f)
		}
	}
}

// run polls the follower and flushes the tracker's pending decisions on
// every tick, so an exit whose explaining line never comes is still counted.
func (p *pipeline) run(ctx context.Context) {
	t := time.NewTicker(p.poll)
	defer t.Stop()
	for {
		if p.errLog != nil {
			p.errLog.Poll()
		}
		if acc := p.accessFollower(); acc != nil {
			acc.Poll()
		}
		p.record(p.tracker.Flush(p.now()))
		select {
		case <-ctx.Done():
			if p.errLog != nil {
				_ = p.errLog.Close()
			}
			if acc := p.accessFollower(); acc != nil {
				_ = acc.Close()
			}
			return
		case <-t.C:
		}
	}
}

func (p *pipeline) snapshot() Snapshot {
	s := Snapshot{App: p.spec.Name, Source: p.spec.Source, ErrorLogPath: p.spec.ErrorLog, Lifecycle: p.tracker.Snapshot()}
	if p.errLog != nil {
		s.ErrorLog = p.errLog.Stats()
		s.ErrorLogSource = p.errLog.Kind()
		s.HasErrorLog = true
	}
	p.mu.Lock()
	access, acc := p.access, p.accLog
	p.mu.Unlock()
	switch {
	case acc != nil:
		s.Access = access
		s.AccessLog = acc.Stats()
		s.AccessLogSource = acc.Kind()
	case p.mixed && access != nil:
		// One source read both logs: its reading health stays with the
		// error log, and each log counts the lines that went to it.
		s.Access = access
		s.AccessLog = follower.Stats{Lines: p.routed.acc.Load(), Open: s.ErrorLog.Open}
		s.AccessLogSource = s.ErrorLogSource
	}
	if js, ok := p.errLog.(*journal.Source); ok {
		st := js.Journal()
		s.Journal = &st
	}
	if d, ok := p.errLog.(interface{ DecodeFailures() uint64 }); ok {
		// A line of a runtime's log file not in its format is a line that
		// could not be parsed: counted with the error log's, and skipped.
		s.Lifecycle.ParseFailures += d.DecodeFailures()
	}
	if p.mixed {
		s.ErrorLog.Lines = p.routed.err.Load()
		s.OtherLines = p.routed.other.Load()
	}
	return s
}

// currentSpec is the spec in effect, access-log fields included.
func (p *pipeline) currentSpec() Spec {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spec
}

// openOutput opens the source that carries both of an app's logs. Each
// kind of carrier adds its case here.
func openOutput(out Output, logs config.Logs, now func() time.Time, logger *slog.Logger, h linesource.Handler) (linesource.Source, error) {
	switch out.Kind {
	case linesource.KindFile:
		return linesource.NewFile(followerOptions(out.Path, logs, now, logger), h)
	case linesource.KindJournal:
		return journal.NewSource(journalOptions(out.Unit, logs, now, logger), h)
	case linesource.KindDocker:
		return containerlog.NewSource(containerlog.FormatDocker, followerOptions(out.Path, logs, now, logger), h)
	case linesource.KindCRI:
		return containerlog.NewSource(containerlog.FormatCRI, followerOptions(out.Path, logs, now, logger), h)
	case linesource.KindStdin:
		if out.Reader != nil {
			return out.Reader.Source(h), nil
		}
	}
	return nil, fmt.Errorf("appset: no reader for log source %q", out.Kind)
}

// journalOptions reads unit's journal with journalctl, in
// logs.journal_directory when that is set.
func journalOptions(unit string, logs config.Logs, now func() time.Time, logger *slog.Logger) journal.Options {
	cmd := []string{"journalctl"}
	if logs.JournalDirectory != "" {
		cmd = append(cmd, "--directory="+logs.JournalDirectory)
	}
	return journal.Options{Unit: unit, Command: cmd, MaxLineBytes: logs.MaxLineBytes, Now: now, Logger: logger}
}
