package workerstate

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// fixture is a loaded testdata/<scenario> tree (see capture_test.go).
type fixture struct {
	t    *testing.T
	fs   procinfo.FS
	root string // the scenario directory (a copy when mutable)
	man  fixtureManifest
	// hb overrides the recorded heartbeats by path (tests edit it).
	hb map[string]fixtureHeartbeat
	// deny makes the named pids' heartbeat files unreadable.
	deny map[int]bool
	// memErr makes every read of process memory fail.
	memErr error
	now    time.Time
}

func loadFixture(t *testing.T, scenario string, mutable bool) *fixture {
	t.Helper()
	root := filepath.Join("testdata", scenario)
	if mutable {
		tmp := t.TempDir()
		require.NoError(t, os.CopyFS(tmp, os.DirFS(root)))
		root = tmp
	}
	b, err := os.ReadFile(filepath.Join(root, "manifest.json"))
	require.NoError(t, err)
	var man fixtureManifest
	require.NoError(t, json.Unmarshal(b, &man))
	fs, err := procinfo.NewFS(filepath.Join(root, "proc"))
	require.NoError(t, err)
	hb := map[string]fixtureHeartbeat{}
	for k, v := range man.Heartbeats {
		hb[k] = v
	}
	return &fixture{t: t, fs: fs, root: root, man: man, hb: hb, deny: map[int]bool{}, now: man.Now}
}

// sampler returns a Sampler reading the fixture: the saved syscalls for the
// fixture's architecture, the recorded memory and heartbeat stats, and the
// fixture's clock.
func (f *fixture) sampler(opts Options) *Sampler {
	opts.Now = func() time.Time { return f.now }
	s := NewSampler(f.fs, opts)
	s.arch = f.man.Arch
	s.pause = func(time.Duration) {}
	s.readMem = func(pid int, addr uint64, n int) ([]byte, error) {
		if f.memErr != nil {
			return nil, f.memErr
		}
		h, ok := f.man.Mem[fmt.Sprintf("%d:%x", pid, addr)]
		if !ok {
			return nil, fmt.Errorf("no memory recorded at %d:%x: %w", pid, addr, syscall.EIO)
		}
		b, err := hex.DecodeString(h)
		if err != nil || len(b) < n {
			return nil, fmt.Errorf("memory at %d:%x: %d bytes, want %d: %w", pid, addr, len(b), n, syscall.EIO)
		}
		return b[:n], nil
	}
	s.heartbeats = func(pid int) ([]procinfo.HeartbeatFD, error) {
		if f.deny[pid] {
			return nil, fmt.Errorf("heartbeat of %d: %w", pid, procinfo.ErrPermission)
		}
		hbs, err := f.fs.HeartbeatFDs(pid)
		for i := range hbs {
			if r, ok := f.hb[hbs[i].Path]; ok {
				hbs[i].Mode, hbs[i].Ctime, hbs[i].Mtime = r.Mode, r.Ctime, r.Mtime
			}
		}
		return hbs, err
	}
	return s
}

func (f *fixture) master() procinfo.Identity {
	f.t.Helper()
	id, err := f.fs.Identify(f.man.Master)
	require.NoError(f.t, err)
	return id
}

// heartbeatOf returns the path of pid's heartbeat file.
func (f *fixture) heartbeatOf(pid int) string {
	f.t.Helper()
	hb, ok, err := f.fs.HeartbeatFD(pid)
	require.NoError(f.t, err)
	require.True(f.t, ok)
	return hb.Path
}

// write replaces /proc/<pid>/<name> in a mutable fixture.
func (f *fixture) write(pid int, name, content string) {
	f.t.Helper()
	require.NoError(f.t, os.WriteFile(filepath.Join(f.root, "proc", strconv.Itoa(pid), name), []byte(content), 0o644))
}

// addCPU adds ticks to pid's utime (stat field 14) in a mutable fixture.
func (f *fixture) addCPU(pid int, ticks uint64) {
	f.t.Helper()
	p := filepath.Join(f.root, "proc", strconv.Itoa(pid), "stat")
	b, err := os.ReadFile(p)
	require.NoError(f.t, err)
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	fields := strings.Fields(s[i+2:])
	ut, err := strconv.ParseUint(fields[11], 10, 64) // field 14 is the 12th after comm
	require.NoError(f.t, err)
	fields[11] = strconv.FormatUint(ut+ticks, 10)
	require.NoError(f.t, os.WriteFile(p, []byte(s[:i+2]+strings.Join(fields, " ")+"\n"), 0o644))
}

func byKind(st AppState) map[StuckKind]StuckSnapshot {
	out := map[StuckKind]StuckSnapshot{}
	for _, s := range st.Stuck {
		out[s.Kind] = s
	}
	return out
}

func TestFixtureSync(t *testing.T) {
	f := loadFixture(t, "sync", false)
	tl := timeline.New(100, 0)
	s := f.sampler(Options{Timeline: tl, PostgresPorts: []int{f.man.PeerPort}})
	st, err := s.Sample("app", f.master(), f.man.Timeout, "sync")
	require.NoError(t, err)

	require.Equal(t, 5, st.Workers, describe(st))
	require.Equal(t, 4, st.Busy, describe(st))
	require.Equal(t, 1, st.Idle, describe(st))
	require.Zero(t, st.UnknownActivity+st.Booting, describe(st))
	require.False(t, st.PermissionDenied)
	require.False(t, st.Upgrading)
	require.Equal(t, 5, st.HeartbeatsRead)
	require.Equal(t, 4, st.PastHalfTimeout, describe(st))
	require.Zero(t, st.Past80Timeout, describe(st))
	require.Greater(t, st.MaxHeartbeatAge, f.man.Timeout/2)
	require.NotZero(t, st.RSSBytesSum)
	require.GreaterOrEqual(t, st.RSSBytesSum, st.RSSBytesMax)
	require.Greater(t, st.CPUSecondsSum, 0.0)
	require.Equal(t, f.master().StartTime, st.MasterStartTime)

	activity := map[int]string{}
	for _, w := range st.PerWorker {
		activity[w.PID] = w.Activity
	}
	require.Equal(t, map[int]string{
		f.man.Workers["idle"]: ActivityIdle, f.man.Workers["sleep"]: ActivityBusy,
		f.man.Workers["spin"]: ActivityBusy, f.man.Workers["lock"]: ActivityBusy,
		f.man.Workers["recv"]: ActivityBusy,
	}, activity)

	k := byKind(st)
	require.Len(t, k, 4, describe(st))
	require.Equal(t, f.man.Workers["sleep"], k[KindSleep].PID)
	require.Equal(t, f.man.Workers["spin"], k[KindCPU].PID)
	require.Equal(t, f.man.Workers["lock"], k[KindFutex].PID)
	require.Equal(t, f.man.Workers["recv"], k[KindSocketRead].PID)
	sock := k[KindSocketRead]
	require.Equal(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(f.man.PeerPort)), sock.Peer)
	require.Equal(t, f.man.RecvLocalPort, sock.LocalPort)
	require.True(t, sock.PeerIsPostgres)
	require.Equal(t, "recvfrom", sock.Syscall)
	require.Equal(t, "wait_woken", sock.Wchan)
	require.Equal(t, "clock_nanosleep", k[KindSleep].Syscall)
	require.Equal(t, "hrtimer_nanosleep", k[KindSleep].Wchan)
	require.Equal(t, "futex", k[KindFutex].Syscall)
	require.Equal(t, "running", k[KindCPU].Syscall)
	require.Equal(t, "R", k[KindCPU].State)
	for _, snap := range st.Stuck {
		require.Equal(t, f.hb[f.heartbeatOf(snap.PID)].Ctime, snap.Since)
		require.Equal(t, f.man.Now.Sub(snap.Since), snap.HeartbeatAge)
		require.Equal(t, f.man.Now, snap.FirstSeen)
		require.Zero(t, snap.CPUSecondsDelta) // first sample
	}
	for _, kind := range []StuckKind{KindSleep, KindCPU, KindFutex, KindSocketRead} {
		require.Equal(t, uint64(1), st.StuckEpisodesTotal[kind])
		require.Equal(t, 1, st.StuckNow[kind])
	}

	events := tl.Select(timeline.Query{})
	require.Len(t, events, 4)
	for _, e := range events {
		require.Equal(t, "app", e.App)
		require.Equal(t, EventSource, e.Source)
		require.Equal(t, EventKindStuck, e.Kind)
		require.Equal(t, f.man.Now, e.Time)
		require.Equal(t, e.Cause, e.Attrs["kind"])
		if e.Cause == "socket_read" {
			require.Equal(t, strconv.Itoa(f.man.RecvLocalPort), e.Attrs["local_port"])
			require.Equal(t, "true", e.Attrs["peer_is_postgres"])
			require.Contains(t, e.Detail, fmt.Sprintf("local port %d", f.man.RecvLocalPort))
		}
	}

	// Without the peer's port configured as PostgreSQL it is not marked.
	st, err = f.sampler(Options{}).Sample("app", f.master(), f.man.Timeout, "sync")
	require.NoError(t, err)
	require.False(t, byKind(st)[KindSocketRead].PeerIsPostgres)
}

func TestFixtureEpisodes(t *testing.T) {
	f := loadFixture(t, "sync", true)
	tl := timeline.New(100, 0)
	s := f.sampler(Options{Timeline: tl})
	m := f.master()
	st, err := s.Sample("app", m, f.man.Timeout, "sync")
	require.NoError(t, err)
	require.Len(t, st.Stuck, 4)
	require.Len(t, tl.Select(timeline.Query{}), 4)

	// One second later: the spinning worker used 1 s of CPU; the lock
	// waiter's process used 0.8 s (another thread computes): that is CPU
	// bound now. The same episodes: no new events, totals unchanged.
	f.now = f.now.Add(time.Second)
	f.addCPU(f.man.Workers["spin"], 100)
	f.addCPU(f.man.Workers["lock"], 80)
	st, err = s.Sample("app", m, f.man.Timeout, "sync")
	require.NoError(t, err)
	require.Len(t, tl.Select(timeline.Query{}), 4)
	k := map[int]StuckSnapshot{}
	for _, snap := range st.Stuck {
		k[snap.PID] = snap
	}
	spin, lock := k[f.man.Workers["spin"]], k[f.man.Workers["lock"]]
	require.Equal(t, KindCPU, spin.Kind)
	require.InDelta(t, 1.0, spin.CPUSecondsDelta, 1e-9)
	require.Equal(t, time.Second, spin.CPUInterval)
	require.Equal(t, KindCPU, lock.Kind)
	require.InDelta(t, 0.8, lock.CPUSecondsDelta, 1e-9)
	require.Equal(t, f.man.Now, lock.FirstSeen)
	require.Equal(t, 2, st.StuckNow[KindCPU])
	require.Equal(t, uint64(1), st.StuckEpisodesTotal[KindFutex])
	require.Equal(t, uint64(1), st.StuckEpisodesTotal[KindCPU])

	// The sleeping worker notifies (its request ended): its episode ends.
	sleepHB := f.heartbeatOf(f.man.Workers["sleep"])
	r := f.hb[sleepHB]
	r.Ctime = f.now.Add(-time.Second / 2)
	f.hb[sleepHB] = r
	st, err = s.Sample("app", m, f.man.Timeout, "sync")
	require.NoError(t, err)
	require.Len(t, st.Stuck, 3)
	require.Zero(t, st.StuckNow[KindSleep])

	// Stale again, with a new last heartbeat: a new episode and event.
	f.now = f.now.Add(5 * time.Second)
	st, err = s.Sample("app", m, f.man.Timeout, "sync")
	require.NoError(t, err)
	require.Equal(t, 1, st.StuckNow[KindSleep])
	require.Equal(t, uint64(2), st.StuckEpisodesTotal[KindSleep])
	events := tl.Select(timeline.Query{Kinds: []string{EventKindStuck}})
	require.Len(t, events, 5)
	require.Equal(t, "sleep", events[4].Cause)
	require.Equal(t, f.man.Workers["sleep"], events[4].PID)

	// The Sampler's memory is per app, and Forget drops it.
	st, err = s.Sample("other", m, f.man.Timeout, "sync")
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.StuckEpisodesTotal[KindSleep])
	s.Forget("app")
	s.mu.Lock()
	for k := range s.episodes {
		require.Equal(t, "other", k.app)
	}
	require.NotContains(t, s.apps, "app")
	s.mu.Unlock()
}

func TestFixtureBounded(t *testing.T) {
	f := loadFixture(t, "sync", false)
	s := f.sampler(Options{MaxTracked: 2})
	for i := range 3 {
		_, err := s.Sample("app"+strconv.Itoa(i), f.master(), f.man.Timeout, "sync")
		require.NoError(t, err)
		s.mu.Lock()
		require.LessOrEqual(t, len(s.cpu), 2)
		require.LessOrEqual(t, len(s.episodes), 2)
		s.mu.Unlock()
	}
}

func TestFixtureBooting(t *testing.T) {
	f := loadFixture(t, "sync", false)
	idle := f.heartbeatOf(f.man.Workers["idle"])
	created := f.now.Add(-100 * time.Millisecond)
	for _, tc := range []struct {
		name    string
		hb      fixtureHeartbeat
		booting bool
	}{
		{"≤21.2 before the first notify", fixtureHeartbeat{Mode: 0o600, Ctime: created, Mtime: created}, true},
		{"≤21.2 notified (mode 0)", fixtureHeartbeat{Mode: 0, Ctime: created, Mtime: created}, false},
		{"≥22 before the first notify", fixtureHeartbeat{Mode: 0o600, Ctime: created, Mtime: created}, true},
		{"≥22 notified (monotonic mtime)", fixtureHeartbeat{Mode: 0o600, Ctime: created, Mtime: time.Unix(1781, 131e6)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.hb[idle] = tc.hb
			st, err := f.sampler(Options{}).Sample("app", f.master(), f.man.Timeout, "sync")
			require.NoError(t, err)
			require.Equal(t, 5, st.Workers)
			if tc.booting {
				require.Equal(t, 1, st.Booting, describe(st))
				require.Zero(t, st.Idle, describe(st))
			} else {
				require.Zero(t, st.Booting, describe(st))
				require.Equal(t, 1, st.Idle, describe(st))
			}
		})
	}
	// A worker that takes too long to boot is stuck too, and says so.
	f.hb[idle] = fixtureHeartbeat{Mode: 0o600, Ctime: f.now.Add(-6 * time.Second), Mtime: f.now.Add(-6 * time.Second)}
	st, err := f.sampler(Options{}).Sample("app", f.master(), f.man.Timeout, "sync")
	require.NoError(t, err)
	require.Len(t, st.Stuck, 5)
	for _, s := range st.Stuck {
		require.Equal(t, s.PID == f.man.Workers["idle"], s.Booting)
	}
}

func TestFixturePermissionDenied(t *testing.T) {
	f := loadFixture(t, "sync", false)
	f.deny[f.man.Workers["sleep"]] = true
	f.memErr = fmt.Errorf("read memory: %w", procinfo.ErrPermission)
	st, err := f.sampler(Options{}).Sample("app", f.master(), f.man.Timeout, "sync")
	require.NoError(t, err)
	require.True(t, st.PermissionDenied)
	require.Equal(t, 5, st.Workers)
	// The sleeping worker: no heartbeat, no activity. The idle worker: its
	// select set is unreadable, so it is not counted idle.
	require.Equal(t, 2, st.UnreadableWorkers, describe(st))
	require.Equal(t, 2, st.UnknownActivity, describe(st))
	require.Equal(t, 3, st.Busy, describe(st))
	require.Zero(t, st.Idle, describe(st))
	require.Equal(t, 4, st.HeartbeatsRead)
	require.Len(t, st.Stuck, 3)
	for _, w := range st.PerWorker {
		if w.PID == f.man.Workers["sleep"] {
			require.False(t, w.HeartbeatRead)
			require.True(t, w.Unreadable)
			require.Equal(t, ActivityUnknown, w.Activity)
		}
	}
}

// TestFixtureWithoutSyscall is what a same-uid exporter sees under Yama
// ptrace_scope=1: fds and wchan, but no /proc/<pid>/syscall or mem.
func TestFixtureWithoutSyscall(t *testing.T) {
	f := loadFixture(t, "sync", true)
	for _, pid := range f.man.Workers {
		require.NoError(t, os.Remove(filepath.Join(f.root, "proc", strconv.Itoa(pid), "syscall")))
	}
	st, err := f.sampler(Options{}).Sample("app", f.master(), f.man.Timeout, "sync")
	require.NoError(t, err)
	// Busy exactly when holding a client connection.
	require.Equal(t, 4, st.Busy, describe(st))
	require.Equal(t, 1, st.Idle, describe(st))
	k := byKind(st)
	require.Len(t, k, 4, describe(st))
	require.Equal(t, f.man.Workers["lock"], k[KindFutex].PID)
	require.Equal(t, f.man.Workers["sleep"], k[KindSleep].PID)
	require.Equal(t, f.man.Workers["spin"], k[KindCPU].PID)
	sock := k[KindSocketRead]
	require.Equal(t, f.man.Workers["recv"], sock.PID)
	require.Empty(t, sock.Syscall)
	// The only established connection that is not a client's.
	require.Equal(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(f.man.PeerPort)), sock.Peer)
	require.Equal(t, f.man.RecvLocalPort, sock.LocalPort)
}

func TestFixtureRunningIdleWorker(t *testing.T) {
	f := loadFixture(t, "sync", true)
	// The idle worker caught running (woken by its select timeout, waiting
	// for a CPU): it holds no client connection, so it is idle.
	idle := f.man.Workers["idle"]
	f.write(idle, "syscall", "running\n")
	b, err := os.ReadFile(filepath.Join(f.root, "proc", strconv.Itoa(idle), "stat"))
	require.NoError(t, err)
	i := strings.LastIndexByte(string(b), ')')
	f.write(idle, "stat", string(b[:i+2])+"R"+string(b[i+3:]))
	st, err := f.sampler(Options{}).Sample("app", f.master(), f.man.Timeout, "sync")
	require.NoError(t, err)
	require.Equal(t, 1, st.Idle, describe(st))
	require.Equal(t, 4, st.Busy, describe(st))
	for _, w := range st.PerWorker {
		switch w.PID {
		case idle:
			require.Equal(t, "running, holds no client connection", w.Reason)
		case f.man.Workers["spin"]:
			require.Equal(t, "running, holds a client connection", w.Reason)
		}
	}
}

func TestFixtureGthread(t *testing.T) {
	f := loadFixture(t, "gthread", false)
	for _, class := range []string{"gthread", ""} {
		st, err := f.sampler(Options{}).Sample("app", f.master(), f.man.Timeout, class)
		require.NoError(t, err)
		require.Equal(t, 2, st.Workers)
		require.Equal(t, 2, st.UnknownActivity, describe(st))
		require.Zero(t, st.Busy+st.Idle)
		require.False(t, st.ClassInferred)
		require.Equal(t, class, st.WorkerClass)
		for _, w := range st.PerWorker {
			require.Equal(t, "epoll_wait", w.Syscall)
		}
	}
}

func TestFixtureClassInference(t *testing.T) {
	f := loadFixture(t, "sync", false)
	st, err := f.sampler(Options{}).Sample("app", f.master(), f.man.Timeout, "")
	require.NoError(t, err)
	require.True(t, st.ClassInferred)
	require.Equal(t, "sync", st.WorkerClass)
	require.Equal(t, 1, st.Idle)
	st, err = f.sampler(Options{}).Sample("app", f.master(), f.man.Timeout, "egg:gunicorn#sync")
	require.NoError(t, err)
	require.False(t, st.ClassInferred)
	require.Equal(t, "sync", st.WorkerClass)
}

// Discovery said sync, then "" for the same master (the "Using worker:"
// line left the error log's tail) while no worker waits on the listener
// (all busy): the workers stay sync and busy, not unknown.
func TestFixtureClassRememberedWhenDiscoveryForgets(t *testing.T) {
	f := loadFixture(t, "sync", true)
	// The only idle worker caught running: no worker shows the select on
	// the listener that inference needs.
	idle := f.man.Workers["idle"]
	f.write(idle, "syscall", "running\n")
	b, err := os.ReadFile(filepath.Join(f.root, "proc", strconv.Itoa(idle), "stat"))
	require.NoError(t, err)
	i := strings.LastIndexByte(string(b), ')')
	f.write(idle, "stat", string(b[:i+2])+"R"+string(b[i+3:]))
	s := f.sampler(Options{})
	st, err := s.Sample("app", f.master(), f.man.Timeout, "")
	require.NoError(t, err)
	require.Empty(t, st.WorkerClass, "nothing to infer from: %s", describe(st))
	st, err = s.Sample("app", f.master(), f.man.Timeout, "sync")
	require.NoError(t, err)
	busy := st.Busy
	require.Positive(t, busy)
	st, err = s.Sample("app", f.master(), f.man.Timeout, "")
	require.NoError(t, err)
	require.Equal(t, "sync", st.WorkerClass, describe(st))
	require.Equal(t, busy, st.Busy, describe(st))
	require.Zero(t, st.UnknownActivity, describe(st))
}

func TestFixtureUSR2(t *testing.T) {
	f := loadFixture(t, "usr2", false)
	s := f.sampler(Options{})
	st, err := s.Sample("app", f.master(), f.man.Timeout, "sync")
	require.NoError(t, err)
	require.True(t, st.Upgrading)
	require.Equal(t, len(f.man.Workers), st.Workers, describe(st))
	got := map[int]bool{}
	for _, w := range st.PerWorker {
		got[w.PID] = true
	}
	for _, pid := range f.man.Workers {
		require.True(t, got[pid], "worker %d missing: %s", pid, describe(st))
	}
	require.False(t, got[f.man.UpgradeChild])

	// The new master samples as a master of its own.
	child, err := f.fs.Identify(f.man.UpgradeChild)
	require.NoError(t, err)
	st, err = s.Sample("app.2", child, f.man.Timeout, "sync")
	require.NoError(t, err)
	require.False(t, st.Upgrading)
	require.Equal(t, 2, st.Workers, describe(st))
}

func TestFixtureIdentity(t *testing.T) {
	f := loadFixture(t, "sync", false)
	s := f.sampler(Options{})
	w, err := f.fs.Identify(f.man.Workers["idle"])
	require.NoError(t, err)
	_, err = s.Sample("app", w, f.man.Timeout, "sync")
	require.ErrorIs(t, err, ErrNotMaster)
	// Untitled (no setproctitle): the shared heartbeat file tells.
	w.Cmdline = []string{"/usr/bin/python3", "/usr/bin/gunicorn", "app:app"}
	_, err = s.Sample("app", w, f.man.Timeout, "sync")
	require.ErrorIs(t, err, ErrNotMaster)

	m := f.master()
	m.StartTicks++
	_, err = s.Sample("app", m, f.man.Timeout, "sync")
	require.ErrorIs(t, err, procinfo.ErrPIDReused)
	m = f.master()
	m.PID = 999999
	_, err = s.Sample("app", m, f.man.Timeout, "sync")
	require.ErrorIs(t, err, procinfo.ErrGone)
}

func TestFixtureTimeoutDisabled(t *testing.T) {
	f := loadFixture(t, "sync", false)
	st, err := f.sampler(Options{}).Sample("app", f.master(), 0, "sync")
	require.NoError(t, err)
	require.Empty(t, st.Stuck)
	require.Zero(t, st.PastHalfTimeout+st.Past80Timeout)
	require.Equal(t, 4, st.Busy)
}

func TestFixtureStuckFraction(t *testing.T) {
	f := loadFixture(t, "sync", false)
	// At 0.9 of an 8 s timeout, 4 s stale is not stuck yet.
	st, err := f.sampler(Options{StuckFraction: 0.9}).Sample("app", f.master(), f.man.Timeout, "sync")
	require.NoError(t, err)
	require.Empty(t, st.Stuck)
	require.Equal(t, 4, st.PastHalfTimeout)
	// Out-of-range fractions mean the default.
	st, err = f.sampler(Options{StuckFraction: 7}).Sample("app", f.master(), f.man.Timeout, "sync")
	require.NoError(t, err)
	require.Len(t, st.Stuck, 4)
}

func TestFixtureMemoryMissing(t *testing.T) {
	f := loadFixture(t, "sync", false)
	f.memErr = errors.New("input/output error")
	st, err := f.sampler(Options{}).Sample("app", f.master(), f.man.Timeout, "sync")
	require.NoError(t, err)
	// The idle worker's select set cannot be read: unknown, not idle, and
	// not a permission problem.
	require.Equal(t, 1, st.UnknownActivity, describe(st))
	require.False(t, st.PermissionDenied)
}
