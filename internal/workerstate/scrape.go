package workerstate

import (
	"errors"
	"slices"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// heartbeatRefs says where the heartbeat file of each worker of one sample
// is, so that the ages can be read again at scrape time.
type heartbeatRefs struct {
	fs      procinfo.FS
	now     func() time.Time
	timeout time.Duration
	workers []heartbeatRef
}

// heartbeatRef is one worker whose heartbeat the sample read.
type heartbeatRef struct {
	index int // into AppState.PerWorker
	pid   int
	hb    procinfo.HeartbeatFD
	// counted: the worker counts toward the past-timeout fractions (the
	// timeout is enabled and it is not an idle sync worker).
	counted bool
}

// countHeartbeat adds one worker's heartbeat age to the aggregates.
func (st *AppState) countHeartbeat(age time.Duration, counted bool, timeout time.Duration) {
	st.HeartbeatsRead++
	st.MaxHeartbeatAge = max(st.MaxHeartbeatAge, age)
	if !counted {
		return
	}
	if age > time.Duration(0.5*float64(timeout)) {
		st.PastHalfTimeout++
	}
	if age > time.Duration(0.8*float64(timeout)) {
		st.Past80Timeout++
	}
}

// AtScrape returns st with the heartbeat ages as they are now: one stat(2)
// of each sampled worker's heartbeat file through /proc/<pid>/fd/<N>,
// which the sample already found. It recomputes MaxHeartbeatAge,
// HeartbeatsRead, PastHalfTimeout, Past80Timeout and each
// PerWorker[i].HeartbeatAge; everything else (activity, stuck snapshots)
// stays as sampled.
//
// The sample runs every few seconds, but a worker is killed at --timeout:
// with a 3 s timeout an age read by the sample is up to one interval old,
// and the 0.5 and 0.8 fractions would be seen only after the kill. A
// worker whose file is gone since the sample (it exited, or its fd now
// names another file) is left out of the heartbeat aggregates; one whose
// file cannot be read now keeps its sampled age. A state not made by
// Sample is returned as it is.
func (st AppState) AtScrape() AppState {
	r := st.scrape
	if r == nil {
		return st
	}
	now := r.now()
	st.PerWorker = slices.Clone(st.PerWorker)
	st.MaxHeartbeatAge, st.HeartbeatsRead, st.PastHalfTimeout, st.Past80Timeout = 0, 0, 0, 0
	for _, ref := range r.workers {
		ws := &st.PerWorker[ref.index]
		hb, err := r.fs.RestatHeartbeat(ref.pid, ref.hb)
		switch {
		case err == nil:
			ws.HeartbeatAge = max(now.Sub(hb.Ctime), 0)
		case errors.Is(err, procinfo.ErrGone):
			ws.HeartbeatRead = false
			continue
		}
		st.countHeartbeat(ws.HeartbeatAge, ref.counted, r.timeout)
	}
	return st
}
