package pgmon

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Set is every PostgreSQL and PgBouncer target of one configuration: it
// scrapes them together, links a client connection to its backend across
// them, and closes them. Fill Targets and Bouncers before sharing the Set;
// its methods are then safe for concurrent use and never change it. A nil
// *Set is an empty set.
type Set struct {
	Targets  []*Target
	Bouncers []*Bouncer
}

// SetSnapshot is one scrape of a Set, in the order of its targets.
type SetSnapshot struct {
	Targets  []Snapshot
	Bouncers []BouncerSnapshot
}

// Len is the number of targets and bouncers.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.Targets) + len(s.Bouncers)
}

// Scrape scrapes every target and bouncer concurrently under ctx. A target
// that cannot be queried is a snapshot with Up false, not an error: the
// error returned reports only a scrape that panicked (its snapshot is then
// Up false too), because a scrape must never take the process down and
// the collector has to say that it failed.
func (s *Set) Scrape(ctx context.Context) (SetSnapshot, error) {
	if s == nil {
		return SetSnapshot{}, nil
	}
	out := SetSnapshot{Targets: make([]Snapshot, len(s.Targets)), Bouncers: make([]BouncerSnapshot, len(s.Bouncers))}
	errs := make([]error, len(s.Targets)+len(s.Bouncers))
	var wg sync.WaitGroup
	for i, t := range s.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer recoverInto(&errs[i], func(err error) { out.Targets[i] = Snapshot{Target: t.Name(), Err: err} })
			out.Targets[i], _ = t.Scrape(ctx) // a failed scrape is a snapshot with Up false
		}()
	}
	for i, b := range s.Bouncers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer recoverInto(&errs[len(s.Targets)+i], func(err error) { out.Bouncers[i] = BouncerSnapshot{Target: b.cfg.Name, Err: err} })
			out.Bouncers[i], _ = b.Scrape(ctx)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// recoverInto turns a panic of the calling goroutine into *errp and hands
// the error to down, which records the target as down.
func recoverInto(errp *error, down func(error)) {
	if r := recover(); r != nil {
		*errp = fmt.Errorf("pgmon: scrape panicked: %v", r)
		down(*errp)
	}
}

// LinkBackend finds, on every PostgreSQL target in order, the backend of a
// client connection by its local address and port (see
// Target.LinkBackend): what a worker stuck on a socket read to PostgreSQL
// is waiting on. The first target that knows it answers, with its name.
// Targets that fail are skipped: linking is evidence, best effort.
func (s *Set) LinkBackend(ctx context.Context, clientAddr string, clientPort int) (target string, info BackendInfo, ok bool) {
	if s == nil {
		return "", BackendInfo{}, false
	}
	for _, t := range s.Targets {
		info, ok, err := t.LinkBackend(ctx, clientAddr, clientPort)
		if err == nil && ok {
			return t.Name(), info, true
		}
	}
	return "", BackendInfo{}, false
}

// Close closes every target and bouncer, waiting for their in-flight calls.
func (s *Set) Close() {
	if s == nil {
		return
	}
	for _, t := range s.Targets {
		t.Close()
	}
	for _, b := range s.Bouncers {
		b.Close()
	}
}
