package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUnsettled means the worker count kept moving for the whole settle
// bound (or the context ended first): no count was settled on.
var ErrUnsettled = errors.New("the worker count did not settle")

// SettleOptions configures Settle. The zero value reads every 50ms, takes
// a count that held for 150ms, and gives up after 1s, on the wall clock.
type SettleOptions struct {
	// Bound is how long Settle may read; zero means 1s. The last read
	// happens at or after it.
	Bound time.Duration
	// Quiet is how long the count must hold, with no worker exiting, to
	// be settled on; zero means 150ms. It must exceed the pause Gunicorn
	// takes between two replacements it forks (arbiter.spawn_workers
	// sleeps up to 100ms after each), or a refill after several workers
	// were killed at once looks settled between two forks.
	Quiet time.Duration
	// Interval is the read interval of the default waker; zero means
	// 50ms. Ignored when Waker is set.
	Interval time.Duration
	// Waker replaces the ticker (tests step a TestWaker or feed reads).
	Waker Waker
	// Now is the clock Bound and Quiet are measured on; nil means time.Now.
	Now func() time.Time
}

// The zero SettleOptions' meaning.
const (
	DefaultSettleBound    = time.Second
	DefaultSettleQuiet    = 150 * time.Millisecond
	DefaultSettleInterval = 50 * time.Millisecond
)

// Settled is the count Settle settled on, and what it took.
type Settled struct {
	// Sample is the last read, whose count held for Quiet.
	Sample
	// Reads counts the reads made; Unsteady those that showed a worker
	// exiting or another count than the read before.
	Reads, Unsteady int
	// Elapsed is the time from the first read to the last.
	Elapsed time.Duration
}

// Settle reads probe until the worker count is one the master runs: the
// same count, with no child of the master exiting, in every read over at
// least Quiet (two reads at the least). A worker killed for the timeout
// shows as exiting, then the master reaps it and forks its replacement; a
// read in between is one short, and after several are killed at once the
// refill forks them one at a time with pauses between them. A probe error
// (the master is gone) ends it with that error; a count that never holds
// within Bound, or the end of ctx, is ErrUnsettled with what was seen.
func Settle(ctx context.Context, probe Probe, opts SettleOptions) (Settled, error) {
	if probe == nil {
		return Settled{}, errors.New("verify: no probe")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	bound, quiet := opts.Bound, opts.Quiet
	if bound <= 0 {
		bound = DefaultSettleBound
	}
	if quiet <= 0 {
		quiet = DefaultSettleQuiet
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultSettleInterval
	}
	pace := newPacer(opts.Waker, interval)
	defer pace.close()
	start := now()
	var r Settled
	var seen []string  // the counts read, for the evidence of an unsettled one
	var held time.Time // when the run of steady reads began
	run := 0           // reads in the run: the same count, none exiting
	for {
		s, err := probe(ctx)
		at := now()
		r.Reads++
		r.Elapsed = at.Sub(start)
		if err != nil {
			return r, fmt.Errorf("settle the worker count: %w", err)
		}
		moved := r.Reads > 1 && s.Workers != r.Workers
		switch {
		case s.Exiting > 0:
			r.Unsteady++
			run = 0
		case moved:
			r.Unsteady++
			run, held = 1, at
		case run == 0:
			run, held = 1, at
		default:
			run++
		}
		r.Sample = s
		seen = appendSeen(seen, s)
		if run >= 2 && at.Sub(held) >= quiet {
			return r, nil
		}
		if r.Elapsed >= bound {
			return r, fmt.Errorf("%w: no count held for %s with no worker exiting within %s (%d reads; counts seen last: %s)",
				ErrUnsettled, quiet, bound, r.Reads, strings.Join(seen, ", "))
		}
		if !pace.wait(ctx) {
			return r, fmt.Errorf("%w: %w (%d reads; counts seen last: %s)", ErrUnsettled, ctx.Err(), r.Reads, strings.Join(seen, ", "))
		}
	}
}

// appendSeen adds s to the counts seen, a run of equal reads once, and
// keeps the last 12, so the evidence stays one line.
func appendSeen(seen []string, s Sample) []string {
	c := fmt.Sprint(s.Workers)
	if s.Exiting > 0 {
		c += fmt.Sprintf(" (%d exiting)", s.Exiting)
	}
	switch {
	case len(seen) > 0 && seen[len(seen)-1] == c:
		return seen
	case len(seen) == 12:
		seen = append(seen[:0], seen[1:]...)
	}
	return append(seen, c)
}
