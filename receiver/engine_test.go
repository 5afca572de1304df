package receiver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/audit"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/state"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/verify"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/webhook"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeHost is one app whose worker count the fake effector changes, as a
// Gunicorn master does on TTIN/TTOU.
type fakeHost struct {
	mu      sync.Mutex
	workers int
}

func (h *fakeHost) Lookup(app string) (intent.AppView, bool) {
	if app != "shop" {
		return intent.AppView{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return intent.AppView{Name: app, Workers: h.workers, DataFresh: true, ConfiguredWorkers: 2,
		Master: procinfo.Identity{PID: 4242, StartTicks: 1}}, true
}

type fakeEffector struct {
	host      *fakeHost
	mu        sync.Mutex
	performed []policy.Decision
}

func (f *fakeEffector) Perform(_ context.Context, d policy.Decision, _ intent.AppView, _ string) Effect {
	f.mu.Lock()
	f.performed = append(f.performed, d)
	f.mu.Unlock()
	f.host.mu.Lock()
	defer f.host.mu.Unlock()
	f.host.workers = d.Target
	return Effect{Outcome: intent.OutcomeVerified, Evidence: "fake", Workers: d.Target}
}

func (f *fakeEffector) Workers(_ context.Context, _ intent.AppView) (verify.Settled, error) {
	f.host.mu.Lock()
	defer f.host.mu.Unlock()
	return settledAt(f.host.workers), nil
}

// settledAt is a count of n booted workers that settled at the first
// reads.
func settledAt(n int) verify.Settled {
	return verify.Settled{Sample: verify.Sample{Workers: n, Booted: n}, Reads: 2}
}

func (f *fakeEffector) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.performed)
}

type rig struct {
	dir   string
	clock *clock
	host  *fakeHost
	eff   *fakeEffector
	store *state.Store
	audit *audit.Writer
	e     *Engine
}

func newRig(t *testing.T, dir string, queue int) *rig {
	t.Helper()
	r := &rig{dir: dir, clock: &clock{now: t0}, host: &fakeHost{workers: 2}}
	r.eff = &fakeEffector{host: r.host}
	r.open(t, queue)
	return r
}

// open (re)starts the engine over the rig's files, as a restarted
// receiver does.
func (r *rig) open(t *testing.T, queue int) {
	t.Helper()
	var err error
	r.store, err = state.Open(filepath.Join(r.dir, "state.json"), r.clock.Now())
	require.NoError(t, err)
	r.audit, err = audit.Open(filepath.Join(r.dir, "audit.jsonl"), nil)
	require.NoError(t, err)
	r.e, err = New(Options{
		Apps:     []App{{Name: "shop", Rules: policy.Rules{MinWorkers: 2, MaxWorkers: 4, Cooldown: 5 * time.Minute}}},
		Host:     r.host,
		Effector: r.eff,
		Store:    r.store,
		Audit:    r.audit,
		Journal:  NewJournal(filepath.Join(r.dir, "pending.json")),
		Now:      r.clock.Now,
		// The tests step the engine themselves.
		ReconcileEvery: -1,
		QueueSize:      queue,
		UnsettledPause: time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(r.close)
}

func (r *rig) close() {
	r.store.Close()
	r.audit.Close()
}

func scaleUp(startsAt time.Time) intent.Alert {
	return intent.Alert{Fingerprint: "a1b2c3d4e5f60718", Alertname: "GunicornWorkerTimeouts", Status: "firing",
		StartsAt: startsAt, Action: intent.ScaleUp, App: "shop"}
}

func (r *rig) submit(t *testing.T, alerts ...intent.Alert) webhook.Receipt {
	t.Helper()
	rc, err := r.e.Submit(context.Background(), alerts, nil)
	require.NoError(t, err)
	return rc
}

func (r *rig) drain() {
	for r.e.Step(context.Background(), "shop") {
	}
}

func auditOutcomes(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var d policy.Decision
		require.NoError(t, json.Unmarshal(sc.Bytes(), &d))
		out = append(out, string(d.Action)+":"+string(d.Outcome))
	}
	return out
}

// Submit records and queues; it never performs. Retries and a second
// peer's copy of the same alert, before and after the worker ran, are
// deduplicated: one action.
func TestDuplicatesActOnce(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	a := scaleUp(t0.Add(-time.Minute))
	require.Equal(t, webhook.Receipt{Queued: 1}, r.submit(t, a))
	require.Equal(t, 0, r.eff.count(), "no action inside the request")
	require.Equal(t, webhook.Receipt{Deduplicated: 1}, r.submit(t, a), "a retry while the alert is queued")
	require.Equal(t, webhook.Receipt{Deduplicated: 2}, r.submit(t, a, a), "twice in one request")
	b := scaleUp(t0)
	b.Fingerprint = "0f0f0f0f0f0f0f0f"
	require.Equal(t, webhook.Receipt{Queued: 1, Deduplicated: 1}, r.submit(t, b, b), "a new alert twice in one request")
	r.drain()
	require.Equal(t, 1, r.eff.count(), "b is cooling down behind a")
	r.clock.Add(20 * time.Second)
	require.Equal(t, webhook.Receipt{Deduplicated: 1}, r.submit(t, a), "the other peer, 20s later")
	r.drain()
	require.Equal(t, 1, r.eff.count())
	require.Equal(t, []string{"scale_up:acted", "scale_up:verified", "scale_up:cooling_down"}, auditOutcomes(t, filepath.Join(r.dir, "audit.jsonl")))
	st := r.e.Stats()
	require.Equal(t, uint64(5), st.Decisions[DecisionKey{"shop", intent.ScaleUp, intent.OutcomeDeduplicated}])
	require.Equal(t, uint64(1), st.Decisions[DecisionKey{"shop", intent.ScaleUp, intent.OutcomeVerified}])
	require.Equal(t, 3, r.e.Status()[0].Desired)
	require.Equal(t, t0, st.LastAction[DecisionKey{App: "shop", Action: intent.ScaleUp}])
}

// A re-sent alert with a new startsAt (HA peers may disagree, or it
// resolved and fired again) inside the cooldown does not act; after the
// cooldown it acts once more, up to max_workers and no further.
func TestOneStepPerCooldownUpToMax(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	for range 5 {
		r.submit(t, scaleUp(r.clock.Now().Add(-time.Second)))
		r.drain()
		r.clock.Add(time.Minute)
		r.submit(t, scaleUp(r.clock.Now().Add(-time.Second)))
		r.drain()
		r.clock.Add(5 * time.Minute)
	}
	require.Equal(t, 2, r.eff.count(), "2 -> 3 -> 4, then max_workers")
	require.Equal(t, 4, r.host.workers)
	out := auditOutcomes(t, filepath.Join(r.dir, "audit.jsonl"))
	require.Equal(t, []string{
		"scale_up:acted", "scale_up:verified", "scale_up:cooling_down",
		"scale_up:acted", "scale_up:verified", "scale_up:cooling_down",
		// At max_workers nothing acts, so no cooldown starts either.
		"scale_up:out_of_bounds", "scale_up:out_of_bounds", "scale_up:out_of_bounds", "scale_up:out_of_bounds",
		"scale_up:out_of_bounds", "scale_up:out_of_bounds",
	}, out)
}

// A full queue records nothing of the request and asks for a retry (503).
func TestQueueFullRecordsNothing(t *testing.T) {
	r := newRig(t, t.TempDir(), 1)
	r.submit(t, scaleUp(t0))
	b := scaleUp(t0.Add(time.Second))
	_, err := r.e.Submit(context.Background(), []intent.Alert{b}, nil)
	require.ErrorIs(t, err, ErrQueueFull)
	require.ErrorIs(t, err, webhook.ErrUnavailable)
	require.Equal(t, uint64(1), r.e.Stats().QueueFull)
	r.drain()
	require.Equal(t, 1, r.eff.count())
	// The retry after the queue drained is queued, not deduplicated: the
	// refused request left no trace.
	require.Equal(t, webhook.Receipt{Queued: 1}, r.submit(t, b))
}

// An alert answered 200 but not yet decided when the receiver stops is
// decided after the restart, once; its re-delivery after the restart is
// deduplicated (C10).
func TestRestartKeepsQueuedAndDecided(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir, 8)
	a := scaleUp(t0)
	r.submit(t, a)
	r.close() // stopped before the worker ran
	r.open(t, 8)
	require.Equal(t, webhook.Receipt{Deduplicated: 1}, r.submit(t, a), "still queued after the restart")
	r.drain()
	require.Equal(t, 1, r.eff.count())
	r.close()
	r.open(t, 8)
	require.Equal(t, webhook.Receipt{Deduplicated: 1}, r.submit(t, a), "decided before the restart")
	r.drain()
	require.Equal(t, 1, r.eff.count())
}

// A journal that cannot be decoded loses the queued alerts (counted),
// never adds actions, and is kept aside.
func TestCorruptJournal(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pending.json"), []byte(`{"version":1,"alerts":[`), 0o600))
	r := newRig(t, dir, 8)
	require.Equal(t, uint64(1), r.e.Stats().JournalLost)
	require.FileExists(t, filepath.Join(dir, "pending.json.corrupt"))
	r.drain()
	require.Equal(t, 0, r.eff.count())
}

// Pause, resume and reset-circuit are saved; a paused app does nothing.
func TestPauseIsDurable(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir, 8)
	require.NoError(t, r.e.Pause("shop"))
	require.ErrorIs(t, r.e.Pause("nope"), ErrUnknownApp)
	r.close()
	r.open(t, 8)
	require.True(t, r.e.Status()[0].Paused)
	r.submit(t, scaleUp(t0))
	r.drain()
	require.Equal(t, 0, r.eff.count())
	require.NoError(t, r.e.Resume("shop"))
	r.submit(t, scaleUp(t0.Add(time.Second)))
	r.drain()
	require.Equal(t, 1, r.eff.count())
	require.NoError(t, r.e.ResetCircuit("shop"))
	require.Equal(t, []string{"scale_up:paused", "scale_up:acted", "scale_up:verified"}, auditOutcomes(t, filepath.Join(dir, "audit.jsonl")))
}

// A HUP resets Gunicorn to its --workers; Reconcile steps back to the
// desired count, one worker per step.
func TestReconcileAfterHUP(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	r.submit(t, scaleUp(t0))
	r.drain()
	require.Equal(t, 3, r.host.workers)
	r.clock.Add(time.Minute)
	r.e.Reconcile(context.Background(), "shop")
	require.Equal(t, 1, r.eff.count(), "no reset yet: nothing to re-apply")

	r.host.mu.Lock()
	r.host.workers = 2 // what a HUP does
	r.host.mu.Unlock()
	hup := r.clock.Now()
	r.e.opts.Host = hupHost{r.host, hup}
	r.clock.Add(time.Second)
	r.e.Reconcile(context.Background(), "shop")
	require.Equal(t, 2, r.eff.count())
	require.Equal(t, 3, r.host.workers)
	r.e.Reconcile(context.Background(), "shop")
	require.Equal(t, 2, r.eff.count(), "back at the desired count")
}

type hupHost struct {
	*fakeHost
	at time.Time
}

func (h hupHost) Lookup(app string) (intent.AppView, bool) {
	v, ok := h.fakeHost.Lookup(app)
	v.LastReload = h.at
	return v, ok
}

// lagHost is the fake host seen through a background sample that still
// says sampled workers, with a HUP at reload (zero: none).
type lagHost struct {
	*fakeHost
	sampled int
	reload  time.Time
}

func (h lagHost) Lookup(app string) (intent.AppView, bool) {
	v, ok := h.fakeHost.Lookup(app)
	v.Workers, v.LastReload = h.sampled, h.reload
	return v, ok
}

// A decision and a reconcile step count the workers the effector reads
// live, not the host's older sample: from a sample one short, the scale's
// target would be the count already running.
func TestDecisionsCountLiveWorkers(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	r.host.workers = 3 // live; the host's last sample still says 2
	r.e.opts.Host = lagHost{fakeHost: r.host, sampled: 2}
	r.submit(t, scaleUp(t0))
	r.drain()
	lines := auditLines(t, filepath.Join(r.dir, "audit.jsonl"))
	require.Len(t, lines, 2)
	require.Equal(t, [2]int{3, 4}, [2]int{lines[0].Workers, lines[0].Target}, "acted from the live count")
	require.Equal(t, 4, r.host.workers)

	// A HUP reset the count, a reconcile step (or a person) already
	// restored it, and the host's sample is from before that.
	r.clock.Add(time.Minute)
	r.e.opts.Host = lagHost{fakeHost: r.host, sampled: 3, reload: r.clock.Now()}
	r.clock.Add(time.Second)
	r.e.Reconcile(context.Background(), "shop")
	require.Equal(t, 1, r.eff.count(), "the live count is the desired one: no step")
	require.Len(t, auditLines(t, filepath.Join(r.dir, "audit.jsonl")), 2)
}

// A state that cannot be saved is never acted on.
func TestNoActionWithoutDurableState(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	r.e.opts.Store = failingStore{r.store}
	r.submit(t, scaleUp(t0))
	r.drain()
	require.Equal(t, 0, r.eff.count())
	require.Equal(t, uint64(1), r.e.Stats().Decisions[DecisionKey{"shop", intent.ScaleUp, intent.OutcomeFailed}])
}

type failingStore struct{ *state.Store }

func (failingStore) Save(policy.State, time.Time) error { return errors.New("disk full") }

type refusingGuard struct{ calls int }

func (g *refusingGuard) Check(context.Context, string, intent.Action) (intent.Refusal, string) {
	g.calls++
	return intent.RefuseCPUSaturated, "cores 100% busy"
}

// A reconcile step the guard refuses is audited once, not at every tick,
// and the guard is asked only when a step would act.
func TestReconcileRefusalAuditedOnce(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	r.submit(t, scaleUp(t0))
	r.drain()
	g := &refusingGuard{}
	r.e.opts.Guard = g
	r.e.Reconcile(context.Background(), "shop")
	require.Zero(t, g.calls, "nothing to re-apply: the guard is not asked")
	r.clock.Add(time.Minute)
	r.host.mu.Lock()
	r.host.workers = 2
	r.host.mu.Unlock()
	r.e.opts.Host = hupHost{r.host, r.clock.Now()}
	r.clock.Add(time.Second)
	for range 3 {
		r.e.Reconcile(context.Background(), "shop")
	}
	require.Equal(t, 3, g.calls)
	require.Equal(t, 1, r.eff.count())
	require.Equal(t, []string{"scale_up:acted", "scale_up:verified", "scale_up:refused"}, auditOutcomes(t, filepath.Join(r.dir, "audit.jsonl")))
}

// blockingEffector holds every action until released, as a slow restart
// does.
type blockingEffector struct {
	fakeEffector
	started chan struct{}
	release chan struct{}
}

func (b *blockingEffector) Perform(ctx context.Context, d policy.Decision, v intent.AppView, unit string) Effect {
	b.started <- struct{}{}
	<-b.release
	return b.fakeEffector.Perform(ctx, d, v, unit)
}

// C11: while an action is in flight, deliveries are answered at once and
// deduplicated; one action per app at a time.
func TestSlowActionKeepsIntakeAnswering(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	be := &blockingEffector{fakeEffector: fakeEffector{host: r.host}, started: make(chan struct{}, 1), release: make(chan struct{})}
	r.e.opts.Effector = be
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	a := scaleUp(t0)
	r.submit(t, a)
	<-be.started // in flight now
	for range 10 {
		require.Equal(t, webhook.Receipt{Deduplicated: 1}, r.submit(t, a))
	}
	require.Equal(t, intent.ScaleUp, r.e.Status()[0].InFlight)
	close(be.release)
	require.Eventually(t, func() bool { return r.e.Status()[0].InFlight == "" }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, be.count())
}

// D6: a scale-up queued together with a
// restart of the same app is superseded; the restart acts.
func TestRestartSupersedesQueuedScale(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir, 8)
	r.close()
	var err error
	r.store, err = state.Open(filepath.Join(dir, "state2.json"), r.clock.Now())
	require.NoError(t, err)
	r.audit, err = audit.Open(filepath.Join(dir, "audit2.jsonl"), nil)
	require.NoError(t, err)
	r.e, err = New(Options{
		Apps: []App{{Name: "shop", Unit: "gunicorn-shop.service", Rules: policy.Rules{MinWorkers: 2, MaxWorkers: 4,
			Allow: []intent.Action{intent.ScaleUp, intent.Restart}}}},
		Host: r.host, Effector: r.eff, Store: r.store, Audit: r.audit, Now: r.clock.Now, ReconcileEvery: -1,
	})
	require.NoError(t, err)
	restart := scaleUp(t0)
	restart.Action, restart.Fingerprint = intent.Restart, "ffffeeeeddddcccc"
	r.submit(t, scaleUp(t0), restart)
	r.drain()
	require.Equal(t, []string{"scale_up:superseded", "restart:acted", "restart:verified"}, auditOutcomes(t, filepath.Join(dir, "audit2.jsonl")))
	require.Equal(t, intent.Restart, r.eff.performed[0].Action)
}

// D13: a receiver restarting over and over while a reload alert keeps
// firing (a new alert each time) stays within the persisted budget, and the
// circuit it opened stays open across restarts.
func TestCrashLoopKeepsBudget(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: t0}
	host := &fakeHost{workers: 2}
	eff := &fakeEffector{host: host}
	for i := range 6 {
		store, err := state.Open(filepath.Join(dir, "state.json"), c.Now())
		require.NoError(t, err)
		aud, err := audit.Open(filepath.Join(dir, "audit.jsonl"), nil)
		require.NoError(t, err)
		e, err := New(Options{
			Apps: []App{{Name: "shop", Rules: policy.Rules{Allow: []intent.Action{intent.Reload},
				Cooldown: time.Minute, Grace: time.Minute, Budget: 2, BudgetWindow: time.Hour}}},
			Host: host, Effector: eff, Store: store, Audit: aud, Journal: NewJournal(filepath.Join(dir, "pending.json")),
			Now: c.Now, ReconcileEvery: -1,
		})
		require.NoError(t, err)
		a := scaleUp(c.Now())
		a.Action, a.Fingerprint = intent.Reload, fmt.Sprintf("%016x", i+1)
		_, err = e.Submit(context.Background(), []intent.Alert{a}, nil)
		require.NoError(t, err)
		for e.Step(context.Background(), "shop") {
		}
		store.Close()
		aud.Close()
		c.Add(2 * time.Minute)
	}
	require.Equal(t, 2, eff.count(), "the budget, across six restarts")
	require.Equal(t, []string{"reload:acted", "reload:verified", "reload:acted", "reload:verified", "reload:budget_exhausted",
		"reload:circuit_open", "reload:circuit_open", "reload:circuit_open"}, auditOutcomes(t, filepath.Join(dir, "audit.jsonl")))
}

// C12 over HTTP: with the queue full the webhook answers 503 (Alertmanager
// retries) and records nothing; the retry after the queue drained is
// queued.
func TestQueueFullIs503(t *testing.T) {
	r := newRig(t, t.TempDir(), 1)
	h, err := webhook.New(webhook.Options{Token: []byte(benchToken), Known: r.e.Known, Identity: []string{"web1.example"}, Observer: r.e}, r.e)
	require.NoError(t, err)
	send := func(fp string) int {
		body := fmt.Sprintf(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"X","app":"shop","reflex_action":"scale_up"},"startsAt":"2026-12-01T09:59:00Z","fingerprint":"%s"}]}`, fp)
		req := httptest.NewRequest(http.MethodPost, "/api/v1/alerts", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+benchToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	require.Equal(t, http.StatusOK, send("00000000000000aa"))
	require.Equal(t, http.StatusServiceUnavailable, send("00000000000000bb"))
	require.Equal(t, http.StatusOK, send("00000000000000aa"), "a duplicate needs no room")
	st := r.e.Stats()
	require.Equal(t, uint64(1), st.QueueFull)
	require.Equal(t, uint64(1), st.Requests[http.StatusServiceUnavailable])
	require.Equal(t, uint64(1), st.Alerts[AlertKey{"firing", "queue_full"}])
	r.drain()
	require.Equal(t, http.StatusOK, send("00000000000000bb"))
	require.Equal(t, 1, r.e.Status()[0].Queued)
}

type killSwitchEffector struct{}

func (k *killSwitchEffector) Perform(context.Context, policy.Decision, intent.AppView, string) Effect {
	return Effect{Outcome: intent.OutcomeDryRun, Evidence: "the kill-switch file exists", Workers: 2}
}

func (k *killSwitchEffector) Workers(context.Context, intent.AppView) (verify.Settled, error) {
	return settledAt(2), nil
}

// An action the kill switch stopped is audited as dry_run and sets no
// last-action time: nothing was sent.
func TestKillSwitchedActionIsNoLastAction(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	r.e.opts.Effector = &killSwitchEffector{}
	r.submit(t, scaleUp(t0))
	r.drain()
	require.Equal(t, []string{"scale_up:acted", "scale_up:dry_run"}, auditOutcomes(t, filepath.Join(r.dir, "audit.jsonl")))
	require.Empty(t, r.e.Stats().LastAction)
	require.Equal(t, 2, r.e.Status()[0].Desired, "the observed count: nothing retries")
}

// Every status code the webhook answers is a series from the start, so the
// shipped ReflexReceiverRejectingRequests alert sees the first 401 after a
// restart (increase() needs a sample before it).
func TestRequestCodesStartAtZero(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	st := r.e.Stats()
	for _, code := range webhook.Codes {
		v, ok := st.Requests[code]
		require.True(t, ok, "code %d", code)
		require.Zero(t, v, "code %d", code)
	}
}

// unknownCountEffector sends nothing and saw no worker count.
type unknownCountEffector struct{ fakeEffector }

func (u *unknownCountEffector) Perform(context.Context, policy.Decision, intent.AppView, string) Effect {
	return Effect{Outcome: intent.OutcomeVerificationFailed, Evidence: "every probe failed", Workers: -1}
}

// Every verification line names the acted line it verifies and repeats
// that decision's action, key, rule, reason, target and reconcile, with the
// count it saw itself; every line has its own id. Between them: a second
// alert cooling down, and a re-apply after a HUP, each a decision of its
// own.
func TestVerificationLinesNameTheirDecision(t *testing.T) {
	r := newRig(t, t.TempDir(), 8)
	r.submit(t, scaleUp(t0))
	r.drain()
	b := scaleUp(t0.Add(time.Second))
	b.Fingerprint = "1111222233334444"
	r.submit(t, b)
	r.drain()
	r.clock.Add(time.Minute)
	r.host.mu.Lock()
	r.host.workers = 2 // what a HUP does
	r.host.mu.Unlock()
	r.e.opts.Host = hupHost{r.host, r.clock.Now()}
	r.clock.Add(time.Second)
	r.e.Reconcile(context.Background(), "shop")
	r.e.opts.Effector = &unknownCountEffector{fakeEffector{host: r.host}}
	r.clock.Add(10 * time.Minute)
	c := scaleUp(r.clock.Now())
	c.Fingerprint = "5555666677778888"
	r.submit(t, c)
	r.drain()

	lines := auditLines(t, filepath.Join(r.dir, "audit.jsonl"))
	var got []string
	byID := map[string]int{}
	for i, l := range lines {
		got = append(got, fmt.Sprintf("%s:%s %d→%d", l.Action, l.Outcome, l.Workers, l.Target))
		require.Len(t, l.ID, 16, "line %d", i)
		require.NotContains(t, byID, l.ID, "ids are unique")
		byID[l.ID] = i
		if l.Verifies == "" {
			continue
		}
		j, ok := byID[l.Verifies]
		require.True(t, ok, "line %d verifies an earlier line", i)
		acted := lines[j]
		require.Equal(t, intent.OutcomeActed, acted.Outcome)
		require.Equal(t, acted.Verifies, "", "a decision verifies nothing")
		require.Equal(t, [6]any{acted.Action, acted.Key, acted.Rule, acted.Reason, acted.Target, acted.Reconcile},
			[6]any{l.Action, l.Key, l.Rule, l.Reason, l.Target, l.Reconcile}, "line %d is about the decision of line %d", i, j)
	}
	require.Equal(t, []string{
		"scale_up:acted 2→3", "scale_up:verified 3→3",
		"scale_up:cooling_down 3→0",
		"scale_up:acted 2→3", "scale_up:verified 3→3", // the re-apply after the HUP
		"scale_up:acted 3→4", "scale_up:verification_failed -1→4", // no count seen: unknown, not the decision's
	}, got)
	require.Equal(t, lines[3].ID, lines[4].Verifies)
	require.True(t, lines[3].Reconcile)
}
