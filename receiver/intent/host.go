package intent

import (
	"context"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// Host is the receiver's narrow view of this host: the only way it learns
// about apps, masters and worker counts. internal/appset implements it; the
// receiver never reaches into the collectors' internals.
type Host interface {
	// Lookup returns what the receiver may know about app; ok is false when
	// this host does not know an app of that name.
	Lookup(app string) (AppView, bool)
}

// AppView is one app as the host sees it now.
type AppView struct {
	Name string
	// Master is the master's identity as last verified by discovery; the
	// actuator re-verifies it (with a pidfd held) before any signal.
	// Master.PID is 0 when no master is known.
	Master procinfo.Identity
	// Workers is the live worker count of the last /proc sample, taken at
	// SampledAt; -1 when the workers could not be read. Booting counts
	// those of them that have not booted yet (no first heartbeat).
	Workers   int
	Booting   int
	SampledAt time.Time
	// Unsettled is set, with Workers -1, when the live count a scale
	// steps from kept moving while it was read (workers exiting and being
	// replaced): what /proc showed, for the audit log.
	Unsettled string
	// ConfiguredWorkers is the master's --workers (what a HUP resets the
	// count to); 0 when unknown.
	ConfiguredWorkers int
	// DataFresh is false when the app's error log or /proc is not being read:
	// with no data the receiver does nothing.
	DataFresh bool
	// LastReload is the time of the master's last HUP seen in its log (zero
	// if none): after it Gunicorn reset the count to ConfiguredWorkers.
	LastReload time.Time
}

// Guard answers "would this action help, or make things worse?" before
// the receiver acts. It returns "" when it has no objection, or a Refusal
// and the evidence for it (for the audit log and the timeline). Today's
// implementation reads the collectors' state directly; the incident engine
// will implement it more precisely.
type Guard interface {
	Check(ctx context.Context, app string, a Action) (Refusal, string)
}
