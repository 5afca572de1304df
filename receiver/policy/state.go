package policy

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// State is everything the policy remembers between decisions, for all
// apps. It is plain data that receiver/state saves as JSON; the zero value
// is an empty state. It is not safe for concurrent use: the engine owns it
// under its own lock.
type State struct {
	// Keys maps an idempotency key (intent.Alert.Key) to when it expires.
	Keys map[string]time.Time `json:"keys,omitempty"`
	// Acted are the times of recent actions on any app, for the global
	// rate limit (pruned to Global.RateWindow).
	Acted []time.Time `json:"acted,omitempty"`
	// Apps holds each app's state by name.
	Apps map[string]AppState `json:"apps,omitempty"`
	// FailSafeSince is set when the saved state was found corrupt: from
	// then on every action cools down for one cooldown (scale) or one
	// budget window (reload, restart), since what was done before is
	// unknown. It is saved, so a crash loop does not shorten it.
	FailSafeSince time.Time `json:"fail_safe_since,omitzero"`
}

// AppState is what the policy remembers about one app.
type AppState struct {
	// Paused is set by a person (remediation pause APP).
	Paused bool `json:"paused,omitempty"`
	// CircuitOpen is set when the reload/restart budget was exhausted, at
	// CircuitSince; only a person closes it (ResetCircuit).
	CircuitOpen  bool      `json:"circuit_open,omitempty"`
	CircuitSince time.Time `json:"circuit_since,omitzero"`
	// LastActed is when each action last acted on the app (cooldown and
	// grace).
	LastActed map[intent.Action]time.Time `json:"last_acted,omitempty"`
	// Spent are the times reloads and restarts acted, pruned to the budget
	// window.
	Spent []time.Time `json:"spent,omitempty"`
	// ScaleUpWanted is when a firing scale-up alert was last decided,
	// whatever became of it (stabilisation).
	ScaleUpWanted time.Time `json:"scale_up_wanted,omitzero"`
	// Desired is the worker count the receiver last scaled to (0: it never
	// scaled the app), set at DesiredAt. A HUP or a new master after
	// DesiredAt resets Gunicorn to its --workers; Reconcile re-applies it.
	Desired   int       `json:"desired,omitempty"`
	DesiredAt time.Time `json:"desired_at,omitzero"`
}

// App returns the state of app (the zero AppState when none is kept).
func (s State) App(app string) AppState {
	return s.Apps[app]
}

// Clone returns a copy of a that shares nothing with it (Apply changes
// LastActed in place).
func (a AppState) Clone() AppState {
	a.LastActed = maps.Clone(a.LastActed)
	a.Spent = slices.Clone(a.Spent)
	return a
}

func (s *State) setApp(app string, a AppState) {
	if s.Apps == nil {
		s.Apps = make(map[string]AppState)
	}
	s.Apps[app] = a
}

// Seen reports whether key was decided and has not expired at now. The
// engine may call it at intake to answer a duplicate without queueing it.
func (s State) Seen(key string, now time.Time) bool {
	exp, ok := s.Keys[key]
	return ok && now.Before(exp)
}

// Pause stops all remediation of app until Resume.
func Pause(s *State, app string) {
	a := s.App(app)
	a.Paused = true
	s.setApp(app, a)
}

// Resume undoes Pause.
func Resume(s *State, app string) {
	a := s.App(app)
	a.Paused = false
	s.setApp(app, a)
}

// ResetCircuit closes app's circuit and forgets its spent budget, so the
// next reload or restart starts a new budget instead of reopening the
// circuit at once (a counter that is never reset re-trips immediately).
// Cooldowns stay.
func ResetCircuit(s *State, app string) {
	a := s.App(app)
	a.CircuitOpen = false
	a.CircuitSince = time.Time{}
	a.Spent = nil
	s.setApp(app, a)
}

// Prune drops expired keys and the action times outside their windows,
// each app's budget with its own rules. Apply prunes as it goes; the
// engine may call Prune before saving a state that was idle for long.
func Prune(s *State, g Global, rules func(app string) Rules, now time.Time) {
	pruneKeys(s, g, now)
	for name, a := range s.Apps {
		a.Spent = within(a.Spent, now, rules(name).WithDefaults().BudgetWindow)
		s.Apps[name] = a
	}
}

// pruneKeys drops expired keys and the global action times outside the
// rate window.
func pruneKeys(s *State, g Global, now time.Time) {
	for k, exp := range s.Keys {
		if !now.Before(exp) {
			delete(s.Keys, k)
		}
	}
	s.Acted = within(s.Acted, now, g.WithDefaults().RateWindow)
}

// capKeys forgets the keys closest to expiry when there are more than limit,
// down to 90% of limit so that a flood sorts once per limit/10 keys, not once
// per key.
func capKeys(s *State, limit int) {
	if len(s.Keys) <= limit {
		return
	}
	type kv struct {
		k   string
		exp time.Time
	}
	all := make([]kv, 0, len(s.Keys))
	for k, exp := range s.Keys {
		all = append(all, kv{k, exp})
	}
	slices.SortFunc(all, func(a, b kv) int {
		if c := a.exp.Compare(b.exp); c != 0 {
			return c
		}
		return strings.Compare(a.k, b.k)
	})
	for _, e := range all[:len(all)-limit*9/10] {
		delete(s.Keys, e.k)
	}
}

// within returns the times of ts after now-window, in place.
func within(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	keep := ts[:0]
	for _, t := range ts {
		if now.Sub(t) < window {
			keep = append(keep, t)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	return keep
}

// count returns how many of ts are after now-window.
func count(ts []time.Time, now time.Time, window time.Duration) int {
	n := 0
	for _, t := range ts {
		if now.Sub(t) < window {
			n++
		}
	}
	return n
}
