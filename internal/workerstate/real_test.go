package workerstate

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// The tests in this file run real Gunicorn sync workers (Debian's gunicorn,
// through the gunicorntest harness) and sample them through the real /proc.
// Reading /proc/<pid>/syscall and /proc/<pid>/mem needs root or Gunicorn's
// uid with ptrace access, which the harness's processes give a root test.
//
// They run in parallel with each other and, in CI, with other packages'
// tests, on machines with few CPUs: times are measured on the server side
// (heartbeat ages against the time each Sample ran), and requests last
// long enough that a slow client or sampler does not change the outcome.

// realTimeout is the Gunicorn --timeout of most real tests: stuck at 3 s,
// killed after 6 s.
const realTimeout = 6 * time.Second

func procFS(t *testing.T) procinfo.FS {
	t.Helper()
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	return fs
}

// realApp starts Gunicorn and returns it with its master's identity.
func realApp(t *testing.T, opts gunicorntest.Options) (*gunicorntest.Gunicorn, procinfo.Identity) {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = int(realTimeout / time.Second)
	}
	g := gunicorntest.Start(t, opts)
	id, err := procFS(t).Identify(g.MasterPID())
	require.NoError(t, err)
	return g, id
}

// sampler binds a Sampler to one real app.
type sampler struct {
	t       *testing.T
	s       *Sampler
	app     string
	m       procinfo.Identity
	timeout time.Duration
	class   string
}

func (r sampler) sample() AppState {
	r.t.Helper()
	st, err := r.s.Sample(r.app, r.m, r.timeout, r.class)
	require.NoError(r.t, err)
	return st
}

// until samples until cond holds or within passes, returning the last
// state.
func (r sampler) until(within time.Duration, cond func(AppState) bool) AppState {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := r.sample()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("condition not met within %v; last state: %s", within, describe(st))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describe(st AppState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "workers=%d exiting=%d busy=%d idle=%d unknown=%d booting=%d upgrading=%v perm=%v unreadable=%d stuck=%d;",
		st.Workers, st.Exiting, st.Busy, st.Idle, st.UnknownActivity, st.Booting, st.Upgrading, st.PermissionDenied, st.UnreadableWorkers, len(st.Stuck))
	for _, w := range st.PerWorker {
		fmt.Fprintf(&b, " [%d %s age=%v state=%s wchan=%s sys=%s (%s)]", w.PID, w.Activity,
			w.HeartbeatAge.Round(time.Millisecond), w.State, w.Wchan, w.Syscall, w.Reason)
	}
	for _, s := range st.Stuck {
		fmt.Fprintf(&b, " {stuck %d %s peer=%s lport=%d pg=%v client=%v}", s.PID, s.Kind, s.Peer, s.LocalPort, s.PeerIsPostgres, s.PeerIsClient)
	}
	return b.String()
}

func TestRealBusyIdle(t *testing.T) {
	t.Parallel()
	g, m := realApp(t, gunicorntest.Options{Workers: 3})
	r := sampler{t: t, s: NewSampler(procFS(t), Options{}), app: "busyidle", m: m, timeout: realTimeout, class: "sync"}
	for n := 0; n <= 3; n++ {
		var pending []<-chan gunicorntest.Result
		for range n {
			pending = append(pending, g.GetAsync("/sleep?s=2.5"))
		}
		st := r.until(3*time.Second, func(st AppState) bool { return st.Busy == n })
		// Exact, and stable over several samples while the requests run.
		seen := time.Now()
		for i := 0; i < 5 && time.Since(seen) < time.Second; i++ {
			require.Equal(t, 3, st.Workers, describe(st))
			require.Equal(t, n, st.Busy, "n=%d sample %d: %s", n, i, describe(st))
			require.Equal(t, 3-n, st.Idle, "n=%d sample %d: %s", n, i, describe(st))
			require.Zero(t, st.UnknownActivity, describe(st))
			require.Zero(t, st.Booting, describe(st))
			require.False(t, st.PermissionDenied, describe(st))
			require.Equal(t, 3, st.HeartbeatsRead)
			time.Sleep(100 * time.Millisecond)
			st = r.sample()
		}
		for _, ch := range pending {
			res := <-ch
			require.NoError(t, res.Err)
			require.Equal(t, 200, res.Status, res.Body)
		}
	}
}

func TestRealHeartbeatAge(t *testing.T) {
	t.Parallel()
	g, m := realApp(t, gunicorntest.Options{Workers: 3})
	r := sampler{t: t, s: NewSampler(procFS(t), Options{}), app: "hb", m: m, timeout: realTimeout, class: "sync"}
	r.until(3*time.Second, func(st AppState) bool { return st.Idle == 3 })

	sleepRes := g.GetAsync("/sleep?s=4")
	spinRes := g.GetAsync("/spin?s=4")
	// Each request's start is bracketed on the server side: it began
	// HeartbeatAge before its heartbeat was read, which happened between
	// the start and the end of the Sample call.
	type span struct{ lo, hi time.Time }
	var st AppState
	var before, after time.Time
	for deadline := time.Now().Add(3 * time.Second); ; {
		before = time.Now()
		st = r.sample()
		after = time.Now()
		if st.Busy == 2 {
			break
		}
		require.True(t, time.Now().Before(deadline), describe(st))
		time.Sleep(20 * time.Millisecond)
	}
	startOf := map[int]span{}
	for _, w := range st.PerWorker {
		if w.Activity == ActivityBusy {
			startOf[w.PID] = span{before.Add(-w.HeartbeatAge), after.Add(-w.HeartbeatAge)}
		}
	}
	require.Len(t, startOf, 2, describe(st))
	first := describe(st)

	samples := 0
	for loopStart := time.Now(); time.Since(loopStart) < 2500*time.Millisecond; samples++ {
		before = time.Now()
		st = r.sample()
		after = time.Now()
		for _, w := range st.PerWorker {
			require.True(t, w.HeartbeatRead)
			if sp, ok := startOf[w.PID]; ok {
				require.Equal(t, ActivityBusy, w.Activity, describe(st))
				// The age tracks the request's time, within 1 s.
				lo, hi := before.Sub(sp.hi)-time.Second, after.Sub(sp.lo)+time.Second
				require.True(t, w.HeartbeatAge >= lo && w.HeartbeatAge <= hi,
					"age %v not in [%v, %v]: %s\nfirst busy: %s", w.HeartbeatAge, lo, hi, describe(st), first)
				continue
			}
			require.Equal(t, ActivityIdle, w.Activity, describe(st))
			// An idle sync worker notifies every timeout/2.
			require.LessOrEqual(t, w.HeartbeatAge, realTimeout/2+500*time.Millisecond, describe(st))
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.GreaterOrEqual(t, samples, 3)
	// Over 3 s into the 4 s requests: past half of the 6 s timeout.
	st = r.until(2*time.Second, func(st AppState) bool { return st.PastHalfTimeout == 2 })
	require.Zero(t, st.Past80Timeout, describe(st))
	require.Greater(t, st.MaxHeartbeatAge, 3*time.Second, describe(st))
	for _, ch := range []<-chan gunicorntest.Result{sleepRes, spinRes} {
		res := <-ch
		require.NoError(t, res.Err)
		require.Equal(t, 200, res.Status)
	}
	// A worker that has just closed its client connection is idle but
	// notifies a moment later; then every age is back under timeout/2.
	st = r.until(3*time.Second, func(st AppState) bool {
		return st.Idle == 3 && st.MaxHeartbeatAge <= realTimeout/2+500*time.Millisecond
	})
	require.Empty(t, st.Stuck)
}

// silentServer accepts TCP connections on loopback and never sends; it
// reports each accepted connection's remote port (the worker's local port).
func silentServer(t *testing.T) (port int, clients <-chan int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ch := make(chan int, 8)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			ch <- c.RemoteAddr().(*net.TCPAddr).Port
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port, ch
}

func TestRealStuckKinds(t *testing.T) {
	t.Parallel()
	// An 8 s timeout: stuck after 4 s, killed after 8 s; the 6.5 s
	// requests end well before.
	const timeout = 8 * time.Second
	g, m := realApp(t, gunicorntest.Options{Workers: 4, Timeout: 8})
	pgPort, clients := silentServer(t)
	tl := timeline.New(100, 0)
	r := sampler{t: t, s: NewSampler(procFS(t), Options{Timeline: tl, PostgresPorts: []int{pgPort}}),
		app: "stuck", m: m, timeout: timeout, class: "sync"}
	r.until(3*time.Second, func(st AppState) bool { return st.Idle == 4 })

	start := time.Now()
	results := []<-chan gunicorntest.Result{
		g.GetAsync("/sleep?s=6.5"),
		g.GetAsync("/spin?s=6.5"),
		g.GetAsync("/lock?s=6.5"),
	}
	recvRes := g.GetAsync("/recv?port=" + strconv.Itoa(pgPort))
	var clientPort int
	select {
	case clientPort = <-clients:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker did not connect to the silent server")
	}

	st := r.until(6*time.Second, func(st AppState) bool { return len(st.Stuck) == 4 })
	require.GreaterOrEqual(t, time.Since(start), timeout/2)
	byKind := map[StuckKind]StuckSnapshot{}
	for _, snap := range st.Stuck {
		byKind[snap.Kind] = snap
	}
	require.Len(t, byKind, 4, describe(st))
	sock := byKind[KindSocketRead]
	require.Equal(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(pgPort)), sock.Peer, describe(st))
	require.Equal(t, clientPort, sock.LocalPort, describe(st))
	require.True(t, sock.PeerIsPostgres, describe(st))
	require.Equal(t, "recvfrom", sock.Syscall, describe(st))
	require.Equal(t, "clock_nanosleep", byKind[KindSleep].Syscall, describe(st))
	require.Equal(t, "futex", byKind[KindFutex].Syscall, describe(st))
	require.Contains(t, []string{"running", ""}, byKind[KindCPU].Syscall, describe(st))
	for _, k := range []StuckKind{KindSleep, KindCPU, KindFutex, KindSocketRead} {
		require.Equal(t, 1, st.StuckNow[k], "%s: %s", k, describe(st))
	}
	for _, snap := range st.Stuck {
		// The client may have been slow to send, so the age is at most
		// the time since the requests were sent.
		require.LessOrEqual(t, snap.HeartbeatAge, time.Since(start), describe(st))
		require.Greater(t, snap.HeartbeatAge, timeout/2, describe(st))
		require.False(t, snap.FirstSeen.IsZero())
	}

	// More samples: no new timeline events for the same episodes.
	for range 2 {
		st2 := r.sample()
		require.LessOrEqual(t, len(st2.Stuck), 4)
	}
	events := tl.Select(timeline.Query{App: "stuck", Kinds: []string{EventKindStuck}})
	require.Len(t, events, 4)
	causes := map[string]bool{}
	for _, e := range events {
		causes[e.Cause] = true
		require.Equal(t, EventSource, e.Source)
		require.NotZero(t, e.PID)
		require.NotEmpty(t, e.Detail)
	}
	require.Equal(t, map[string]bool{"sleep": true, "cpu": true, "futex": true, "socket_read": true}, causes)
	st = r.sample()
	for _, k := range []StuckKind{KindSleep, KindCPU, KindFutex, KindSocketRead} {
		require.Equal(t, uint64(1), st.StuckEpisodesTotal[k], k.String())
	}
	require.Zero(t, st.StuckEpisodesTotal[KindOther])
	require.Zero(t, st.StuckEpisodesTotal[KindDisk])
	for _, ch := range results {
		res := <-ch
		require.NoError(t, res.Err)
		require.Equal(t, 200, res.Status, res.Body)
	}
	_ = recvRes // answered when the silent server closes at cleanup
}

func TestRealSignals(t *testing.T) {
	t.Parallel()
	g, m := realApp(t, gunicorntest.Options{Workers: 2})
	r := sampler{t: t, s: NewSampler(procFS(t), Options{}), app: "signals", m: m, timeout: realTimeout, class: "sync"}
	counted := func(n int) AppState {
		t.Helper()
		return r.until(5*time.Second, func(st AppState) bool {
			return st.Workers == n && st.Booting == 0 && st.Idle == n
		})
	}
	counted(2)

	require.NoError(t, g.Signal(syscall.SIGTTIN))
	require.NoError(t, g.WaitWorkers(3, 5*time.Second))
	st := counted(3)
	require.Len(t, g.WorkerPIDs(), st.Workers)

	require.NoError(t, g.Signal(syscall.SIGTTOU))
	require.NoError(t, g.WaitWorkers(2, 5*time.Second))
	st = counted(2)
	require.Len(t, g.WorkerPIDs(), st.Workers)

	before := g.WorkerPIDs()
	require.NoError(t, g.Signal(syscall.SIGHUP))
	st = r.until(5*time.Second, func(st AppState) bool {
		if st.Workers != 2 || st.Booting != 0 {
			return false
		}
		for _, w := range st.PerWorker {
			for _, old := range before {
				if w.PID == old {
					return false
				}
			}
		}
		return true
	})
	require.False(t, st.Upgrading)

	require.NoError(t, g.Signal(syscall.SIGUSR2))
	st = r.until(10*time.Second, func(st AppState) bool { return st.Upgrading })
	// The re-exec'd master is not one of the old master's workers.
	require.Equal(t, 2, st.Workers, describe(st))
	for _, w := range st.PerWorker {
		require.NotEqual(t, ActivityUnknown, w.Activity, describe(st))
	}
}

func TestRealWorkerIsNotMaster(t *testing.T) {
	t.Parallel()
	g, m := realApp(t, gunicorntest.Options{Workers: 1})
	fs := procFS(t)
	s := NewSampler(fs, Options{})
	w, err := fs.Identify(g.WorkerPIDs()[0])
	require.NoError(t, err)
	_, err = s.Sample("w", w, realTimeout, "sync")
	require.ErrorIs(t, err, ErrNotMaster)

	// A reused pid: same pid, another start time.
	stale := m
	stale.StartTicks--
	_, err = s.Sample("w", stale, realTimeout, "sync")
	require.ErrorIs(t, err, procinfo.ErrPIDReused)
}

func TestRealClassInferenceAndGthread(t *testing.T) {
	t.Parallel()
	t.Run("unknown class inferred sync", func(t *testing.T) {
		t.Parallel()
		_, m := realApp(t, gunicorntest.Options{Workers: 2})
		r := sampler{t: t, s: NewSampler(procFS(t), Options{}), app: "infer", m: m, timeout: realTimeout}
		st := r.until(3*time.Second, func(st AppState) bool { return st.Idle == 2 })
		require.True(t, st.ClassInferred)
		require.Equal(t, "sync", st.WorkerClass)
	})
	t.Run("gthread is unknown", func(t *testing.T) {
		t.Parallel()
		g, m := realApp(t, gunicorntest.Options{Workers: 2, ExtraArgs: []string{"-k", "gthread", "--threads", "2"}})
		r := sampler{t: t, s: NewSampler(procFS(t), Options{}), app: "gthread", m: m, timeout: realTimeout, class: "gthread"}
		res := g.GetAsync("/sleep?s=1")
		for range 5 {
			st := r.sample()
			require.Equal(t, 2, st.Workers)
			require.Zero(t, st.Busy+st.Idle, describe(st))
			require.Equal(t, 2, st.UnknownActivity+st.Booting, describe(st))
			require.Equal(t, "gthread", st.WorkerClass)
			time.Sleep(100 * time.Millisecond)
		}
		// Class not given: gthread waits in epoll, so it is never taken
		// for sync.
		r.class, r.app = "", "gthread-unknown"
		st := r.sample()
		require.False(t, st.ClassInferred, describe(st))
		require.Equal(t, 2, st.UnknownActivity, describe(st))
		require.NoError(t, (<-res).Err)
	})
}

// A client that sends half a request holds a sync worker in recv() on the
// connection it opened: the worker is stuck on a socket, but the peer is
// the app's own client, not a service it called. It must say so, or an
// incident names the client's ephemeral port as a hung dependency (seen in
// the demo: "wait on a socket to 127.0.0.1:34591, 127.0.0.1:59692").
func TestRealStalledClientIsTheAppsOwnClient(t *testing.T) {
	t.Parallel()
	const timeout = 4 * time.Second
	g, m := realApp(t, gunicorntest.Options{Workers: 1, Timeout: 4})
	r := sampler{t: t, s: NewSampler(procFS(t), Options{}), app: "stalled", m: m, timeout: timeout, class: "sync"}
	r.until(3*time.Second, func(st AppState) bool { return st.Idle == 1 })

	conn, err := net.DialTimeout("tcp", g.Addr, 2*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	// Headers without the blank line that ends them: the worker waits.
	_, err = conn.Write([]byte("GET /ok HTTP/1.1\r\nHost: test\r\n"))
	require.NoError(t, err)

	st := r.until(timeout, func(st AppState) bool { return len(st.Stuck) == 1 })
	snap := st.Stuck[0]
	require.Equal(t, KindSocketRead, snap.Kind, describe(st))
	require.Equal(t, conn.LocalAddr().String(), snap.Peer, describe(st))
	_, port, err := net.SplitHostPort(g.Addr)
	require.NoError(t, err)
	require.Equal(t, port, strconv.Itoa(snap.LocalPort), "the worker's end is the listener's port: %s", describe(st))
	require.True(t, snap.PeerIsClient, describe(st))
	require.False(t, snap.PeerIsPostgres, describe(st))
}

// A worker that died and is not reaped yet (here: killed while the master
// is stopped, so it stays a zombie) is not counted as a worker, and is
// counted as exiting: the count is short of what the master runs until
// the replacement is forked.
func TestRealExitingWorker(t *testing.T) {
	t.Parallel()
	g, m := realApp(t, gunicorntest.Options{Workers: 2})
	fs := procFS(t)
	r := sampler{t: t, s: NewSampler(fs, Options{}), app: "exiting", m: m, timeout: realTimeout, class: "sync"}
	st := r.until(5*time.Second, func(st AppState) bool { return st.Workers == 2 && st.Booting == 0 })
	require.Zero(t, st.Exiting, describe(st))

	require.NoError(t, g.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = g.Signal(syscall.SIGCONT) })
	victim := g.WorkerPIDs()[0]
	require.NoError(t, g.SignalWorker(victim, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		ps, err := fs.Stat(victim)
		return err == nil && ps.Zombie()
	}, 5*time.Second, 10*time.Millisecond, "the killed worker is a zombie while its master is stopped")
	st = r.sample()
	require.Equal(t, [2]int{1, 1}, [2]int{st.Workers, st.Exiting}, describe(st))

	require.NoError(t, g.Signal(syscall.SIGCONT))
	r.until(10*time.Second, func(st AppState) bool { return st.Workers == 2 && st.Exiting == 0 })
}
