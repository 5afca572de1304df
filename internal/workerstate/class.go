package workerstate

import (
	"errors"
	"fmt"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// effectiveClass decides which class busy/idle is judged for; see the
// package doc.
func (s *Sampler) effectiveClass(app string, mkey procKey, given string, workers []*worker) (string, bool) {
	switch procinfo.NormalizeWorkerClass(given) {
	case "sync":
		// Remembered for this master: discovery's class can go back to ""
		// for it (it reads the "Using worker:" line from the error log's
		// tail, which later lines push out), and a saturated app has no
		// idle worker to infer the class from again, so its busy workers
		// would turn unknown exactly when they matter.
		s.mu.Lock()
		s.app(app).syncSeen = mkey
		s.mu.Unlock()
		return "sync", false
	case "":
	default:
		return given, false
	}
	evidence := false
	for _, w := range workers {
		if !w.booting && waitsOnListenerWithSelect(w.obs) {
			evidence = true
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mem := s.app(app)
	if evidence {
		mem.syncSeen = mkey
	}
	if mem.syncSeen == mkey {
		return "sync", true
	}
	return "", false
}

// decideByConnections decides the sync workers that were running, or whose
// syscall could not be read: such a worker is inside a request exactly when
// it holds a connection accepted on a listener.
func (s *Sampler) decideByConnections(masterPID int, workers []*worker, lis listenerCache) {
	conns := &connTable{}
	for _, w := range workers {
		if w.booting || w.hbErr != nil || !needsConnCheck(w.obs) {
			continue
		}
		has, err := s.holdsClientConn(w.pid, masterPID, lis, conns)
		switch {
		case err == nil && has:
			w.act, w.reason = activityBusy, w.reason+", holds a client connection"
		case err == nil:
			w.act, w.reason = activityIdle, w.reason+", holds no client connection"
		default:
			w.act, w.reason = activityUnknown, fmt.Sprintf("%s, connections unreadable: %v", w.reason, err)
			if errors.Is(err, procinfo.ErrPermission) {
				w.unreadable = true
			}
		}
	}
}
