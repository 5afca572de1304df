package workerstate

import (
	"time"
)

// stuckCand is a worker diagnosed stuck in this sample.
type stuckCand struct {
	w    *worker
	kind StuckKind
	sock *waitFD
}

// aggregate fills st's counts and sums from the workers and returns those
// that are stuck.
func aggregate(st *AppState, workers []*worker, isSync bool, timeout time.Duration, fraction float64) []stuckCand {
	limit := func(f float64) time.Duration { return time.Duration(f * float64(timeout)) }
	var cands []stuckCand
	for _, w := range workers {
		st.Workers++
		rss := w.stat.RSSBytes
		cpu := w.stat.CPUSeconds()
		st.RSSBytesSum += rss
		st.RSSBytesMax = max(st.RSSBytesMax, rss)
		st.CPUSecondsSum += cpu
		st.CPUSecondsMax = max(st.CPUSecondsMax, cpu)
		if w.unreadable {
			st.UnreadableWorkers++
			st.PermissionDenied = true
		}
		ws := WorkerSample{
			PID: w.pid, HeartbeatAge: w.age, HeartbeatRead: w.hbOK,
			State: w.stat.StateString(), Wchan: w.obs.Wchan, Syscall: syscallLabel(w.obs),
			RSSBytes: rss, CPUSeconds: cpu, Unreadable: w.unreadable, Reason: w.reason,
		}
		if w.obs.State != 0 {
			ws.State = string(w.obs.State)
		}
		switch {
		case w.booting:
			st.Booting++
			ws.Activity = ActivityBooting
		case !isSync:
			st.UnknownActivity++
			ws.Activity = ActivityUnknown
		case w.act == activityIdle:
			st.Idle++
			ws.Activity = ActivityIdle
		case w.act == activityBusy:
			st.Busy++
			ws.Activity = ActivityBusy
		default:
			st.UnknownActivity++
			ws.Activity = ActivityUnknown
		}
		st.PerWorker = append(st.PerWorker, ws)
		if !w.hbOK {
			continue
		}
		// An idle sync worker's age legitimately reaches timeout/2.
		counted := timeout > 0 && !(isSync && ws.Activity == ActivityIdle)
		st.countHeartbeat(w.age, counted, timeout)
		if st.scrape != nil {
			st.scrape.workers = append(st.scrape.workers, heartbeatRef{
				index: len(st.PerWorker) - 1, pid: w.pid, hb: w.hb, counted: counted,
			})
		}
		if !counted {
			continue
		}
		if w.age > limit(fraction) {
			kind, sock := classifyStuck(w.obs)
			cands = append(cands, stuckCand{w, kind, sock})
		}
	}
	return cands
}
