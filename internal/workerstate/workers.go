package workerstate

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// child is one child of the master as first read.
type child struct {
	pid   int
	key   procKey
	stat  procinfo.Stat
	hbs   []procinfo.HeartbeatFD
	hbErr error
	// hbAt is when the heartbeat files were read: ages are measured from
	// it, not from the start of a Sample that may take a while.
	hbAt time.Time
}

// worker is what one sample saw of one worker.
type worker struct {
	child
	hb         procinfo.HeartbeatFD
	hbOK       bool
	booting    bool
	age        time.Duration
	obs        observation
	act        activity
	reason     string
	unreadable bool
	// CPU time used since the previous sample, over cpuInterval.
	cpuDelta    float64
	cpuInterval time.Duration
}

// verifyMaster checks that master still names the same process and is not
// a worker.
func (s *Sampler) verifyMaster(master procinfo.Identity, st *AppState) error {
	if err := s.fs.Verify(master); err != nil {
		if !errors.Is(err, procinfo.ErrPermission) {
			return err
		}
		// Another user's master: the start time (world-readable) still
		// tells a reused pid.
		cur, serr := s.fs.Stat(master.PID)
		switch {
		case serr != nil:
			return serr
		case cur.StartTicks != master.StartTicks:
			return fmt.Errorf("pid %d started at tick %d, expected %d: %w", master.PID, cur.StartTicks, master.StartTicks, procinfo.ErrPIDReused)
		case cur.Zombie():
			return fmt.Errorf("pid %d is a zombie: %w", master.PID, procinfo.ErrGone)
		}
		st.PermissionDenied = true
	}
	if len(master.Cmdline) > 0 && strings.HasPrefix(master.Cmdline[0], procinfo.TitlePrefix+"worker [") {
		return fmt.Errorf("pid %d is titled %q: %w", master.PID, master.Cmdline[0], ErrNotMaster)
	}
	return nil
}

// workerSet is the master's workers as first read.
type workerSet struct {
	list      []*worker
	masterSet map[uint64]bool // the master's heartbeat inodes
	held      map[uint64]int  // heartbeat inode -> workers holding only it
}

// readWorkers lists the master's children and tells its workers from a
// USR2 re-exec master (which sets st.Upgrading).
func (s *Sampler) readWorkers(master procinfo.Identity, st *AppState) (workerSet, error) {
	ws := workerSet{masterSet: map[uint64]bool{}, held: map[uint64]int{}}
	// Children first, then the master's heartbeat files: every child's own
	// file was created (by the master, before the fork) before the child
	// was listed, so the master's list read afterwards holds it unless the
	// child died meanwhile.
	kidPIDs, err := s.fs.Children(master.PID)
	if err != nil {
		if !errors.Is(err, procinfo.ErrPermission) {
			return ws, err
		}
		st.PermissionDenied = true
	}
	masterHB, err := s.heartbeats(master.PID)
	masterKnown := err == nil
	switch {
	case err == nil:
		for _, h := range masterHB {
			ws.masterSet[h.Inode] = true
		}
	case errors.Is(err, procinfo.ErrPermission):
		st.PermissionDenied = true
	default:
		return ws, err
	}
	if masterKnown && len(masterHB) == 1 && len(kidPIDs) == 0 {
		if err := s.checkNotWorker(master, masterHB[0]); err != nil {
			return ws, err
		}
	}
	kids, exiting := s.readChildren(kidPIDs)
	st.Exiting = exiting
	for i := range kids {
		k := &kids[i]
		role, cmd, cmdErr := s.role(master, k, masterHB, masterKnown)
		switch {
		case role == procinfo.RoleUnknown && len(cmd) == 0 && (cmdErr == nil || errors.Is(cmdErr, procinfo.ErrGone)):
			// No command line: exiting (ChildRole's rule 4), or gone
			// since its stat was read. (One /proc refused is not known
			// to be either.)
			st.Exiting++
		case role == procinfo.RoleWorker:
			ws.list = append(ws.list, &worker{child: *k})
			if len(k.hbs) == 1 {
				ws.held[k.hbs[0].Inode]++
			}
		case role == procinfo.RoleUpgradeChild:
			st.Upgrading = true
		}
	}
	return ws, nil
}

// checkNotWorker refuses a "master" that holds one heartbeat file which its
// parent also holds: that is a worker.
func (s *Sampler) checkNotWorker(master procinfo.Identity, own procinfo.HeartbeatFD) error {
	if master.PPID <= 1 {
		return nil
	}
	parent, err := s.heartbeats(master.PPID)
	if err != nil {
		return nil // not readable: the title check and the caller's discovery stand
	}
	for _, h := range parent {
		if h.Inode == own.Inode && h.Dev == own.Dev {
			return fmt.Errorf("pid %d holds heartbeat inode %d of its parent %d: %w", master.PID, own.Inode, master.PPID, ErrNotMaster)
		}
	}
	return nil
}

// readChildren reads the stat and heartbeat files of each child, leaving
// out those that exited (or are zombies), which it counts in exiting.
func (s *Sampler) readChildren(pids []int) (out []child, exiting int) {
	for _, pid := range pids {
		ps, err := s.fs.Stat(pid)
		if err != nil || ps.Zombie() {
			// Listed a moment ago, so it exited (and maybe was reaped)
			// since: either way not yet replaced.
			exiting++
			continue
		}
		c := child{pid: pid, key: procKey{pid, ps.StartTicks}, stat: ps}
		c.hbs, c.hbErr = s.heartbeats(pid)
		c.hbAt = s.now()
		if c.hbErr != nil && !errors.Is(c.hbErr, procinfo.ErrPermission) {
			exiting++ // it exited while we read
			continue
		}
		out = append(out, c)
	}
	return out, exiting
}

// role decides what a child of the master is (procinfo.ChildRole: the
// one rule for discovery, this sampler and the receiver), and returns the
// command line it was decided on, with the error reading it.
func (s *Sampler) role(master procinfo.Identity, k *child, masterHB []procinfo.HeartbeatFD, masterKnown bool) (procinfo.Role, []string, error) {
	cmd, err := s.fs.Cmdline(k.pid)
	return s.fs.ChildRole(procinfo.Child{
		PID: k.pid, ParentPID: master.PID, Cmdline: cmd, ParentCmdline: master.Cmdline,
		Heartbeats: k.hbs, HeartbeatsErr: k.hbErr,
		ParentHeartbeats: masterHB, ParentHeartbeatsKnown: masterKnown,
	}), cmd, err
}

// readWorker fills in the heartbeat and, for booted workers, the activity.
func (s *Sampler) readWorker(w *worker, masterSet map[uint64]bool, held map[uint64]int, lis listenerCache) {
	if w.hbErr != nil {
		w.unreadable = true
		w.obs.State = w.stat.State
		return
	}
	switch {
	case len(w.hbs) == 1:
		w.hb, w.hbOK = w.hbs[0], true
	case len(w.hbs) > 1:
		// Just forked: it still holds its siblings' files. Its own is the
		// one no other worker holds alone.
		var own []procinfo.HeartbeatFD
		for _, h := range w.hbs {
			if held[h.Inode] == 0 && (len(masterSet) == 0 || masterSet[h.Inode]) {
				own = append(own, h)
			}
		}
		if len(own) == 1 {
			w.hb, w.hbOK = own[0], true
		}
	}
	if !w.hbOK {
		w.booting = true // cannot be told apart yet: it is still starting
		return
	}
	w.booting = !heartbeatNotified(w.hb)
	w.age = max(w.hbAt.Sub(w.hb.Ctime), 0)
	if w.booting {
		w.obs.State = w.stat.State
		return
	}
	obs, perm := s.observe(w.pid, lis)
	w.obs = obs
	if perm {
		w.unreadable = true
	}
	w.act, w.reason = decideActivity(obs)
}

// refreshHeartbeat re-reads a booted worker's heartbeat after its activity
// was decided, so that its age agrees with it: a worker seen inside a
// request notified just before accepting it, and that notify may have come
// after the first read (on a loaded host, reading all the workers takes a
// while).
func (s *Sampler) refreshHeartbeat(w *worker) {
	if !w.hbOK || w.booting {
		return
	}
	hbs, err := s.heartbeats(w.pid)
	at := s.now()
	if err != nil {
		return // gone or refused since: keep the first read
	}
	for _, h := range hbs {
		if h.Inode == w.hb.Inode && h.Dev == w.hb.Dev {
			w.hb, w.hbAt = h, at
			w.age = max(at.Sub(h.Ctime), 0)
			return
		}
	}
}

// heartbeatNotified reports whether the worker has called notify() at least
// once: Gunicorn ≤ 21.2 fchmods the file (created 0o600) to 0o000/0o001,
// ≥ 22 utimes it to a CLOCK_MONOTONIC value far below any wall-clock
// creation time (gunicorn/workers/workertmp.py notify).
func heartbeatNotified(h procinfo.HeartbeatFD) bool {
	perm := h.Mode & 0o777
	if perm == 0 || perm == 1 {
		return true
	}
	return h.Mtime.Unix() < 1_000_000_000
}
