package verify

import (
	"context"
	"sync"
	"time"
)

// TestWaker is a Waker that a test steps by hand, so a verification runs
// with no sleeps: Step lets the verifier poll once and returns when that
// poll is over (the verifier waits for the next wake, or has returned).
// One TestWaker serves one verification at a time; Step must not be
// called from more than one goroutine at once.
type TestWaker struct {
	c chan struct{}

	mu       sync.Mutex
	calls    int           // times Wake was called
	finished bool          // the verification returned
	changed  chan struct{} // closed and replaced at every Wake call and at finish
}

// NewTestWaker returns a TestWaker with no wake pending.
func NewTestWaker() *TestWaker {
	return &TestWaker{c: make(chan struct{}), changed: make(chan struct{})}
}

// Wake implements Waker.
func (w *TestWaker) Wake() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	w.finished = false
	w.signalLocked()
	return w.c
}

// finish records that the verification using w returned.
func (w *TestWaker) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.finished = true
	w.signalLocked()
}

func (w *TestWaker) signalLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// WaitIdle blocks until the verifier waits for a wake (its first poll,
// right after it starts, included) and reports false, or until it has
// returned and reports true.
func (w *TestWaker) WaitIdle(ctx context.Context) (finished bool, err error) {
	return w.waitCalls(ctx, 0)
}

// Step wakes the verifier once and blocks until the poll it triggered is
// over. It reports true when the verifier has returned (a later Step is
// then an error until a new verification starts).
func (w *TestWaker) Step(ctx context.Context) (finished bool, err error) {
	if finished, err := w.WaitIdle(ctx); finished || err != nil {
		return finished, err
	}
	w.mu.Lock()
	n := w.calls
	w.mu.Unlock()
	select {
	case w.c <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return w.waitCalls(ctx, n)
}

// waitCalls waits until Wake has been called more than n times or the
// verification has finished.
func (w *TestWaker) waitCalls(ctx context.Context, n int) (bool, error) {
	for {
		w.mu.Lock()
		calls, finished, ch := w.calls, w.finished, w.changed
		w.mu.Unlock()
		if finished {
			return true, nil
		}
		if calls > n {
			return false, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// pacer paces a polling loop (a verification, a settle): between polls it
// waits for the injected Waker, or else for a ticker at the interval.
type pacer struct {
	waker Waker
	tick  <-chan time.Time // nil (never ready) when waker is set
	stop  func()
}

func newPacer(waker Waker, interval time.Duration) pacer {
	p := pacer{waker: waker, stop: func() {}}
	if waker == nil {
		t := time.NewTicker(interval)
		p.tick, p.stop = t.C, t.Stop
	}
	return p
}

// wait blocks until the next poll is due; false when ctx ended first.
func (p pacer) wait(ctx context.Context) bool {
	var wake <-chan struct{}
	if p.waker != nil {
		wake = p.waker.Wake()
	}
	select {
	case <-wake:
	case <-p.tick:
	case <-ctx.Done():
		return false
	}
	return true
}

// close stops the ticker and tells a TestWaker the loop returned.
func (p pacer) close() {
	p.stop()
	if tw, ok := p.waker.(*TestWaker); ok {
		tw.finish()
	}
}
