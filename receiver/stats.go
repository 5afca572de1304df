package receiver

import (
	"maps"
	"slices"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/webhook"
)

// DecisionKey labels one series of decision counts.
type DecisionKey struct {
	App     string
	Action  intent.Action
	Outcome intent.Outcome
}

// AlertKey labels one series of alert counts: Status is the alert's
// (firing, resolved) and Result what intake did with it (queued,
// deduplicated, ignored, queue_full, and the webhook's own results).
type AlertKey struct {
	Status, Result string
}

// AppStatus is what the receiver holds about one app right now.
type AppStatus struct {
	App         string    `json:"app"`
	Paused      bool      `json:"paused"`
	CircuitOpen bool      `json:"circuit_open"`
	CircuitAt   time.Time `json:"circuit_since,omitzero"`
	// Desired is the worker count the receiver last scaled to (0: never).
	Desired int `json:"desired_workers"`
	Queued  int `json:"queued"`
	// InFlight is the action being decided or performed ("" none).
	InFlight intent.Action `json:"in_flight,omitempty"`
	// LastAction is when each action last acted (what cooldowns count from).
	LastAction map[intent.Action]time.Time `json:"last_action,omitempty"`
}

// Stats is a snapshot of the receiver for the collector: plain data, so
// no Prometheus type leaves the collector package.
type Stats struct {
	Decisions map[DecisionKey]uint64
	Alerts    map[AlertKey]uint64
	Requests  map[int]uint64 // by HTTP status code
	Apps      []AppStatus
	// LastAction is when each (app, action) last performed (verified or
	// not); absent when never.
	LastAction map[DecisionKey]time.Time
	QueueFull  uint64
	// Truncated counts alerts Alertmanager's max_alerts left out.
	Truncated uint64
	Queued    int
	QueueSize int
	// StateCorrupt is true when the saved state was found corrupt at start:
	// the receiver runs in the fail-safe "everything cooling down" mode.
	StateCorrupt bool
	// AuditErrors counts decisions that could not be written to the audit
	// log; JournalLost is 1 when the queued alerts of the last run were
	// unreadable.
	AuditErrors, JournalLost uint64
}

type stats struct {
	decisions    map[DecisionKey]uint64
	alerts       map[AlertKey]uint64
	requests     map[int]uint64
	lastActed    map[DecisionKey]time.Time
	queueFull    uint64
	truncated    uint64
	auditErrors  uint64
	journalLost  uint64
	stateCorrupt bool
}

// AlertResults is the closed set of intake results, the webhook's reasons
// for ignoring an alert among them; every series is initialised to 0.
var AlertResults = func() []string {
	out := []string{"queued", "deduplicated", "queue_full"}
	for _, r := range webhook.Reasons {
		out = append(out, string(r))
	}
	return out
}()

func (s *stats) init(apps []string) {
	s.decisions = map[DecisionKey]uint64{}
	s.alerts = map[AlertKey]uint64{}
	// Every code the webhook can answer starts at 0, so an alert on
	// increase() sees the first rejection after a restart too.
	s.requests = map[int]uint64{}
	for _, code := range webhook.Codes {
		s.requests[code] = 0
	}
	s.lastActed = map[DecisionKey]time.Time{}
	for _, app := range apps {
		for _, a := range intent.Actions {
			for _, o := range intent.Outcomes {
				s.decisions[DecisionKey{app, a, o}] = 0
			}
		}
	}
	for _, r := range AlertResults {
		s.alerts[AlertKey{"firing", r}] = 0
	}
	s.alerts[AlertKey{"resolved", string(webhook.ReasonResolved)}] = 0
	s.alerts[AlertKey{"invalid", string(webhook.ReasonInvalidAlert)}] = 0
}

func (s *stats) decision(app string, a intent.Action, o intent.Outcome) {
	s.decisions[DecisionKey{app, a, o}]++
}

func (s *stats) alert(status, result string) {
	if status != "firing" && status != "resolved" {
		status = "invalid" // the webhook's invalid_alert: a status outside the two
	}
	s.alerts[AlertKey{status, result}]++
}

func (s *stats) lastAction(app string, a intent.Action, at time.Time) {
	s.lastActed[DecisionKey{App: app, Action: a}] = at
}

// Stats returns a snapshot for the collector.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{
		Decisions:    maps.Clone(e.stats.decisions),
		Alerts:       maps.Clone(e.stats.alerts),
		Requests:     maps.Clone(e.stats.requests),
		LastAction:   maps.Clone(e.stats.lastActed),
		Apps:         e.statusLocked(),
		QueueFull:    e.stats.queueFull,
		Truncated:    e.stats.truncated,
		Queued:       e.queued,
		QueueSize:    e.opts.QueueSize,
		StateCorrupt: e.stats.stateCorrupt,
		AuditErrors:  e.stats.auditErrors,
		JournalLost:  e.stats.journalLost,
	}
}

// statusLocked lists every app's status, sorted by name. Callers hold e.mu.
func (e *Engine) statusLocked() []AppStatus {
	out := make([]AppStatus, 0, len(e.apps))
	for _, name := range e.appNames() {
		q := e.apps[name]
		as := e.st.App(name)
		s := AppStatus{App: name, Paused: as.Paused, CircuitOpen: as.CircuitOpen, CircuitAt: as.CircuitSince,
			Desired: as.Desired, Queued: len(q.queue), LastAction: maps.Clone(as.LastActed)}
		if q.inflight != nil {
			s.InFlight = q.inflight.Action
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b AppStatus) int {
		if a.App < b.App {
			return -1
		}
		if a.App > b.App {
			return 1
		}
		return 0
	})
	return out
}
