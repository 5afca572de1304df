package deploy

import (
	"sync"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// MaxApps bounds how many apps a Detector remembers, so masters that come
// and go under ever new names cannot grow it without end; the app seen
// least recently is forgotten first.
const MaxApps = 256

// Detector remembers the last observation of each app and turns a change
// into timeline events. It is safe for concurrent use.
type Detector struct {
	opts Options
	tl   *timeline.Timeline

	mu   sync.Mutex
	last map[string]entry
}

type entry struct {
	target Target
	state  State
	seen   time.Time
}

// NewDetector returns a detector appending its markers to tl.
func NewDetector(tl *timeline.Timeline, opts Options) *Detector {
	return &Detector{opts: opts, tl: tl, last: map[string]entry{}}
}

// Check observes app's target and appends one timeline event per change
// since the previous Check of the same app and target; it returns them. A
// new target (another directory, another marker file) is a new baseline,
// not a deploy. now stamps events whose change has no file time, and
// bounds those that have one: a change is never dated before the previous
// observation nor after now.
func (d *Detector) Check(app string, t Target, now time.Time) ([]timeline.Event, error) {
	st, err := Observe(d.opts, t)
	d.mu.Lock()
	prev, known := d.last[app]
	next := entry{target: t, state: keep(prev.state, st, known && prev.target == t), seen: now}
	d.last[app] = next
	if len(d.last) > MaxApps {
		d.forgetOldestLocked()
	}
	d.mu.Unlock()
	if !known || prev.target != t {
		return nil, err
	}
	var out []timeline.Event
	for _, c := range Compare(prev.state, next.state) {
		at := c.Time
		if at.IsZero() || at.After(now) {
			at = now
		}
		if at.Before(prev.seen) {
			at = prev.seen
		}
		ev := Event(app, c.Kind, c.Detail, map[string]string{"from": c.From, "to": c.To})
		ev.Time = at
		if d.tl != nil {
			ev.Seq = d.tl.Append(ev)
		}
		out = append(out, ev)
	}
	return out, err
}

// Event builds a deploy marker event; kind is a Kind* constant.
func Event(app, kind, detail string, attrs map[string]string) timeline.Event {
	return timeline.Event{App: app, Source: timeline.SourceDeploy, Kind: timeline.KindDeploy, Cause: kind, Detail: detail, Attrs: attrs}
}

// keep fills the parts of next that could not be read this time with
// their last known value, so a failed read is never a change.
func keep(prev, next State, same bool) State {
	if !same {
		return next
	}
	if next.Release == "" {
		next.Release, next.ReleaseLink, next.ReleaseTime = prev.Release, prev.ReleaseLink, prev.ReleaseTime
	}
	if next.GitHead == "" {
		next.GitHead, next.GitRef, next.GitTime = prev.GitHead, prev.GitRef, prev.GitTime
	}
	if next.PyMtime.IsZero() {
		next.PyMtime, next.PyNewest = prev.PyMtime, prev.PyNewest
	}
	if !next.MarkerSeen {
		next.Marker, next.MarkerTime, next.MarkerSeen = prev.Marker, prev.MarkerTime, prev.MarkerSeen
	}
	return next
}

// Forget drops what is remembered of app (its master is gone).
func (d *Detector) Forget(app string) {
	d.mu.Lock()
	delete(d.last, app)
	d.mu.Unlock()
}

func (d *Detector) forgetOldestLocked() {
	var oldest string
	var at time.Time
	for app, e := range d.last {
		if oldest == "" || e.seen.Before(at) {
			oldest, at = app, e.seen
		}
	}
	delete(d.last, oldest)
}
