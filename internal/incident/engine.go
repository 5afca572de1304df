package incident

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// Reader is the part of *timeline.Timeline the engine reads.
type Reader interface {
	Select(q timeline.Query) []timeline.Event
}

// EngineOptions configure an Engine. Every source is a function value, so
// the engine reads nothing itself; zero values select the defaults given.
type EngineOptions struct {
	// Timeline is followed by sequence number. Required.
	Timeline Reader
	// Apps lists the apps whose state is sampled at each step; nil: only
	// apps that appear in the timeline are followed, from events alone.
	Apps func() []string
	// Snapshot returns one app's collectors' state (appset's
	// Manager.IncidentSnapshot); nil or ok false: events alone.
	Snapshot func(app string) (Snapshot, bool)
	// Databases scrapes the PostgreSQL and PgBouncer targets; it is called
	// only while an incident is open. Nil: no database state.
	Databases func(ctx context.Context) (pgmon.SetSnapshot, error)
	// DBTimeout bounds one Databases call; default 2s.
	DBTimeout time.Duration
	// ReadProc reads a file of the proc root ("stat"), for the host's CPU
	// busy fraction between two steps. Nil: the host's CPU is unknown.
	ReadProc func(name string) ([]byte, error)
	// Fallback answers Check when no open incident decides it (and for
	// the headroom checks of the verdicts that allow a scale-up): today's
	// Guard. Nil: no objection.
	Fallback intent.Guard
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Interval is how often Run steps; default 2s (the /proc sampler's).
	Interval time.Duration
	// Lookback is how far before its opening an incident's evidence window
	// starts; default 5m.
	Lookback time.Duration
	// QuietPeriod closes an incident after this long with no timeout, no
	// stuck worker and no worker past 0.8 of the timeout; default 2m.
	QuietPeriod time.Duration
	// MaxIncidents bounds the incidents kept (the oldest closed ones go
	// first); default 256.
	MaxIncidents int
	// MaxEvidence bounds the evidence of one incident as returned (the
	// decisive evidence is kept first); default 128.
	MaxEvidence int
	// MaxDecisions bounds the remediation decisions kept per incident;
	// default 64.
	MaxDecisions int
	// MaxCauses bounds the verdict history of one incident (at least 2:
	// the opening verdict and the current one); default 16.
	MaxCauses int
	// HoldSteps is how many consecutive steps a new cause must be judged
	// at before it counts as a change even if the verdict goes back to the
	// cause before it (the package doc's "Verdict history"); default 3.
	HoldSteps int
	// MaxEvents bounds the timeline events kept per incident for judging;
	// each kind may use at most a quarter of it, so a flood of timeouts
	// does not push out the one backend link. Default 512.
	MaxEvents int
	// Rules are Judge's thresholds.
	Rules Rules
}

// Filter selects incidents for List.
type Filter struct {
	App   string // "" every app
	State State  // "" every state
	Limit int    // 0 no limit; keeps the newest Limit
}

// Engine follows the timeline, opens and closes incidents, and keeps each
// one's verdict current. It is safe for concurrent use.
type Engine struct {
	opts EngineOptions

	stepMu sync.Mutex // one Step at a time; held without mu while sources are read

	mu        sync.Mutex
	lastSeq   uint64
	nextID    int
	incidents []*record          // oldest first
	open      map[string]*record // by app
	totals    map[string]map[Cause]uint64
	busy      map[string]int // consecutive steps with every worker busy and clients queued
	prevCPU   CPUTimes
	havePrev  bool
	evicted   uint64
}

// record is one incident and what its verdict is computed from.
type record struct {
	inc           Incident
	events        []timeline.Event
	perKind       map[string]int
	eventsDropped int
	obs           Observed
	lastActivity  time.Time
	verdict       Verdict
	judged        bool        // verdict was computed at least once
	spans         []spanState // one per inc.Causes entry
}

// spanState is what the engine knows of one verdict history entry beyond
// what it shows.
type spanState struct {
	steps  int  // consecutive steps that judged the entry's cause
	pinned bool // a receiver decision was taken under it
}

// NewEngine returns an Engine; it does nothing until Step or Run.
func NewEngine(opts EngineOptions) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DBTimeout <= 0 {
		opts.DBTimeout = 2 * time.Second
	}
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Lookback <= 0 {
		opts.Lookback = 5 * time.Minute
	}
	if opts.QuietPeriod <= 0 {
		opts.QuietPeriod = 2 * time.Minute
	}
	if opts.MaxIncidents <= 0 {
		opts.MaxIncidents = 256
	}
	if opts.MaxEvidence <= 0 {
		opts.MaxEvidence = 128
	}
	if opts.MaxDecisions <= 0 {
		opts.MaxDecisions = 64
	}
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = 512
	}
	if opts.MaxCauses <= 0 {
		opts.MaxCauses = 16
	}
	opts.MaxCauses = max(2, opts.MaxCauses)
	if opts.HoldSteps <= 0 {
		opts.HoldSteps = 3
	}
	opts.Rules = opts.Rules.withDefaults()
	return &Engine{opts: opts, open: map[string]*record{}, totals: map[string]map[Cause]uint64{}, busy: map[string]int{}}
}

// Run steps every Interval until ctx is done.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.opts.Interval)
	defer t.Stop()
	for {
		e.Step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step reads the timeline events appended since the last step, samples
// the collectors' state, opens and closes incidents and recomputes the
// open ones' verdicts.
func (e *Engine) Step(ctx context.Context) {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()

	e.mu.Lock()
	seen := e.opts.Now()
	for _, ev := range e.opts.Timeline.Select(timeline.Query{AfterSeq: e.lastSeq}) {
		e.lastSeq = ev.Seq
		e.handleLocked(ev, seen)
	}
	apps := e.appsLocked()
	anyOpen := len(e.open) > 0
	e.mu.Unlock()

	snaps := map[string]Snapshot{}
	if e.opts.Snapshot != nil {
		for _, app := range apps {
			if s, ok := e.opts.Snapshot(app); ok {
				snaps[app] = s
			}
		}
	}
	cpuTimes, cpuRead := e.readCPU()
	var db DBState
	if e.opts.Databases != nil && (anyOpen || triggers(snaps)) {
		dctx, cancel := context.WithTimeout(ctx, e.opts.DBTimeout)
		if snap, err := e.opts.Databases(dctx); err == nil {
			db = DBStateOf(snap)
		}
		cancel()
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.opts.Now()
	cpu, cpuKnown := e.cpuBusyLocked(cpuTimes, cpuRead)
	for _, app := range apps {
		s, ok := snaps[app]
		if !ok {
			continue
		}
		backlogged := s.Sampled && s.Workers > 0 && s.Busy >= s.Workers && s.BacklogKnown &&
			s.BacklogQueued >= uint64(max(1, (s.Workers+1)/2))
		if backlogged {
			e.busy[app]++
		} else {
			delete(e.busy, app)
		}
		r := e.open[app]
		if r == nil {
			switch {
			case s.Sampled && s.Past80Timeout > 0:
				r = e.openLocked(app, TriggerPast80, now, e.lastSeq+1, now)
			case e.busy[app] >= 2:
				r = e.openLocked(app, TriggerBacklog, now, e.lastSeq+1, now)
			default:
				continue
			}
		}
		r.obs.Merge(s, db, cpu, cpuKnown)
		if s.Sampled && (s.Stuck > 0 || s.Past80Timeout > 0 || backlogged) {
			r.lastActivity = now
		}
	}
	for app, r := range e.open {
		if _, sampled := snaps[app]; !sampled {
			r.obs.Merge(Snapshot{}, db, cpu, cpuKnown)
		}
		e.judgeLocked(r, now)
		if now.Sub(r.lastActivity) >= e.opts.QuietPeriod {
			e.closeLocked(r, now)
		}
	}
}

// triggers reports whether a snapshot may open an incident, so the
// database is scraped for its first verdict.
func triggers(snaps map[string]Snapshot) bool {
	for _, s := range snaps {
		if s.Sampled && (s.Past80Timeout > 0 || s.Stuck > 0) {
			return true
		}
	}
	return false
}

// readCPU reads the host's CPU times from /proc/stat.
func (e *Engine) readCPU() (CPUTimes, bool) {
	if e.opts.ReadProc == nil {
		return CPUTimes{}, false
	}
	b, err := e.opts.ReadProc("stat")
	if err != nil {
		return CPUTimes{}, false
	}
	t, err := ParseCPUTimes(b)
	if err != nil {
		return CPUTimes{}, false
	}
	return t, true
}

// cpuBusyLocked is the busy fraction of the host's cores since the
// previous step's read; it remembers t for the next step. The first read
// (or one after a failure) measures nothing.
func (e *Engine) cpuBusyLocked(t CPUTimes, ok bool) (float64, bool) {
	if !ok {
		e.havePrev = false
		return 0, false
	}
	prev, had := e.prevCPU, e.havePrev
	e.prevCPU, e.havePrev = t, true
	if !had {
		return 0, false
	}
	busy, err := t.BusySince(prev)
	return busy, err == nil
}

// appsLocked is the apps to sample: Apps() and every app with an open
// incident.
func (e *Engine) appsLocked() []string {
	var apps []string
	if e.opts.Apps != nil {
		apps = append(apps, e.opts.Apps()...)
	}
	for app := range e.open {
		if !slices.Contains(apps, app) {
			apps = append(apps, app)
		}
	}
	slices.Sort(apps)
	return apps
}

// handleLocked applies one timeline event, read at seen. The quiet period
// counts from when the engine read the activity, not from the event's own
// time: a log's timestamps may be skewed against this host's clock or
// read late after a follower caught up.
func (e *Engine) handleLocked(ev timeline.Event, seen time.Time) {
	if ev.App == "" {
		return
	}
	r := e.open[ev.App]
	if ev.Source == timeline.SourceReceiver {
		if r == nil && opensOnAlert(ev) {
			r = e.openLocked(ev.App, TriggerAlert, ev.Time, ev.Seq, seen)
		}
		if r != nil {
			r.addDecision(ev, e.opts.MaxDecisions)
		}
		return
	}
	if r == nil {
		trigger := ""
		switch {
		case ev.Kind == timeline.KindWorkerTimeout:
			trigger = TriggerTimeout
		case ev.Kind == timeline.KindOOMConfirmed:
			trigger = TriggerOOM
		case ev.Kind == timeline.KindWorkerStuck && past80(ev):
			trigger = TriggerPast80
		}
		if trigger == "" {
			return
		}
		r = e.openLocked(ev.App, trigger, ev.Time, ev.Seq, seen)
	}
	if relevant(ev) {
		r.addEvent(ev, e.opts.MaxEvents)
	}
	switch ev.Kind {
	case timeline.KindWorkerTimeout, timeline.KindWorkerStuck, timeline.KindOOMConfirmed, timeline.KindWorkerWaitsOnBackend:
		r.lastActivity = seen
	}
}

// opensOnAlert: a decision about a firing alert opens an incident; the
// receiver's own reconciliation and alerts it ignored (resolved, another
// host) do not.
func opensOnAlert(ev timeline.Event) bool {
	return ev.Cause != string(intent.OutcomeIgnored) && ev.Attrs["reconcile"] != "true"
}

// past80 reports whether a stuck event's worker was past 0.8 of the
// timeout.
func past80(ev timeline.Event) bool {
	age, err1 := strconv.ParseFloat(ev.Attrs["heartbeat_age_seconds"], 64)
	to, err2 := strconv.ParseFloat(ev.Attrs["timeout_seconds"], 64)
	return err1 == nil && err2 == nil && to > 0 && age >= 0.8*to
}

// relevant reports whether ev belongs in an incident's evidence window:
// everything but worker boots (the master replacing workers says nothing
// about why they died) and the receiver's decisions (kept as decisions).
func relevant(ev timeline.Event) bool {
	return ev.Kind != timeline.KindWorkerBoot && ev.Source != timeline.SourceReceiver
}

// openLocked opens an incident of app at at, with the evidence window from
// Lookback before it: the app's events with a sequence number below upTo
// (the caller adds the later ones as it reads them). seen starts the
// quiet period.
func (e *Engine) openLocked(app, trigger string, at time.Time, upTo uint64, seen time.Time) *record {
	e.nextID++
	r := &record{
		inc: Incident{ID: strconv.Itoa(e.nextID), App: app, State: StateOpen, OpenedAt: at, Trigger: trigger,
			Cause: CauseUnknown, Evidence: []Evidence{}, Decisions: []Decision{}, Causes: []CauseSpan{}},
		perKind:      map[string]int{},
		lastActivity: seen,
	}
	for _, ev := range e.opts.Timeline.Select(timeline.Query{App: app, From: at.Add(-e.opts.Lookback)}) {
		if ev.Seq >= upTo {
			break
		}
		if relevant(ev) {
			r.addEvent(ev, e.opts.MaxEvents)
		} else if ev.Source == timeline.SourceReceiver {
			r.addDecision(ev, e.opts.MaxDecisions)
		}
	}
	e.open[app] = r
	e.incidents = append(e.incidents, r)
	e.evictLocked()
	return r
}

// evictLocked keeps at most MaxIncidents, dropping the oldest closed ones
// first and the oldest open one only when every kept incident is open.
func (e *Engine) evictLocked() {
	for len(e.incidents) > e.opts.MaxIncidents {
		i := slices.IndexFunc(e.incidents, func(r *record) bool { return !r.inc.Open() })
		if i < 0 {
			i = 0
			delete(e.open, e.incidents[0].inc.App)
		}
		e.incidents = slices.Delete(e.incidents, i, i+1)
		e.evicted++
	}
}

func (r *record) addEvent(ev timeline.Event, maxEvents int) {
	if len(r.events) >= maxEvents || r.perKind[ev.Kind] >= max(1, maxEvents/4) {
		r.eventsDropped++
		return
	}
	r.perKind[ev.Kind]++
	r.events = append(r.events, ev)
}

func (r *record) addDecision(ev timeline.Event, maxDecisions int) {
	cause := r.decisionCause(ev)
	if n := len(r.spans); n > 0 && cause == r.inc.Causes[n-1].Cause {
		// The decision cites the current cause: it stays in the history
		// even if the verdict goes straight back.
		r.spans[n-1].pinned = true
	}
	if len(r.inc.Decisions) >= maxDecisions {
		r.inc.DecisionsDropped++
		return
	}
	r.inc.Decisions = append(r.inc.Decisions, Decision{Time: ev.Time, Seq: ev.Seq, Kind: ev.Kind,
		Action: ev.Attrs["action"], Outcome: ev.Cause, Refusal: ev.Attrs["refusal"], Detail: ev.Detail, Cause: cause})
}

// decisionCause is the verdict a receiver decision was taken under: the
// one its refusal names (the guard's own answer, exact even if a step
// judged again before the engine read the decision), else the verdict of
// the last step; none before the incident's first verdict.
func (r *record) decisionCause(ev timeline.Event) Cause {
	if name, ok := strings.CutPrefix(ev.Attrs["refusal"], "verdict_"); ok {
		if c, ok := ParseCause(name); ok {
			return c
		}
	}
	if !r.judged {
		return ""
	}
	return r.inc.Cause
}

// noteCause records v in the verdict history at now (the package doc's
// "Verdict history" says when a change counts).
func (r *record) noteCause(v Verdict, now time.Time, hold, limit int) {
	span := CauseSpan{Cause: v.Cause, Confidence: v.Confidence, Summary: v.Summary, From: now}
	n := len(r.inc.Causes)
	switch {
	case n == 0:
		// The first verdict covers the incident from its opening (a log
		// time may be ahead of this host's clock: never after now).
		if r.inc.OpenedAt.Before(now) {
			span.From = r.inc.OpenedAt
		}
		r.inc.Causes = append(r.inc.Causes, span)
		r.spans = append(r.spans, spanState{steps: 1})
	case r.inc.Causes[n-1].Cause == v.Cause:
		cur := &r.inc.Causes[n-1]
		cur.Confidence, cur.Summary = v.Confidence, v.Summary
		r.spans[n-1].steps++
	case n >= 2 && r.inc.Causes[n-2].Cause == v.Cause && r.spans[n-1].steps < hold && !r.spans[n-1].pinned:
		// A flap: the verdict went back before the new cause held. The
		// entry before it goes on as if never interrupted.
		r.inc.Causes, r.spans = r.inc.Causes[:n-1], r.spans[:n-1]
		prev := &r.inc.Causes[n-2]
		prev.Confidence, prev.Summary, prev.Until = v.Confidence, v.Summary, nil
		r.spans[n-2].steps++
	default:
		until := now
		r.inc.Causes[n-1].Until = &until
		r.inc.Causes = append(r.inc.Causes, span)
		r.spans = append(r.spans, spanState{steps: 1})
		if len(r.inc.Causes) > limit {
			// Keep what the incident opened as and the newest.
			r.inc.Causes = slices.Delete(r.inc.Causes, 1, 2)
			r.spans = slices.Delete(r.spans, 1, 2)
			r.inc.CausesDropped++
		}
	}
}

// judgeLocked recomputes r's verdict and evidence.
func (e *Engine) judgeLocked(r *record, now time.Time) {
	v := Judge(Input{App: r.inc.App, OpenedAt: r.inc.OpenedAt, Events: r.events, Observed: r.obs, Rules: e.opts.Rules})
	r.verdict, r.judged = v, true
	r.inc.Cause, r.inc.Confidence, r.inc.Summary, r.inc.Advice = v.Cause, v.Confidence, v.Summary, v.Advice
	r.noteCause(v, now, e.opts.HoldSteps, e.opts.MaxCauses)
	r.inc.Evidence, r.inc.EvidenceDropped = evidenceOf(r, v, now, e.opts.MaxEvidence)
}

// evidenceOf lists r's evidence oldest first, at most limit entries: the
// decisive ones first, then the others oldest first.
func evidenceOf(r *record, v Verdict, now time.Time, limit int) ([]Evidence, int) {
	decisive := map[uint64]bool{}
	var out []Evidence
	for _, d := range v.Decisive {
		if d.Seq > 0 {
			decisive[d.Seq] = true
			if d.Kind != FactAppFrame {
				continue
			}
		}
		if d.Time.IsZero() {
			d.Time = now
		}
		out = append(out, d)
	}
	for _, ev := range r.events {
		if decisive[ev.Seq] {
			out = append(out, fromEvent(ev, true))
		}
	}
	dropped := r.eventsDropped
	for _, ev := range r.events {
		if decisive[ev.Seq] {
			continue
		}
		if len(out) >= limit {
			dropped++
			continue
		}
		out = append(out, fromEvent(ev, false))
	}
	if len(out) > limit {
		dropped += len(out) - limit
		out = out[:limit]
	}
	slices.SortStableFunc(out, func(a, b Evidence) int { return a.Time.Compare(b.Time) })
	return out, dropped
}

func (e *Engine) closeLocked(r *record, now time.Time) {
	t := now
	r.inc.State, r.inc.ClosedAt = StateClosed, &t
	if n := len(r.inc.Causes); n > 0 {
		until := now
		r.inc.Causes[n-1].Until = &until
	}
	delete(e.open, r.inc.App)
	m := e.totals[r.inc.App]
	if m == nil {
		m = map[Cause]uint64{}
		e.totals[r.inc.App] = m
	}
	m[r.inc.Cause]++
}

// List returns copies of the incidents matching f, newest first.
func (e *Engine) List(f Filter) []Incident {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Incident
	for i := len(e.incidents) - 1; i >= 0; i-- {
		r := e.incidents[i]
		if (f.App != "" && r.inc.App != f.App) || (f.State != "" && r.inc.State != f.State) {
			continue
		}
		out = append(out, r.inc.clone())
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out
}

// Get returns the incident with id.
func (e *Engine) Get(id string) (Incident, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.incidents {
		if r.inc.ID == id {
			return r.inc.clone(), true
		}
	}
	return Incident{}, false
}

// Latest returns the newest incident of app ("" any app).
func (e *Engine) Latest(app string) (Incident, bool) {
	l := e.List(Filter{App: app, Limit: 1})
	if len(l) == 0 {
		return Incident{}, false
	}
	return l[0], true
}

// Verdict returns the verdict of app's open incident; ok false when none
// is open.
func (e *Engine) Verdict(app string) (Verdict, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.open[app]
	if r == nil {
		return Verdict{}, false
	}
	return r.verdict, true
}

// Stats is what the incident metrics export.
type Stats struct {
	// Closed counts closed incidents by app and final cause.
	Closed map[string]map[Cause]uint64
	// Open maps each app with an open incident to its current cause.
	Open map[string]Cause
	// Apps lists every app that had an incident or is followed (Apps()).
	Apps []string
	// Evicted counts incidents dropped by MaxIncidents.
	Evicted uint64
}

// Stats returns a copy of the counters.
func (e *Engine) Stats() Stats {
	var apps []string
	if e.opts.Apps != nil {
		apps = e.opts.Apps()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Closed: map[string]map[Cause]uint64{}, Open: map[string]Cause{}, Evicted: e.evicted}
	for app, m := range e.totals {
		s.Closed[app] = map[Cause]uint64{}
		for c, n := range m {
			s.Closed[app][c] = n
		}
		apps = append(apps, app)
	}
	for app, r := range e.open {
		s.Open[app] = r.inc.Cause
		apps = append(apps, app)
	}
	slices.Sort(apps)
	s.Apps = slices.Compact(apps)
	return s
}

// clone deep-copies the slices so callers cannot race the engine.
func (i Incident) clone() Incident {
	i.Evidence = slices.Clone(i.Evidence)
	i.Decisions = slices.Clone(i.Decisions)
	// The engine never writes through an Until pointer (it replaces
	// them), so sharing their targets is safe.
	i.Causes = slices.Clone(i.Causes)
	if i.ClosedAt != nil {
		t := *i.ClosedAt
		i.ClosedAt = &t
	}
	return i
}
