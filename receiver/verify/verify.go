// Package verify owns the receiver's proof that an action took effect: it
// polls the app's live state on an injected waker and clock until the
// expected change is seen or a deadline passes. A scale is verified by the
// live worker count reaching the target, a reload by a new generation of
// booted workers, a restart by a new master with booted workers. A missed
// deadline is the outcome verification_failed, never a retry: verify
// waits and reports, and nothing in it acts.
package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// Sample is one reading of an app's live state.
type Sample struct {
	// Master is the master the sample was read from.
	Master procinfo.Identity
	// Workers is the live worker count; Booted the workers among them that
	// have finished booting (notified their heartbeat at least once).
	Workers, Booted int
	// Exiting counts the master's children on their way out (zombies,
	// exited while read), which Workers leaves out: while it is not 0 the
	// master runs more workers than Workers says (workerstate.AppState).
	Exiting int
	// WorkerPIDs are the live workers' pids, sorted.
	WorkerPIDs []int
	// Stopped is true when the master is stopped (SIGSTOP, a debugger):
	// evidence for a failed verification.
	Stopped bool
}

func (s Sample) String() string {
	if s.Exiting > 0 {
		return fmt.Sprintf("master %d, %d workers (%d booted), %d exiting", s.Master.PID, s.Workers, s.Booted, s.Exiting)
	}
	return fmt.Sprintf("master %d, %d workers (%d booted)", s.Master.PID, s.Workers, s.Booted)
}

// Probe reads the app's state now. An error (the master is gone, /proc
// refused) is not fatal: the verifier polls again until the deadline, and
// reports the last error if the change never shows.
type Probe func(ctx context.Context) (Sample, error)

// Waker tells the verifier when to poll again: it calls Wake once before
// each wait and polls when the channel yields. It has the shape of
// internal/follower's Waker.
type Waker interface {
	Wake() <-chan struct{}
}

// Options configures a verification. The zero value polls every 200ms on
// the wall clock with a 30s deadline.
type Options struct {
	// Deadline is how long the effect may take; zero means 30s. A worker
	// boots in the time the app takes to import, so the deadline must
	// exceed that.
	Deadline time.Duration
	// Interval is the poll interval of the default waker; zero means
	// 200ms. Ignored when Waker is set.
	Interval time.Duration
	// Waker replaces the ticker (tests step a TestWaker).
	Waker Waker
	// Now is the clock the deadline is measured on; nil means time.Now.
	Now func() time.Time
}

// DefaultDeadline and DefaultInterval are the zero values' meaning.
const (
	DefaultDeadline = 30 * time.Second
	DefaultInterval = 200 * time.Millisecond
)

// Result is the outcome of one verification.
type Result struct {
	// Outcome is intent.OutcomeVerified or intent.OutcomeVerificationFailed.
	Outcome intent.Outcome
	// Last is the last sample read (zero if every probe failed); LastErr
	// the last probe error, nil when the last probe succeeded.
	Last    Sample
	LastErr error
	// Polls counts the probes made; Elapsed is the time from the start to
	// the last probe on the Options clock.
	Polls   int
	Elapsed time.Duration
	// Evidence says in a sentence what was seen, for the audit log.
	Evidence string
}

// Verified reports whether the effect was seen.
func (r Result) Verified() bool { return r.Outcome == intent.OutcomeVerified }

// WorkerCount waits until the live worker count equals want (the target
// after one TTIN or TTOU: the count before plus or minus one) and every
// one of them has booted, so a worker that dies while importing the app
// does not count as the added one.
func WorkerCount(ctx context.Context, probe Probe, want int, opts Options) (Result, error) {
	if want < 1 {
		return Result{}, fmt.Errorf("verify: worker count %d: Gunicorn keeps at least one worker", want)
	}
	return wait(ctx, probe, opts, func(s Sample) bool { return s.Workers == want && s.Booted == want },
		fmt.Sprintf("%d booted workers", want))
}

// NewGeneration waits for the effect of a HUP on the master of before: a
// new generation of workers, all booted, none of them one of before's
// workers. (Gunicorn's HUP spawns the configured number of new workers,
// then stops the old ones: gunicorn/arbiter.py reload.)
func NewGeneration(ctx context.Context, probe Probe, before Sample, opts Options) (Result, error) {
	old := slices.Clone(before.WorkerPIDs)
	return wait(ctx, probe, opts, func(s Sample) bool {
		if s.Master.PID != before.Master.PID || s.Master.StartTicks != before.Master.StartTicks {
			return false // another master: not the reload asked for
		}
		return s.Workers >= 1 && s.Booted == s.Workers && !overlaps(s.WorkerPIDs, old)
	}, "a new generation of booted workers")
}

// NewMaster waits for the effect of a restart: a master other than
// before's (another pid, or the same pid started at another time) with at
// least one booted worker and none still booting.
func NewMaster(ctx context.Context, probe Probe, before Sample, opts Options) (Result, error) {
	return wait(ctx, probe, opts, func(s Sample) bool {
		same := s.Master.PID == before.Master.PID && s.Master.StartTicks == before.Master.StartTicks
		return s.Master.PID > 1 && !same && s.Workers >= 1 && s.Booted == s.Workers
	}, "a new master with booted workers")
}

func overlaps(a, b []int) bool {
	for _, p := range a {
		if slices.Contains(b, p) {
			return true
		}
	}
	return false
}

// wait polls probe until done holds or the deadline passes. Each poll
// compares the Options clock with the deadline after probing, so the last
// probe always happens at or after the deadline and a change that shows at
// the last moment still counts.
func wait(ctx context.Context, probe Probe, opts Options, done func(Sample) bool, what string) (Result, error) {
	if probe == nil {
		return Result{}, errors.New("verify: no probe")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	deadline := opts.Deadline
	if deadline <= 0 {
		deadline = DefaultDeadline
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	pace := newPacer(opts.Waker, interval)
	defer pace.close()
	start := now()
	var r Result
	for {
		s, err := probe(ctx)
		r.Polls++
		r.Elapsed = now().Sub(start)
		r.LastErr = err
		if err == nil {
			r.Last = s
			if done(s) {
				r.Outcome = intent.OutcomeVerified
				r.Evidence = fmt.Sprintf("%s seen after %s: %s", what, r.Elapsed.Round(time.Millisecond), s)
				return r, nil
			}
		}
		if r.Elapsed >= deadline {
			r.Outcome = intent.OutcomeVerificationFailed
			r.Evidence = failure(what, deadline, r)
			return r, nil
		}
		if !pace.wait(ctx) {
			return r, fmt.Errorf("verify %s: %w", what, ctx.Err())
		}
	}
}

func failure(what string, deadline time.Duration, r Result) string {
	msg := fmt.Sprintf("no %s within %s", what, deadline)
	if r.Polls > 1 || r.LastErr == nil {
		msg += fmt.Sprintf("; last seen: %s", r.Last)
	}
	if r.Last.Stopped {
		msg += " (the master is stopped)"
	}
	if r.LastErr != nil {
		msg += fmt.Sprintf("; last probe failed: %v", r.LastErr)
	}
	return msg
}
