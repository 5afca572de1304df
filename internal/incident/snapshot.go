package incident

import (
	"fmt"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
)

// Snapshot is the collectors' state of one app at one moment, as plain
// data: what the engine samples at each step (EngineOptions.Snapshot).
type Snapshot struct {
	// Sampled is false when no /proc sample of the app is available; the
	// worker fields are then meaningless.
	Sampled bool
	// Timeout is the app's worker timeout (0: unknown or disabled).
	Timeout time.Duration
	// Workers live, Busy inside a request (sync workers), Stuck diagnosed
	// stuck now, Past80Timeout with a heartbeat older than 0.8 of the
	// timeout (workerstate.AppState).
	Workers, Busy, Stuck, Past80Timeout int
	// BacklogKnown: the listen queue was read; BacklogQueued is the
	// connections waiting to be accepted now, BacklogPeak the largest over
	// the sampler's window (workerstate.Backlog).
	BacklogKnown               bool
	BacklogQueued, BacklogPeak uint64
	// WorkerRSSMax is the largest worker's resident set; MemoryLimit the
	// memory limit that applies to the workers (their cgroup's), 0 when
	// unknown or unlimited.
	WorkerRSSMax, MemoryLimit uint64
}

// DBState is what the database targets said, reduced to what a verdict
// needs (DBStateOf). Known is false when no target was scraped.
type DBState struct {
	Known bool
	// PoolWaiting is the largest number of clients waiting in one PgBouncer
	// pool, Pool names it ("target db/user") and PoolMaxWait is its
	// oldest wait.
	PoolWaiting int
	Pool        string
	PoolMaxWait time.Duration
	// Saturation is the largest PostgreSQL Saturation (client backends
	// over the connections ordinary roles may use) among the targets that
	// are up; SaturationDetail names the target and the numbers.
	Saturation       float64
	SaturationDetail string
	// LongestActive is the longest-running active query, LockWaiting the
	// sessions waiting on a lock and BlockersIdleInTransaction the distinct
	// blockers idle in transaction, over every target.
	LongestActive             time.Duration
	LockWaiting               int
	BlockersIdleInTransaction int
}

// DBStateOf reduces one scrape of the database targets to a DBState.
// Targets that are down are not evidence either way and are left out.
func DBStateOf(snap pgmon.SetSnapshot) DBState {
	var s DBState
	for _, t := range snap.Targets {
		if !t.Up {
			continue
		}
		s.Known = true
		if t.Saturation > s.Saturation {
			s.Saturation = t.Saturation
			s.SaturationDetail = fmt.Sprintf("PostgreSQL %s at %.0f%% of its connections (%d of %d, %d reserved)",
				t.Target, 100*t.Saturation, t.ClientBackends, t.MaxConnections, t.ReservedConnections)
		}
		s.LongestActive = max(s.LongestActive, t.LongestActive)
		s.LockWaiting += t.LockWaiting
		s.BlockersIdleInTransaction += t.BlockersIdleInTransaction
	}
	for _, b := range snap.Bouncers {
		if !b.Up {
			continue
		}
		s.Known = true
		for _, p := range b.Pools {
			if p.ClientWaiting > s.PoolWaiting {
				s.PoolWaiting = p.ClientWaiting
				s.Pool = fmt.Sprintf("%s %s/%s", b.Target, p.Database, p.User)
				s.PoolMaxWait = p.MaxWait
			}
		}
	}
	return s
}
