package appset

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accessstats"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/lifecycle"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// pipeline is one app's error-log follower feeding its lifecycle tracker.
// The follower and the tracker run on one goroutine (run), so the tracker
// sees lines and flushes in order; Snapshot reads are safe concurrently.
type pipeline struct {
	mu         sync.Mutex // guards access, accLog and spec's access fields, which attachAccess sets late
	spec       Spec
	configured Spec
	logger     *slog.Logger
	timeline   *timeline.Timeline
	now        func() time.Time
	poll       time.Duration
	tracker    *lifecycle.Tracker
	errLog     *follower.Follower
	access     *accessstats.Stats
	accLog     *follower.Follower
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
	if spec.ErrorLog != "" {
		f, err := follower.New(follower.Options{
			Path:         spec.ErrorLog,
			PollInterval: logs.PollInterval.D(),
			RotateGrace:  logs.RotateGrace.D(),
			MaxLineBytes: logs.MaxLineBytes,
			Now:          now,
			Logger:       logger.With("log", "error"),
		}, p.observeErrorLine)
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
	if spec.AccessLog == "" || spec.AccessLog == "-" {
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
	f, err := follower.New(follower.Options{
		Path:         spec.AccessLog,
		PollInterval: logs.PollInterval.D(),
		RotateGrace:  logs.RotateGrace.D(),
		MaxLineBytes: logs.MaxLineBytes,
		Now:          p.now,
		Logger:       p.logger.With("log", "access"),
	}, stats.ObserveLine)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.access, p.accLog = stats, f
	p.spec.AccessLog, p.spec.AccessLogFormat = spec.AccessLog, spec.AccessLogFormat
	p.mu.Unlock()
	return nil
}

// accessFollower returns the access-log follower, nil if none.
func (p *pipeline) accessFollower() *follower.Follower {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accLog
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
		s.HasErrorLog = true
	}
	p.mu.Lock()
	access, acc := p.access, p.accLog
	p.mu.Unlock()
	if acc != nil {
		s.Access = access
		s.AccessLog = acc.Stats()
	}
	return s
}

// currentSpec is the spec in effect, access-log fields included.
func (p *pipeline) currentSpec() Spec {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spec
}
