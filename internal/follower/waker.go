package follower

import (
	"context"
	"sync"
)

// Waker tells a running Follower when to poll. Run calls Wake once before
// each wait and polls when the returned channel yields. Production code
// leaves Options.Waker nil and gets a ticker; tests use a TestWaker.
type Waker interface {
	Wake() <-chan struct{}
}

// TestWaker is a Waker that tests step by hand, so a test that drives Run
// needs no sleeps: Step wakes the follower and returns once the poll it
// triggered has finished and the follower is waiting again.
//
// One TestWaker serves one Follower, and Step must not be called from more
// than one goroutine at a time.
type TestWaker struct {
	c chan struct{}

	mu      sync.Mutex
	calls   int           // times Wake was called (the follower is waiting, or about to)
	steps   int           // completed sends on c
	changed chan struct{} // closed and replaced at every Wake call
}

// NewTestWaker returns a TestWaker with no wake pending.
func NewTestWaker() *TestWaker {
	return &TestWaker{c: make(chan struct{}), changed: make(chan struct{})}
}

// Wake implements Waker.
func (w *TestWaker) Wake() <-chan struct{} {
	w.mu.Lock()
	w.calls++
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	return w.c
}

// WaitIdle blocks until the follower has finished its current poll (the
// initial one, right after Run starts, included) and waits for a wake.
func (w *TestWaker) WaitIdle(ctx context.Context) error {
	w.mu.Lock()
	n := w.steps
	w.mu.Unlock()
	return w.waitCalls(ctx, n)
}

// Step wakes the follower once and blocks until that poll has finished and
// the follower is waiting again, or ctx is done.
func (w *TestWaker) Step(ctx context.Context) error {
	if err := w.WaitIdle(ctx); err != nil {
		return err
	}
	select {
	case w.c <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.mu.Lock()
	w.steps++
	n := w.steps
	w.mu.Unlock()
	return w.waitCalls(ctx, n)
}

// waitCalls waits until Wake has been called more than n times.
func (w *TestWaker) waitCalls(ctx context.Context, n int) error {
	for {
		w.mu.Lock()
		done, ch := w.calls > n, w.changed
		w.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
