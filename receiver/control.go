package receiver

import (
	"fmt"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
)

// Status returns every app's status, sorted by name.
func (e *Engine) Status() []AppStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.statusLocked()
}

// Pause stops all remediation of app until Resume; it is saved, so it
// survives a restart.
func (e *Engine) Pause(app string) error { return e.control(app, "paused", policy.Pause) }

// Resume undoes Pause.
func (e *Engine) Resume(app string) error { return e.control(app, "resumed", policy.Resume) }

// ResetCircuit closes app's circuit after a person looked at why its
// reload/restart budget ran out; the spent budget starts again.
func (e *Engine) ResetCircuit(app string) error {
	return e.control(app, "circuit reset", policy.ResetCircuit)
}

func (e *Engine) control(app, what string, edit func(*policy.State, string)) error {
	if e.apps[app] == nil {
		return fmt.Errorf("%q: %w", app, ErrUnknownApp)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	next := clonePolicyState(e.st)
	edit(&next, app)
	if err := e.opts.Store.Save(next, e.now()); err != nil {
		return fmt.Errorf("%s %s: %w", app, what, err)
	}
	e.st = next
	e.logger.Warn("remediation changed by a person", "app", app, "change", what)
	return nil
}

// clonePolicyState copies st deeply enough that edits of one app's state
// leave the original untouched when the save fails.
func clonePolicyState(st policy.State) policy.State {
	out := st
	if st.Apps != nil {
		out.Apps = make(map[string]policy.AppState, len(st.Apps))
		for k, v := range st.Apps {
			out.Apps[k] = v
		}
	}
	return out
}
