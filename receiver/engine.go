// Package receiver is the remediation engine: it takes the alerts the
// webhook validated, records them durably, and performs them one at a time
// per app, in one direction of flow:
//
//	webhook → intake (this package) → policy.Decide → actuator → verify → audit
//
// The request only records: Submit answers once every new alert of the
// request is in the durable pending journal, and never performs anything.
// A worker per app takes the alerts in order, looks the app up on the host
// (intent.Host), asks the guard (intent.Guard), lets the policy decide,
// saves the decision's state (receiver/state) before the actuator runs,
// waits for the effect, and writes every decision to the audit log. So at
// most one action per app is in flight, and a duplicate delivery
// (Alertmanager's retries, HA peers, repeat_interval re-sends) is answered
// at intake from the remembered idempotency keys and the queued alerts,
// without a second action.
//
// # Queue full
//
// The alerts waiting for their app's worker are bounded (Options.QueueSize,
// all apps together). A request whose new alerts do not all fit records
// none of them and gets ErrQueueFull, which the webhook answers with 503:
// Alertmanager retries it later, and the retry is deduplicated against
// whatever was recorded before. reflex_receiver_queue_full_total counts it.
//
// # What is audited
//
// Every decision the policy makes is a line in the audit log and a metric;
// a duplicate answered at intake (a key already decided, or an alert
// already queued) is counted in reflex_remediation_decisions_total with
// outcome deduplicated but not written to the audit log, so a flood of
// retries costs no fsync per request. Re-applying the desired worker count
// after a HUP (policy.Reconcile) is audited when it acts, and otherwise
// only when its outcome changes. Every line has its own id; what became of
// an acted decision (verified, verification_failed, failed, or dry_run
// when the kill switch stopped it) is a line of its own whose verifies is
// the acted line's id.
package receiver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/verify"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/webhook"
)

// ErrQueueFull is returned by Submit when the new alerts of a request do
// not fit in the queue; nothing of the request was recorded.
var ErrQueueFull = errors.New("remediation queue full: nothing recorded, retry later")

// ErrNotRecorded wraps a failure to make a request's alerts durable.
var ErrNotRecorded = errors.New("alerts not recorded")

// ErrUnknownApp is returned by the control methods for an app the
// receiver has no rules for.
var ErrUnknownApp = errors.New("no receiver rules for this app")

// Store is the durable policy state (receiver/state's *Store).
type Store interface {
	Load() policy.State
	Save(st policy.State, now time.Time) error
	Corrupt() bool
}

// Auditor records one decision durably (receiver/audit's *Writer).
type Auditor interface {
	Record(d policy.Decision) error
}

// Effector performs an acted decision on the app and waits for its effect.
// It never retries: a failed verification is an outcome.
type Effector interface {
	Perform(ctx context.Context, d policy.Decision, app intent.AppView, unit string) Effect
	// Workers reads app's live worker count now, from where Perform
	// verifies a scale (the count a scale decision steps from), until it
	// settled; its error wraps verify.ErrUnsettled when the count kept
	// moving.
	Workers(ctx context.Context, app intent.AppView) (verify.Settled, error)
}

// Effect is what became of an acted decision.
type Effect struct {
	// Outcome is intent.OutcomeVerified, OutcomeVerificationFailed,
	// OutcomeFailed, OutcomeRefused (the master did not verify),
	// OutcomeNotAllowed, OutcomeDryRun (the kill switch was on) or
	// OutcomeUnsettled (the count kept moving just before the signal:
	// nothing was sent, and the decision is withdrawn).
	Outcome  intent.Outcome
	Refusal  intent.Refusal
	Evidence string
	// Workers is the worker count seen last, -1 when unknown.
	Workers int
}

// App is one app the receiver may act on.
type App struct {
	Name  string
	Rules policy.Rules
	// Unit is the systemd service a restart restarts ("" = none).
	Unit string
}

// Options configures an Engine. Host, Effector and Store are required;
// a nil Guard has no objection, a nil Auditor records nothing.
type Options struct {
	Apps     []App
	Global   policy.Global
	Host     intent.Host
	Guard    intent.Guard
	Effector Effector
	Store    Store
	Audit    Auditor
	// Journal keeps the queued alerts across restarts; nil keeps them in
	// memory only.
	Journal *Journal
	// QueueSize bounds the queued alerts of all apps; zero means 64.
	QueueSize int
	// ReconcileEvery is how often an idle app's worker count is compared
	// with the desired one; zero means 15s, negative never.
	ReconcileEvery time.Duration
	// UnsettledRetries is how many more times a decision reads the worker
	// count after it did not settle, UnsettledPause apart (zero: 2 and
	// 1s; negative retries: none). A count moves while workers killed for
	// the timeout are replaced, which is when a scale-up is asked for, and
	// Alertmanager sends the same firing alert again only after its
	// repeat_interval (an hour in deploy/alertmanager.example.yml), so
	// giving up at once would leave the app short for that long.
	UnsettledRetries int
	UnsettledPause   time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Engine implements the receiver's intake and its per-app workers.
type Engine struct {
	opts   Options
	apps   map[string]*appQueue
	logger *slog.Logger
	now    func() time.Time

	mu        sync.Mutex
	st        policy.State
	queued    int
	journal   []intent.Alert  // every queued or in-flight alert, in arrival order
	inJournal map[string]bool // the keys of journal
	stats     stats
}

type appQueue struct {
	app  App
	wake chan struct{}
	// guarded by Engine.mu
	queue       []intent.Alert
	inflight    *intent.Alert
	lastRecon   intent.Outcome
	lastRefusal intent.Refusal
}

// New returns an Engine over the state in opts.Store and the alerts left
// in opts.Journal by a previous run (they are queued again).
func New(opts Options) (*Engine, error) {
	if opts.Host == nil || opts.Effector == nil || opts.Store == nil {
		return nil, errors.New("receiver: Host, Effector and Store are required")
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 64
	}
	if opts.ReconcileEvery == 0 {
		opts.ReconcileEvery = 15 * time.Second
	}
	if opts.UnsettledRetries == 0 {
		opts.UnsettledRetries = 2
	}
	if opts.UnsettledPause <= 0 {
		opts.UnsettledPause = time.Second
	}
	e := &Engine{opts: opts, apps: map[string]*appQueue{}, inJournal: map[string]bool{}, logger: opts.Logger, now: opts.Now}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	for _, a := range opts.Apps {
		if err := a.Rules.Validate(); err != nil {
			return nil, fmt.Errorf("receiver: app %s: %w", a.Name, err)
		}
		e.apps[a.Name] = &appQueue{app: a, wake: make(chan struct{}, 1)}
	}
	if err := opts.Global.Validate(); err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	e.st = opts.Store.Load()
	e.stats.init(e.appNames())
	e.stats.stateCorrupt = opts.Store.Corrupt()
	if opts.Journal != nil {
		left, err := opts.Journal.Load()
		if err != nil {
			// A journal that cannot be read loses queued alerts, never
			// adds actions: their keys may be decided again on a re-send,
			// still behind the cooldowns of the saved state.
			e.logger.Error("queued alerts of the last run lost: journal unreadable", "err", err)
			e.stats.journalLost++
		}
		dropped := 0
		for _, a := range left {
			q, ok := e.apps[a.App]
			if !ok || e.queued >= opts.QueueSize || e.inJournal[a.Key()] {
				dropped++ // no rules for the app any more, or a smaller queue: never more actions
				continue
			}
			q.queue = append(q.queue, a)
			e.journal = append(e.journal, a)
			e.inJournal[a.Key()] = true
			e.queued++
		}
		if len(left) > 0 {
			e.logger.Info("alerts queued by the last run queued again", "queued", e.queued, "dropped", dropped)
		}
	}
	return e, nil
}

func (e *Engine) appNames() []string {
	names := make([]string, 0, len(e.apps))
	for n := range e.apps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Known reports whether the receiver has rules for app (the webhook's
// app check together with the host's).
func (e *Engine) Known(app string) bool {
	_, ok := e.apps[app]
	return ok
}

var (
	_ webhook.Intake   = (*Engine)(nil)
	_ webhook.Observer = (*Engine)(nil)
)

// Submit implements webhook.Intake: it records the alerts of one request
// durably and queues them for their apps' workers; it performs nothing. A
// duplicate of an alert already decided (its key not expired) or already
// queued is counted and not queued again. Alerts the webhook ignored are
// counted by their reason. When the new alerts do not fit in the queue
// nothing is recorded and the error wraps ErrQueueFull; when they cannot
// be made durable it wraps ErrNotRecorded; both wrap
// webhook.ErrUnavailable (503), so Alertmanager retries, and the retry is
// deduplicated against whatever was recorded before.
func (e *Engine) Submit(_ context.Context, alerts []intent.Alert, ignored []webhook.Ignored) (webhook.Receipt, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for _, ig := range ignored {
		e.stats.alert(ig.Alert.Status, string(ig.Reason))
	}
	var r webhook.Receipt
	var fresh, dups []intent.Alert
	for _, a := range alerts {
		switch {
		case !a.Firing():
			e.stats.alert(a.Status, string(webhook.ReasonResolved))
		case e.apps[a.App] == nil:
			e.stats.alert(a.Status, string(webhook.ReasonUnknownApp))
		case e.st.Seen(a.Key(), now) || e.isQueued(a.Key()) || containsKey(fresh, a.Key()):
			r.Deduplicated++
			dups = append(dups, a)
		default:
			fresh = append(fresh, a)
		}
	}
	if len(fresh) > 0 {
		if e.queued+len(fresh) > e.opts.QueueSize {
			e.stats.queueFull++
			for _, a := range fresh {
				e.stats.alert(a.Status, "queue_full")
			}
			return webhook.Receipt{}, fmt.Errorf("%d new alerts, %d of %d queued: %w: %w",
				len(fresh), e.queued, e.opts.QueueSize, ErrQueueFull, webhook.ErrUnavailable)
		}
		next := append(slices.Clone(e.journal), fresh...)
		if e.opts.Journal != nil {
			if err := e.opts.Journal.Save(next); err != nil {
				e.logger.Error("alerts not recorded: journal write failed", "err", err)
				return webhook.Receipt{}, fmt.Errorf("%w: %w: %w", ErrNotRecorded, webhook.ErrUnavailable, err)
			}
		}
		e.journal = next
		for _, a := range fresh {
			e.inJournal[a.Key()] = true
			q := e.apps[a.App]
			q.queue = append(q.queue, a)
			e.queued++
			e.stats.alert(a.Status, "queued")
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
		r.Queued = len(fresh)
	}
	for _, a := range dups {
		e.stats.alert(a.Status, "deduplicated")
		e.stats.decision(a.App, a.Action, intent.OutcomeDeduplicated)
	}
	return r, nil
}

// Request implements webhook.Observer: one request answered with code.
func (e *Engine) Request(code int) {
	e.mu.Lock()
	e.stats.requests[code]++
	e.mu.Unlock()
}

// Truncated implements webhook.Observer: Alertmanager's max_alerts left n
// alerts out of a notification.
func (e *Engine) Truncated(n uint64) {
	e.mu.Lock()
	e.stats.truncated += n
	e.mu.Unlock()
}

func containsKey(as []intent.Alert, key string) bool {
	return slices.ContainsFunc(as, func(a intent.Alert) bool { return a.Key() == key })
}

// isQueued reports whether an alert with key is queued or in flight.
// Callers hold e.mu.
func (e *Engine) isQueued(key string) bool { return e.inJournal[key] }

// Run runs one worker per app until ctx ends, and waits for them.
func (e *Engine) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, name := range e.appNames() {
		q := e.apps[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.work(ctx, q)
		}()
	}
	wg.Wait()
}

func (e *Engine) work(ctx context.Context, q *appQueue) {
	var tick <-chan time.Time
	if e.opts.ReconcileEvery > 0 {
		t := time.NewTicker(e.opts.ReconcileEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		for e.Step(ctx, q.app.Name) {
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-tick:
			e.Reconcile(ctx, q.app.Name)
		}
	}
}

// Step decides and performs the next queued alert of app, and reports
// whether there was one. Run calls it; tests call it to step the engine.
func (e *Engine) Step(ctx context.Context, app string) bool {
	q := e.apps[app]
	if q == nil || ctx.Err() != nil {
		return false
	}
	e.mu.Lock()
	if len(q.queue) == 0 {
		e.mu.Unlock()
		return false
	}
	a := q.queue[0]
	q.queue = q.queue[1:]
	q.inflight = &a
	pending := make([]intent.Action, 0, len(q.queue))
	for _, p := range q.queue {
		pending = append(pending, p.Action)
	}
	e.mu.Unlock()

	view, obs := e.observe(ctx, app, a.Action)
	// Bounded: at most UnsettledRetries more reads of at most a second
	// each, in this app's worker only; other apps are not held up.
	for try := 0; view.Unsettled != "" && try < e.opts.UnsettledRetries && e.pause(ctx, e.opts.UnsettledPause); try++ {
		view, obs = e.observe(ctx, app, a.Action)
	}
	obs.Pending = pending
	e.mu.Lock()
	d := policy.Decide(e.now(), a, q.app.Rules, e.opts.Global, e.st, obs)
	d.ID = newID()
	before := e.st.App(app).Clone()
	policy.Apply(&e.st, d, q.app.Rules, e.opts.Global)
	err := e.save()
	e.mu.Unlock()
	if err != nil {
		// The decision is not durable: acting on it could act twice after
		// a restart, so it is recorded as failed and nothing is done.
		d.Outcome, d.Reason = intent.OutcomeFailed, "the state could not be saved: "+err.Error()
	}
	e.record(d)
	if d.Perform() && err == nil {
		e.perform(ctx, q, d, view, before)
	}
	e.finish(q, a)
	return true
}

// pause waits d unless ctx ends first; it reports whether it waited.
func (e *Engine) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// observe reads the host's view of app (with the live worker count for a
// scale) and the guard's answer for act.
func (e *Engine) observe(ctx context.Context, app string, act intent.Action) (intent.AppView, policy.Observed) {
	view, ok := e.opts.Host.Lookup(app)
	if !ok {
		view = intent.AppView{Name: app, Workers: -1}
	}
	if ok && (act == intent.ScaleUp || act == intent.ScaleDown) {
		view = e.liveCount(ctx, view)
	}
	obs := policy.Observed{App: view}
	// An unsettled count decides nothing (rule 10): the guard's CPU check
	// would take its measuring window for nothing.
	if e.opts.Guard != nil && ok && view.Unsettled == "" {
		obs.Refusal, obs.Evidence = e.opts.Guard.Check(ctx, app, act)
	}
	return view, obs
}

// liveCount replaces view's worker count, the host's last background
// sample, with the effector's reading of /proc now, once it settled. A
// scale's target is that count plus or minus one, and its verification
// waits for the target in /proc: a sample taken before the receiver's own
// last scale, or in the milliseconds a timed-out worker is being replaced,
// is short of what Gunicorn runs, so its target is a count already
// running and "verifies" at once, while the TTIN takes Gunicorn one past
// it (past max_workers, too). An unreadable count is unknown (-1): rule 10
// then refuses; one that never settled is unknown and Unsettled: rule 10
// decides nothing.
func (e *Engine) liveCount(ctx context.Context, view intent.AppView) intent.AppView {
	if view.Master.PID <= 1 {
		return view // no master to read; rule 10 refuses
	}
	c, err := e.opts.Effector.Workers(ctx, view)
	switch {
	case errors.Is(err, verify.ErrUnsettled):
		e.logger.Info("live worker count did not settle", "app", view.Name, "reads", c.Reads, "err", err)
		view.Workers, view.Booting, view.Unsettled = -1, 0, err.Error()
		return view
	case err != nil:
		e.logger.Warn("live worker count not read", "app", view.Name, "err", err)
		view.Workers, view.Booting = -1, 0
		return view
	}
	e.logger.Debug("live worker count", "app", view.Name, "workers", c.Workers, "reads", c.Reads, "unsteady", c.Unsteady)
	view.Workers, view.Booting, view.SampledAt = c.Workers, c.Workers-c.Booted, e.now()
	return view
}

// perform runs an acted decision and records its verification. before is
// the app's policy state before the decision was applied: a decision that
// was not sent after all (unsettled) is withdrawn to it.
func (e *Engine) perform(ctx context.Context, q *appQueue, d policy.Decision, view intent.AppView, before policy.AppState) {
	eff := e.opts.Effector.Perform(ctx, d, view, q.app.Unit)
	e.mu.Lock()
	now := e.now()
	if eff.Outcome == intent.OutcomeUnsettled {
		policy.Withdraw(&e.st, d, before)
	} else {
		policy.Settle(&e.st, d, eff.Outcome, eff.Workers, now)
	}
	if err := e.save(); err != nil {
		e.logger.Error("state not saved after verification", "app", d.App, "err", err)
	}
	if eff.Outcome == intent.OutcomeVerified || eff.Outcome == intent.OutcomeVerificationFailed {
		e.stats.lastAction(d.App, d.Action, d.At) // it was sent; a failed or kill-switched one was not
	}
	e.mu.Unlock()
	// The verification's line is the decision's, with what became of it:
	// its workers are the count seen then (-1 unknown), never the count
	// the decision stepped from, which its acted line already says.
	v := d
	v.ID, v.Verifies = newID(), d.ID
	v.At, v.Outcome, v.Refusal, v.Evidence, v.Workers = now, eff.Outcome, eff.Refusal, eff.Evidence, eff.Workers
	e.record(v)
}

// finish drops a from the journal once it was decided (and performed).
func (e *Engine) finish(q *appQueue, a intent.Alert) {
	e.mu.Lock()
	defer e.mu.Unlock()
	q.inflight = nil
	e.queued--
	key := a.Key()
	i := slices.IndexFunc(e.journal, func(j intent.Alert) bool { return j.Key() == key })
	if i < 0 {
		return
	}
	next := slices.Delete(slices.Clone(e.journal), i, i+1)
	if e.opts.Journal != nil {
		if err := e.opts.Journal.Save(next); err != nil {
			// Left in the journal, a restart decides it again: the key it
			// was decided under dedups it.
			e.logger.Error("decided alert left in the journal", "app", a.App, "err", err)
		}
	}
	e.journal = next
	delete(e.inJournal, key)
}

// Reconcile re-applies app's desired worker count once when a HUP or a new
// master reset it (policy.Reconcile), unless alerts are queued for the
// app. Run calls it every ReconcileEvery; tests call it directly.
func (e *Engine) Reconcile(ctx context.Context, app string) {
	q := e.apps[app]
	if q == nil {
		return
	}
	e.mu.Lock()
	busy := len(q.queue) > 0
	e.mu.Unlock()
	if busy {
		return
	}
	view, found := e.opts.Host.Lookup(app)
	if !found {
		view = intent.AppView{Name: app, Workers: -1}
	}
	obs := policy.Observed{App: view}
	e.mu.Lock()
	d, ok := policy.Reconcile(e.now(), app, q.app.Rules, e.opts.Global, e.st, obs)
	e.mu.Unlock()
	if ok && found {
		// The host's sample says there is a step to take: take it from
		// the live count (liveCount), which may also say there is none.
		view = e.liveCount(ctx, view)
		obs.App = view
		e.mu.Lock()
		d, ok = policy.Reconcile(e.now(), app, q.app.Rules, e.opts.Global, e.st, obs)
		e.mu.Unlock()
	}
	if ok && d.Perform() && found && e.opts.Guard != nil {
		// Only a step that would act asks the guard (its CPU check takes a
		// measuring window), with the step's own action.
		obs.Refusal, obs.Evidence = e.opts.Guard.Check(ctx, app, d.Action)
	}
	e.mu.Lock()
	d, ok = policy.Reconcile(e.now(), app, q.app.Rules, e.opts.Global, e.st, obs)
	if !ok {
		q.lastRecon, q.lastRefusal = "", ""
		e.mu.Unlock()
		return
	}
	d.ID = newID()
	changed := d.Outcome != q.lastRecon || d.Refusal != q.lastRefusal
	q.lastRecon, q.lastRefusal = d.Outcome, d.Refusal
	before := e.st.App(app).Clone()
	policy.Apply(&e.st, d, q.app.Rules, e.opts.Global)
	err := e.save()
	e.mu.Unlock()
	if err != nil {
		d.Outcome, d.Reason = intent.OutcomeFailed, "the state could not be saved: "+err.Error()
	}
	if d.Perform() || changed {
		e.record(d)
	}
	if d.Perform() && err == nil {
		e.perform(ctx, q, d, view, before)
	}
}

// newID names one audit line: 64 random bits in hex, unique across
// restarts and hosts without a counter to keep. A verification line
// carries the acted line's in Verifies, so the two pair without relying on
// their order or on the last acted line of the file being its own.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// save writes the state. Callers hold e.mu.
func (e *Engine) save() error {
	return e.opts.Store.Save(e.st, e.now())
}

// record writes d to the audit log and counts it.
func (e *Engine) record(d policy.Decision) {
	if e.opts.Audit != nil {
		if err := e.opts.Audit.Record(d); err != nil {
			e.logger.Error("decision not audited", "app", d.App, "action", string(d.Action), "outcome", string(d.Outcome), "err", err)
			e.mu.Lock()
			e.stats.auditErrors++
			e.mu.Unlock()
		}
	}
	e.logger.Info("remediation decision", "id", d.ID, "verifies", d.Verifies, "app", d.App, "action", string(d.Action),
		"outcome", string(d.Outcome), "rule", d.Rule, "reason", d.Reason, "workers", d.Workers, "target", d.Target)
	e.mu.Lock()
	e.stats.decision(d.App, d.Action, d.Outcome)
	e.mu.Unlock()
}
