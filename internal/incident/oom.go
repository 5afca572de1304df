package incident

import (
	"fmt"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// OOMLookback is how long before a death the OOM evidence may start: the
// oom_kill counters are compared with their last value observed before
// that point, and kernel log lines older than it are ignored. A minute
// covers the time between the kill and the master logging the exit.
const OOMLookback = time.Minute

// WorkerKill is a worker death by SIGKILL without a timeout, as the error
// log reported it.
type WorkerKill struct {
	App  string
	PID  int       // the dead worker
	Time time.Time // log time of the death
	// MasterPID is the app's master when known (0 otherwise): its memory
	// cgroup is the worker's.
	MasterPID int
}

// OOMQuery is what to ask the OOM evidence about one death.
type OOMQuery struct {
	WorkerPID, MasterPID int
	Since                time.Time
}

// OOMEvidence reads the kernel's and the cgroups' OOM records for q:
// confirmed when they show the kill, evidence saying what was read. err
// reports what could not be read (confirmed is then false).
type OOMEvidence func(q OOMQuery) (confirmed bool, evidence string, err error)

// Appender is where evidence goes (a *timeline.Timeline).
type Appender interface {
	Append(timeline.Event) uint64
}

// QueryFor is the question to ask about k.
func QueryFor(k WorkerKill) OOMQuery {
	return OOMQuery{WorkerPID: k.PID, MasterPID: k.MasterPID, Since: k.Time.Add(-OOMLookback)}
}

// OOMVerdict is the timeline event for k given what the evidence said. A
// death is confirmed only by positive evidence; unreadable evidence leaves
// it suspected and says why in the detail.
func OOMVerdict(k WorkerKill, confirmed bool, evidence string, err error) timeline.Event {
	kind := timeline.KindOOMSuspected
	if confirmed {
		kind = timeline.KindOOMConfirmed
	}
	if err != nil && evidence == "" {
		evidence = fmt.Sprintf("no OOM evidence readable: %v", err)
	}
	return timeline.Event{Time: k.Time, App: k.App, Source: timeline.SourceProc, Kind: kind, PID: k.PID, Detail: evidence}
}

// JudgeOOM asks read about k, appends the verdict to tl and returns it.
func JudgeOOM(read OOMEvidence, tl Appender, k WorkerKill) timeline.Event {
	confirmed, evidence, err := read(QueryFor(k))
	ev := OOMVerdict(k, confirmed, evidence, err)
	tl.Append(ev)
	return ev
}
