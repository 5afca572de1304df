package demo

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// This file runs `make demo`'s command, reflex-demo, as a child of the
// test and proves that it leaves nothing behind, however it ends: the
// narrative's end (TestDemoNarrative) and an interrupt
// (TestDemoInterruptedLeavesNothingRunning).
//
// The test process is a child subreaper while the demo runs, so a
// descendant that outlives its parent (a daemonizing child, an orphaned
// worker, a backend of a killed postmaster) is reparented to the test and
// cannot hide under init; every descendant is recorded by pid and start
// time while the demo runs, and after the demo exits none of them may be
// alive, nor may any process the test did not start before have the test
// as its parent. The demo's TMPDIR is a directory of the test's, which
// must be empty afterwards: that covers the directory the demo announces
// and every other one it or its harnesses create, the gunicorn-reflex
// binary's included.

const (
	// midNarrativeTimeout bounds the wait for the second heading: the
	// demo builds gunicorn-reflex, runs initdb and starts five programs
	// before the first step, on a machine that may be compiling too.
	midNarrativeTimeout = 5 * time.Minute
	// narrativeEndTimeout bounds the wait from the second heading to the
	// demo's exit at the end of the narrative: three more steps, each of
	// whose waits the demo bounds at 60 s, and the stop.
	narrativeEndTimeout = 5 * time.Minute
	// interruptExitTimeout bounds the wait from SIGINT to exit. The
	// harnesses' own bounds are 10 s per process from SIGTERM to SIGKILL;
	// a clean stop takes a few seconds.
	interruptExitTimeout = 60 * time.Second
	// sampleInterval is how often the test records the demo's
	// descendants, so even a short-lived one is seen.
	sampleInterval = 200 * time.Millisecond
)

// stoppingLine is what reflex-demo prints when the narrative has ended or
// been interrupted and it starts stopping what it started.
const stoppingLine = "stopping every process by pid..."

// demoRun is one reflex-demo the test started, with the tracker recording
// its descendants.
type demoRun struct {
	cmd    *exec.Cmd
	out    *narrativeWatch
	stderr *testenv.LockedBuffer
	// tmp is the demo's TMPDIR.
	tmp string
	tr  *tracker
	// exited is closed when cmd.Wait has returned: the demo is reaped and
	// its output copied.
	exited       chan struct{}
	stopSampling func()
}

// startDemo builds reflex-demo and starts it as `make demo` does, with
// the test a child subreaper and a TMPDIR of the test's. Whatever fails
// afterwards, a cleanup stops the demo and kills whatever it left.
func startDemo(t *testing.T) *demoRun {
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	setSubreaper(t)

	bin := filepath.Join(t.TempDir(), "reflex-demo")
	require.NoError(t, testenv.BuildCommand(bin, "./internal/demo/cmd/reflex-demo"))
	r := &demoRun{
		out:    newNarrativeWatch(),
		stderr: &testenv.LockedBuffer{},
		tmp:    sharedTempDir(t),
		tr:     newTracker(fs, os.Getpid()),
		exited: make(chan struct{}),
	}
	r.cmd = exec.Command(bin)
	r.cmd.Dir = testenv.ModuleRoot()
	r.cmd.Env = append(os.Environ(), "TMPDIR="+r.tmp)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.stderr
	// The demo's programs get pipes of their own, so nothing should hold
	// these open after it exits; if something does, Wait gives up on
	// them instead of hanging.
	r.cmd.WaitDelay = 5 * time.Second
	require.NoError(t, r.cmd.Start())
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	r.stopSampling = r.tr.run(r.exited)
	t.Cleanup(func() {
		stopDemo(t, r.cmd, r.exited)
		r.stopSampling()
		r.tr.killLeftovers(t)
	})
	return r
}

// String is the demo's output so far, for failure messages.
func (r *demoRun) String() string {
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", r.out, r.stderr)
}

// waitFor waits until the demo has printed s, and fails the test if it
// exits first or takes longer than timeout. A demo that exits because a
// real part is missing is a skip, or a failure under REFLEX_REQUIRE_REAL=1.
func (r *demoRun) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	select {
	case <-r.out.seen(s):
	case <-r.exited:
		// Its output is all copied now: it may have printed s just before
		// it exited.
		select {
		case <-r.out.seen(s):
			return
		default:
		}
		if m := regexp.MustCompile(`missing: .*`).FindString(r.stderr.String()); m != "" {
			testenv.Missing(t, "reflex-demo: "+m)
		}
		t.Fatalf("reflex-demo exited (%v) before %q:\n%s", r.cmd.ProcessState, s, r)
	case <-time.After(timeout):
		t.Fatalf("reflex-demo did not print %q within %v:\n%s", s, timeout, r)
	}
}

// midNarrative waits for the second heading, when every kind of process
// the demo starts is running, and requires them all, so that "nothing is
// left" afterwards is about all of them.
func (r *demoRun) midNarrative(t *testing.T) {
	t.Helper()
	r.waitFor(t, Steps[1], midNarrativeTimeout)
	requireEveryKind(t, r.tr.sample())
}

// waitExit waits at most timeout for the demo to exit and stops sampling
// its descendants.
func (r *demoRun) waitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(timeout):
		t.Fatalf("reflex-demo still running after %v:\n%s", timeout, r)
	}
	r.stopSampling()
	t.Logf("reflex-demo exited (%v); %d processes recorded", r.cmd.ProcessState, len(r.tr.recorded()))
}

// requireNothingLeft requires, once the demo has exited, that no process
// it started is alive and that its TMPDIR is empty, the directory it
// announced included.
func (r *demoRun) requireNothingLeft(t *testing.T) {
	t.Helper()
	if left := r.tr.leftovers(); len(left) > 0 {
		t.Errorf("processes left running after reflex-demo exited:\n  %s\nstderr:\n%s", strings.Join(left, "\n  "), r.stderr)
	}
	dir := r.out.dir()
	require.NotEmpty(t, dir, "the demo announces where everything lives")
	require.True(t, strings.HasPrefix(dir, r.tmp+string(os.PathSeparator)), "%s is under the demo's TMPDIR %s", dir, r.tmp)
	require.NoDirExists(t, dir)
	ents, err := os.ReadDir(r.tmp)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	require.Empty(t, names, "left in the demo's TMPDIR %s", r.tmp)
}

// setSubreaper makes the test process a child subreaper until the test
// ends.
func setSubreaper(t *testing.T) {
	// The harnesses may have made the test a subreaper already
	// (gunicorntest does, once per process); that is restored afterwards.
	var was int32
	// PR_GET_CHILD_SUBREAPER stores an int through its pointer argument.
	require.NoError(t, unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&was)), 0, 0, 0))
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, uintptr(was), 0, 0, 0) })
}

// sharedTempDir is a directory for the demo's TMPDIR that PostgreSQL's
// user can traverse (pgtest runs the server as that user when the test
// runs as root), unlike t.TempDir's 0700 directories; it is removed after
// the test.
func sharedTempDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "reflex-demo-test-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	require.NoError(t, os.Chmod(d, 0o755))
	return d
}

// stopDemo stops a demo the test did not get to interrupt (or that did
// not exit after the interrupt): SIGINT so it stops what it started, then
// SIGKILL.
func stopDemo(t *testing.T, cmd *exec.Cmd, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
		return
	case <-time.After(interruptExitTimeout):
	}
	t.Logf("reflex-demo still running %v after SIGINT; killing it", interruptExitTimeout)
	_ = cmd.Process.Kill()
	<-exited
}

// proc is one recorded descendant: pid and start time name it for its
// whole life.
type proc struct {
	pid     int
	start   uint64
	comm    string
	cmdline string
}

func (p proc) String() string {
	return fmt.Sprintf("pid %d (%s) %s", p.pid, p.comm, p.cmdline)
}

// tracker records every process descended from the demo, or reparented
// to the test.
type tracker struct {
	fs   procinfo.FS
	self int
	// before are the test's children when the demo started: not the
	// demo's (another test's, if any).
	before map[[2]uint64]bool

	mu   sync.Mutex
	seen map[[2]uint64]proc
}

// key names a process for its whole life: pid and start time.
func key(st procinfo.Stat) [2]uint64 { return [2]uint64{uint64(st.PID), st.StartTicks} }

func newTracker(fs procinfo.FS, self int) *tracker {
	tr := &tracker{fs: fs, self: self, before: map[[2]uint64]bool{}, seen: map[[2]uint64]proc{}}
	for _, st := range tr.children() {
		tr.before[key(st)] = true
	}
	return tr
}

// snapshot maps each process of the host to its stat, by pid, and lists
// the pids of each parent's children; processes that vanish meanwhile are
// left out.
func (tr *tracker) snapshot() (map[int]procinfo.Stat, map[int][]int) {
	pids, err := tr.fs.PIDs()
	if err != nil {
		return nil, nil
	}
	stats := make(map[int]procinfo.Stat, len(pids))
	kids := map[int][]int{}
	for _, pid := range pids {
		st, err := tr.fs.Stat(pid)
		if err != nil {
			continue
		}
		stats[pid] = st
		kids[st.PPID] = append(kids[st.PPID], pid)
	}
	return stats, kids
}

// children returns the stats of the test's children.
func (tr *tracker) children() map[int]procinfo.Stat {
	stats, kids := tr.snapshot()
	out := map[int]procinfo.Stat{}
	for _, pid := range kids[tr.self] {
		out[pid] = stats[pid]
	}
	return out
}

// sample records the test's children it did not have before (the demo,
// and whatever was reparented to the test) and their descendants, and
// returns them. The demo is found as a child, not by its pid, so that once
// it is reaped a process reusing its pid is not taken for it.
func (tr *tracker) sample() []proc {
	stats, kids := tr.snapshot()
	var queue []int
	for _, pid := range kids[tr.self] {
		if !tr.before[key(stats[pid])] {
			queue = append(queue, pid)
		}
	}
	visited := map[int]bool{}
	var now []proc
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		st, ok := stats[pid]
		if !ok || visited[pid] {
			continue
		}
		visited[pid] = true
		queue = append(queue, kids[pid]...)
		k := key(st)
		p, ok := tr.seen[k]
		if !ok {
			argv, _ := tr.fs.Cmdline(pid)
			p = proc{pid: pid, start: st.StartTicks, comm: st.Comm, cmdline: strings.Join(argv, " ")}
			tr.seen[k] = p
		}
		now = append(now, p)
	}
	slices.SortFunc(now, func(a, b proc) int { return a.pid - b.pid })
	return now
}

// run samples every sampleInterval until the returned func is called; it
// samples once more after exited is closed, for what the demo's end
// reparented to the test.
func (tr *tracker) run(exited <-chan struct{}) func() {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(sampleInterval)
		defer tick.Stop()
		for {
			tr.sample()
			select {
			case <-quit:
				return
			case <-exited:
				tr.sample()
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

func (tr *tracker) recorded() []proc {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make([]proc, 0, len(tr.seen))
	for _, p := range tr.seen {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b proc) int { return a.pid - b.pid })
	return out
}

// alive reports whether the recorded process still runs. A zombie has
// exited; one reparented to the test is reaped here, so it does not
// linger for the rest of the test binary's life.
func (tr *tracker) alive(p proc) (procinfo.Stat, bool) {
	st, err := tr.fs.Stat(p.pid)
	if err != nil || st.StartTicks != p.start {
		return st, false // gone, or the pid now names another process
	}
	if st.Zombie() {
		tr.reap(st)
		return st, false
	}
	return st, true
}

func (tr *tracker) reap(st procinfo.Stat) {
	if st.PPID != tr.self {
		return
	}
	var ws unix.WaitStatus
	_, _ = unix.Wait4(st.PID, &ws, unix.WNOHANG, nil)
}

// leftovers names every recorded process still alive, and every child of
// the test that is neither one it had before the demo nor reaped now.
func (tr *tracker) leftovers() []string {
	var left []string
	named := map[int]bool{}
	for _, p := range tr.recorded() {
		if st, ok := tr.alive(p); ok {
			argv, _ := tr.fs.Cmdline(p.pid)
			left = append(left, fmt.Sprintf("pid %d (%s, state %c, ppid %d) %s", p.pid, st.Comm, st.State, st.PPID, strings.Join(argv, " ")))
			named[p.pid] = true
		}
	}
	for pid, st := range tr.children() {
		if tr.before[key(st)] || named[pid] {
			continue
		}
		if st.Zombie() {
			tr.reap(st)
			continue
		}
		argv, _ := tr.fs.Cmdline(pid)
		left = append(left, fmt.Sprintf("pid %d (%s, state %c, child of the test, never seen under the demo) %s", pid, st.Comm, st.State, strings.Join(argv, " ")))
	}
	slices.Sort(left)
	return left
}

// killLeftovers kills, by pid, every recorded process still alive and
// every new child of the test, and reaps those that were the test's, so
// a failed run does not leave them to the next. Each is signalled through
// a pidfd after its start time is checked again, so a pid reused since
// the check is never signalled.
func (tr *tracker) killLeftovers(t *testing.T) {
	var killed []int
	kill := func(pid int, start uint64) {
		err := procinfo.SignalChecked(pid, syscall.SIGKILL, func() error {
			if st, err := tr.fs.Stat(pid); err != nil || st.StartTicks != start {
				return procinfo.ErrGone
			}
			return nil
		})
		if err == nil {
			killed = append(killed, pid)
		}
	}
	for _, p := range tr.recorded() {
		if _, ok := tr.alive(p); ok {
			kill(p.pid, p.start)
		}
	}
	for pid, st := range tr.children() {
		if !tr.before[key(st)] && !st.Zombie() && !slices.Contains(killed, pid) {
			kill(pid, st.StartTicks)
		}
	}
	if len(killed) == 0 {
		return
	}
	t.Logf("killed leftovers %v", killed)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		left := tr.leftovers()
		if len(left) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("leftovers still alive 10s after SIGKILL: %v", tr.leftovers())
}

// kinds are the processes the demo must be running in the middle of its
// narrative, so that "nothing is left" is about all of them.
var kinds = []struct {
	name string
	min  int
	is   func(proc) bool
}{
	// The master's comm is its script's name; setproctitle renames the
	// workers "gunicorn: worker [shop]".
	{"Gunicorn master and 2 workers", 3, func(p proc) bool { return p.comm == "gunicorn" || strings.HasPrefix(p.comm, "gunicorn: ") }},
	{"PostgreSQL postmaster and its processes", 2, func(p proc) bool { return p.comm == "postgres" }},
	{"gunicorn-reflex", 1, func(p proc) bool { return p.comm == "gunicorn-reflex" }},
	{"Prometheus", 1, func(p proc) bool { return p.comm == "prometheus" }},
	{"Alertmanager", 1, func(p proc) bool { return strings.Contains(p.cmdline, "alertmanager --config.file") }},
}

func requireEveryKind(t *testing.T, running []proc) {
	var lines bytes.Buffer
	for _, p := range running {
		fmt.Fprintf(&lines, "  %s\n", p)
	}
	for _, k := range kinds {
		n := 0
		for _, p := range running {
			if k.is(p) {
				n++
			}
		}
		require.GreaterOrEqual(t, n, k.min, "%s among the demo's processes:\n%s", k.name, lines.String())
	}
	t.Logf("the demo's processes mid-narrative:\n%s", lines.String())
}

// narrativeWatch captures the demo's stdout, tells when a string has
// appeared in it, and keeps the directory the demo announces.
type narrativeWatch struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// waits holds, for each string asked about and not yet seen, the
	// channel seen returned for it.
	waits map[string]chan struct{}
}

func newNarrativeWatch() *narrativeWatch {
	return &narrativeWatch{waits: map[string]chan struct{}{}}
}

// seen returns a channel closed once s has appeared in the output.
func (w *narrativeWatch) seen(s string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.waits[s]; ok {
		return ch
	}
	ch := make(chan struct{})
	if bytes.Contains(w.buf.Bytes(), []byte(s)) {
		close(ch)
		return ch
	}
	w.waits[s] = ch
	return ch
}

func (w *narrativeWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for s, ch := range w.waits {
		if bytes.Contains(w.buf.Bytes(), []byte(s)) {
			close(ch)
			delete(w.waits, s)
		}
	}
	return len(p), nil
}

func (w *narrativeWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// livesIn matches the line in which the demo says where its files are.
var livesIn = regexp.MustCompile(`everything lives in (\S+) and temporary directories beside it`)

func (w *narrativeWatch) dir() string {
	if m := livesIn.FindStringSubmatch(w.String()); m != nil {
		return m[1]
	}
	return ""
}
