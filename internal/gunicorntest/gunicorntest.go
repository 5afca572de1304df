// Package gunicorntest owns starting, observing and stopping a real Gunicorn
// master for tests: it writes the embedded plain-WSGI test app (reflexapp) to
// a temporary directory, runs Debian's gunicorn (or `python3 -m gunicorn`) on a
// free loopback port in its own session, waits until the pidfile is written,
// every worker has sent its first heartbeat and /ok answers, and registers a
// cleanup that stops it by pid and proves, through /proc, that no process of
// its session is left.
//
// The first Start makes the test process a child subreaper
// (PR_SET_CHILD_SUBREAPER), so workers orphaned by a forced stop or a USR2
// re-exec master whose parent exited are reparented to the test process and
// reaped by Stop, instead of becoming zombies under a PID 1 that does not
// reap (as in some containers and VMs).
package gunicorntest

import (
	"bytes"
	_ "embed" // for the reflexapp source
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// AppSource is the WSGI test application. Endpoints: /ok ("ok"), /pid (the
// worker pid), /sleep?s=F, /spin?s=F (CPU busy loop), /error (RuntimeError,
// 500), /alloc?mb=N[&s=F] (allocate and touch N MiB, optionally hold for s),
// /lock?s=F (futex wait on a lock a background thread holds for s seconds),
// /recv?port=P (block in recv on a connection to 127.0.0.1:P until the peer
// sends or closes), /db?s=F (psycopg2 SELECT pg_sleep(F) on the DSN in
// REFLEX_TEST_PG_DSN; psycopg2 is imported lazily), /dbview (SELECT * FROM
// reflex_slow, a view the test creates, e.g. over pg_sleep) and /dbrow?id=N
// (UPDATE reflex_items SET n = n + 1 WHERE id = N, committed). Bad
// parameters give 400, unknown paths 404.
//
//go:embed app/reflexapp.py
var AppSource []byte

// AppModule is the APP_MODULE argument the harness passes, and so Gunicorn's
// default proc_name.
const AppModule = "reflexapp:app"

// PgDSNEnv is the environment variable /db reads its DSN from.
const PgDSNEnv = "REFLEX_TEST_PG_DSN"

const pollInterval = 20 * time.Millisecond

// ErrNotWorker is returned by SignalWorker for a pid that is not a current
// worker of the master.
var ErrNotWorker = errors.New("not a current worker of the master")

// ErrNoMaster is returned when no master of this harness is running.
var ErrNoMaster = errors.New("no gunicorn master running")

var errPortInUse = errors.New("gunicorn reported Connection in use")

// pickPort returns a loopback port that was free a moment ago. Tests replace
// it to exercise the "Connection in use" retry.
var pickPort = freeLoopbackPort

// Options configures Start. The zero value is a valid configuration.
type Options struct {
	Workers         int    // --workers; default 2
	Timeout         int    // --timeout seconds; default 2; negative passes 0 (timeouts disabled)
	GracefulTimeout int    // --graceful-timeout seconds; default 3; negative passes 0
	Name            string // --name (proc_name); empty = not passed
	AccessLogFormat string // --access-logformat; empty = Gunicorn default
	NoAccessLog     bool   // do not pass --access-logfile (Gunicorn then writes no access log)
	// ErrorLogToStderr passes --error-logfile - ; ErrorLog is then the file
	// the harness captures the master's stderr into.
	ErrorLogToStderr bool
	// NoSetproctitle runs Gunicorn with setproctitle unimportable (a
	// setproctitle.py raising ImportError is put first on PYTHONPATH), so
	// /proc/<pid>/cmdline stays the exec argv even where
	// python3-setproctitle is installed.
	NoSetproctitle bool
	// UsePythonM starts `<interpreter> -m gunicorn` instead of the gunicorn
	// script; the interpreter is the one in the script's #! line, so it is
	// the Python that has gunicorn installed (not, say, a pyenv shim).
	UsePythonM  bool
	MaxRequests int      // --max-requests; 0 = not passed
	LogLevel    string   // --log-level; default "info"
	ExtraArgs   []string // appended before APP_MODULE; later flags override earlier ones
	Env         []string // KEY=VALUE added to (and overriding) the test's environment
	Dir         string   // working directory holding app, logs and pidfile; default t.TempDir()
	// Wrapper is an argv prefix the master is started through; it must exec
	// the rest in place (keeping the pid), as systemd-cat does.
	Wrapper []string

	// NoTimeoutArg passes no --timeout, so a config file or GUNICORN_CMD_ARGS
	// can set it; Timeout still sizes ClientTimeout.
	NoTimeoutArg bool

	StartTimeout  time.Duration // readiness bound; default 20 s
	StopTimeout   time.Duration // SIGTERM-to-exit bound before SIGKILL; default max(10 s, GracefulTimeout+5 s)
	ClientTimeout time.Duration // per-request bound for Get; default Timeout+5 s, or 60 s when timeouts are disabled
}

// Gunicorn is one running master started by Start.
type Gunicorn struct {
	Dir       string   // working directory (--chdir), holding reflexapp.py
	ErrorLog  string   // the Gunicorn error log (the stderr capture with ErrorLogToStderr)
	AccessLog string   // the access log; empty with NoAccessLog
	Pidfile   string   // --pid
	Stderr    string   // file capturing the master's stderr (and its workers')
	Stdout    string   // file capturing stdout
	Addr      string   // 127.0.0.1:port
	BaseURL   string   // http://127.0.0.1:port
	Argv      []string // the argv exec'd for the master
	Opts      Options  // the options with defaults filled in

	t      testing.TB
	client *http.Client
	env    []string

	mu    sync.Mutex
	proc  *os.Process
	sid   int // pid of the master we started; also its session and process group id
	done  chan struct{}
	state *os.ProcessState

	stopOnce sync.Once
}

// Result is the outcome of one GetAsync request.
type Result struct {
	Status  int
	Body    string
	Err     error
	Elapsed time.Duration
}

// Start starts Gunicorn with the reflex test app and waits until it serves.
// It skips the test when gunicorn is missing (fails under
// REFLEX_REQUIRE_REAL=1) and fails it when Gunicorn does not become ready.
// A t.Cleanup calls Stop.
func Start(t testing.TB, opts Options) *Gunicorn {
	t.Helper()
	bin := testenv.LookPath(t, "gunicorn")
	opts = withDefaults(t, opts)

	cmd := []string{bin}
	if opts.UsePythonM {
		py, err := interpreter(t, bin)
		if err != nil {
			t.Fatalf("gunicorntest: %v", err)
		}
		cmd = []string{py, "-m", "gunicorn"}
	}

	g := &Gunicorn{
		Dir:     opts.Dir,
		Pidfile: filepath.Join(opts.Dir, "gunicorn.pid"),
		Stderr:  filepath.Join(opts.Dir, "stderr.log"),
		Stdout:  filepath.Join(opts.Dir, "stdout.log"),
		Opts:    opts,
		t:       t,
		client:  newClient(),
	}
	g.ErrorLog = filepath.Join(opts.Dir, "error.log")
	if opts.ErrorLogToStderr {
		g.ErrorLog = g.Stderr
	}
	if !opts.NoAccessLog {
		g.AccessLog = filepath.Join(opts.Dir, "access.log")
	}
	if err := os.WriteFile(filepath.Join(opts.Dir, "reflexapp.py"), AppSource, 0o644); err != nil {
		t.Fatalf("gunicorntest: write app: %v", err)
	}
	pythonPath := ""
	if opts.NoSetproctitle {
		shim := filepath.Join(opts.Dir, "nosetproctitle")
		if err := os.MkdirAll(shim, 0o755); err != nil {
			t.Fatalf("gunicorntest: %v", err)
		}
		src := "raise ImportError('setproctitle disabled by gunicorntest')\n"
		if err := os.WriteFile(filepath.Join(shim, "setproctitle.py"), []byte(src), 0o644); err != nil {
			t.Fatalf("gunicorntest: write setproctitle shim: %v", err)
		}
		pythonPath = shim
	}
	g.env = buildEnv(os.Environ(), opts.Env, pythonPath)
	enableSubreaper(t)
	t.Cleanup(g.Stop)

	const attempts = 3
	for attempt := 1; ; attempt++ {
		port, err := pickPort()
		if err != nil {
			t.Fatalf("gunicorntest: pick port: %v", err)
		}
		if err := g.launch(cmd, port); err != nil {
			t.Fatalf("gunicorntest: %v", err)
		}
		err = g.waitReady(opts.StartTimeout)
		if err == nil {
			return g
		}
		tail := g.logTail()
		// Not ready means not serving: kill rather than wait for a master
		// that may be sleeping in its bind-retry loop.
		if stopErr := g.terminate(true); stopErr != nil {
			t.Errorf("gunicorntest: stop failed start: %v", stopErr)
		}
		if !errors.Is(err, errPortInUse) || attempt == attempts {
			t.Fatalf("gunicorntest: start %v: %v\n%s", g.Argv, err, tail)
		}
		t.Logf("gunicorntest: port %d in use, retrying on another port", port)
	}
}

func withDefaults(t testing.TB, o Options) Options {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Timeout == 0 {
		o.Timeout = 2
	}
	if o.GracefulTimeout == 0 {
		o.GracefulTimeout = 3
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 20 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = max(10*time.Second, time.Duration(max(o.GracefulTimeout, 0)+5)*time.Second)
	}
	if o.ClientTimeout <= 0 {
		o.ClientTimeout = 60 * time.Second
		if o.Timeout > 0 {
			o.ClientTimeout = time.Duration(o.Timeout+5) * time.Second
		}
	}
	return o
}

// args builds the Gunicorn command line after the program.
func (g *Gunicorn) args(port int) []string {
	o := g.Opts
	errLog := g.ErrorLog
	if o.ErrorLogToStderr {
		errLog = "-"
	}
	a := []string{
		"--bind", "127.0.0.1:" + strconv.Itoa(port),
		"--pid", g.Pidfile,
		"--error-logfile", errLog,
		"--workers", strconv.Itoa(o.Workers),
		"--graceful-timeout", strconv.Itoa(max(o.GracefulTimeout, 0)),
		"--log-level", o.LogLevel,
		"--chdir", g.Dir,
	}
	if !o.NoTimeoutArg {
		a = append(a, "--timeout", strconv.Itoa(max(o.Timeout, 0)))
	}
	if g.AccessLog != "" {
		a = append(a, "--access-logfile", g.AccessLog)
	}
	if o.AccessLogFormat != "" {
		a = append(a, "--access-logformat", o.AccessLogFormat)
	}
	if o.Name != "" {
		a = append(a, "--name", o.Name)
	}
	if o.MaxRequests > 0 {
		a = append(a, "--max-requests", strconv.Itoa(o.MaxRequests))
	}
	a = append(a, o.ExtraArgs...)
	return append(a, AppModule)
}

// launch starts the master in a new session (so Stop can find and kill
// everything it forked by session id) with stdio captured to files.
func (g *Gunicorn) launch(cmd []string, port int) error {
	for _, f := range []string{g.Pidfile, g.Pidfile + ".2", g.ErrorLog, g.AccessLog, g.Stderr, g.Stdout} {
		if f != "" {
			_ = os.Remove(f)
		}
	}
	g.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	g.BaseURL = "http://" + g.Addr
	g.Argv = append(append([]string{}, cmd...), g.args(port)...)

	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer stdin.Close()
	stdout, err := os.Create(g.Stdout)
	if err != nil {
		return err
	}
	defer stdout.Close()
	stderr, err := os.Create(g.Stderr)
	if err != nil {
		return err
	}
	defer stderr.Close()

	argv := append(append([]string{}, g.Opts.Wrapper...), g.Argv...)
	proc, err := os.StartProcess(argv[0], argv, &os.ProcAttr{
		Dir:   g.Dir,
		Env:   g.env,
		Files: []*os.File{stdin, stdout, stderr},
		Sys: &syscall.SysProcAttr{
			Setsid: true,
			// A backstop for a test binary that dies without running
			// cleanups (e.g. a -timeout panic).
			Pdeathsig: syscall.SIGKILL,
		},
	})
	if err != nil {
		return fmt.Errorf("start %v: %w", g.Argv, err)
	}
	done := make(chan struct{})
	g.mu.Lock()
	g.proc, g.sid, g.done, g.state = proc, proc.Pid, done, nil
	g.mu.Unlock()
	go func() {
		st, _ := proc.Wait()
		g.mu.Lock()
		g.state = st
		g.mu.Unlock()
		close(done)
	}()
	return nil
}

// waitReady polls until the pidfile names our master, all workers have
// sent a heartbeat, and /ok answers 200.
func (g *Gunicorn) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var pidOK, workersOK bool
	var last string
	for {
		select {
		case <-g.Done():
			if g.logContains("Connection in use") {
				return errPortInUse
			}
			return fmt.Errorf("master exited during startup: %v", g.ProcessState())
		default:
		}
		if g.logContains("Connection in use") {
			return errPortInUse
		}
		if !pidOK {
			pid, err := readPidfile(g.Pidfile)
			pidOK = err == nil && pid == g.sid
			last = fmt.Sprintf("pidfile: %v (pid %d, master %d)", err, pid, g.sid)
		}
		if pidOK && !workersOK {
			ws, booted := g.workerState(g.sid)
			workersOK = len(ws) == g.Opts.Workers && booted == len(ws)
			last = fmt.Sprintf("workers %v, %d booted, want %d", ws, booted, g.Opts.Workers)
		}
		if workersOK {
			status, _, err := g.get("/ok", 2*time.Second)
			if err == nil && status == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("/ok: status %d, err %v", status, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %s", timeout, last)
		}
		time.Sleep(pollInterval)
	}
}

// Done is closed once the master the harness started has exited and been
// reaped.
func (g *Gunicorn) Done() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.done
}

// ProcessState is the exit state of the master the harness started, or nil
// while it runs.
func (g *Gunicorn) ProcessState() *os.ProcessState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

// SessionID is the pid of the master the harness started, which is also the
// session and process group of every process Gunicorn forks.
func (g *Gunicorn) SessionID() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sid
}

func (g *Gunicorn) exited() bool {
	select {
	case <-g.Done():
		return true
	default:
		return false
	}
}

// MasterPID returns the pid in the pidfile. It fails the test when the
// pidfile cannot be read, so call it from the test goroutine.
func (g *Gunicorn) MasterPID() int {
	g.t.Helper()
	pid, err := readPidfile(g.Pidfile)
	if err != nil {
		g.t.Fatalf("gunicorntest: master pid: %v", err)
	}
	return pid
}

// currentMaster is the pidfile's master if it is one of ours (after a USR2
// promotion it is the new master), else the master we started while it
// runs, else 0.
func (g *Gunicorn) currentMaster() int {
	if pid, err := readPidfile(g.Pidfile); err == nil && g.inSession(pid) {
		return pid
	}
	if !g.exited() {
		return g.SessionID()
	}
	return 0
}

func (g *Gunicorn) inSession(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.session == g.SessionID() && st.state != 'Z'
}

// workerState returns the live (non-zombie) workers of master, sorted,
// leaving out a USR2 re-exec master, and how many of them have sent their
// first heartbeat.
func (g *Gunicorn) workerState(master int) (workers []int, booted int) {
	if master <= 0 {
		return nil, 0
	}
	kids, err := children(master)
	if err != nil {
		return nil, 0
	}
	newMaster, _ := readPidfile(g.Pidfile + ".2")
	for _, pid := range kids {
		if !alive(pid) || !isWorker(pid, newMaster) {
			continue
		}
		workers = append(workers, pid)
		if st, err := heartbeatStat(pid); err == nil && heartbeatNotified(st) {
			booted++
		}
	}
	return sortedCopy(workers), booted
}

// WorkerPIDs returns the live workers of the current master (the pidfile's),
// sorted. A USR2 re-exec master, which is also a child of the old master,
// is not a worker and is left out.
func (g *Gunicorn) WorkerPIDs() []int {
	ws, _ := g.workerState(g.currentMaster())
	return ws
}

// Signal sends sig to the current master only (the pidfile's, which after a
// USR2 promotion is the new master).
func (g *Gunicorn) Signal(sig syscall.Signal) error {
	master := g.currentMaster()
	if master == 0 {
		return ErrNoMaster
	}
	g.mu.Lock()
	proc, sid := g.proc, g.sid
	g.mu.Unlock()
	if master == sid {
		// os.Process signals through its pidfd and refuses after reaping.
		if err := proc.Signal(sig); err != nil {
			return fmt.Errorf("signal %v to master %d: %w", sig, master, err)
		}
		return nil
	}
	return pidfdSignal(master, sig, func() error {
		if !g.inSession(master) {
			return fmt.Errorf("pid %d: %w", master, ErrNoMaster)
		}
		return nil
	})
}

// SignalWorker sends sig to pid only if pid is, with a pidfd already held, a
// current worker of the current master.
func (g *Gunicorn) SignalWorker(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return fmt.Errorf("pid %d: %w", pid, ErrNotWorker)
	}
	return pidfdSignal(pid, sig, func() error {
		for _, w := range g.WorkerPIDs() {
			if w == pid {
				return nil
			}
		}
		return fmt.Errorf("pid %d: %w", pid, ErrNotWorker)
	})
}

// WaitWorkers polls until exactly n workers are alive and each has sent its
// first heartbeat (the worker has imported the app and entered its run
// loop; "Booting worker" is logged before the import and only at info).
func (g *Gunicorn) WaitWorkers(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ws, booted := g.workerState(g.currentMaster())
		if len(ws) == n && booted == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: workers %v, %d booted, want %d", timeout, ws, booted, n)
		}
		time.Sleep(pollInterval)
	}
}

// WaitLog polls until the error log contains substr at least count times.
func (g *Gunicorn) WaitLog(substr string, count int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n := g.LogCount(substr)
		if n >= count {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %q occurs %d times in %s, want %d", timeout, substr, n, g.ErrorLog, count)
		}
		time.Sleep(pollInterval)
	}
}

// LogCount counts occurrences of substr in the error log.
func (g *Gunicorn) LogCount(substr string) int {
	b, _ := os.ReadFile(g.ErrorLog)
	return bytes.Count(b, []byte(substr))
}

// ErrorLogText returns the error log's current content ("" if unreadable).
func (g *Gunicorn) ErrorLogText() string {
	b, _ := os.ReadFile(g.ErrorLog)
	return string(b)
}

func (g *Gunicorn) logContains(substr string) bool {
	for _, f := range []string{g.ErrorLog, g.Stderr} {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(substr)) {
			return true
		}
	}
	return false
}

func (g *Gunicorn) logTail() string {
	var sb strings.Builder
	files := []string{g.ErrorLog}
	if g.Stderr != g.ErrorLog {
		files = append(files, g.Stderr)
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		fmt.Fprintf(&sb, "--- %s ---\n%s\n", f, b)
	}
	return sb.String()
}

// Stop stops Gunicorn and everything in its session: SIGTERM to the
// master(s), a bounded wait (StopTimeout), then SIGKILL to the whole
// session; it fails the test if any process is left. It is idempotent and
// is what Start's cleanup calls.
func (g *Gunicorn) Stop() {
	g.stopOnce.Do(func() {
		if err := g.terminate(false); err != nil {
			g.t.Errorf("gunicorntest: stop: %v", err)
		}
		g.client.CloseIdleConnections()
	})
}

// terminate stops the current master and its session. With force it skips
// the SIGTERM phase.
func (g *Gunicorn) terminate(force bool) error {
	g.mu.Lock()
	proc, sid, done := g.proc, g.sid, g.done
	g.mu.Unlock()
	if proc == nil {
		return nil
	}
	if !force {
		if err := g.terminateGracefully(proc, sid, done); err == nil {
			return nil
		}
		g.t.Logf("gunicorntest: session %d still running %v after SIGTERM; sending SIGKILL", sid, g.Opts.StopTimeout)
	}
	_ = proc.Kill()
	_ = syscall.Kill(-sid, syscall.SIGKILL)
	if members, err := sessionMembers(sid); err == nil {
		for _, m := range members {
			if m.pgrp != sid {
				_ = syscall.Kill(m.pid, syscall.SIGKILL)
			}
		}
	}
	if err := waitGone(done, sid, 5*time.Second); err != nil {
		return fmt.Errorf("after SIGKILL: %w", err)
	}
	return nil
}

func (g *Gunicorn) terminateGracefully(proc *os.Process, sid int, done <-chan struct{}) error {
	_ = proc.Signal(syscall.SIGTERM)
	// After USR2 there may be a second master (<pidfile>.2, or the promoted
	// one in <pidfile> once ours has exited); it gets its own TERM.
	for _, f := range []string{g.Pidfile, g.Pidfile + ".2"} {
		if pid, err := readPidfile(f); err == nil && pid != sid {
			_ = pidfdSignal(pid, syscall.SIGTERM, func() error {
				if !g.inSession(pid) {
					return ErrNoMaster
				}
				return nil
			})
		}
	}
	return waitGone(done, sid, g.Opts.StopTimeout)
}

// waitGone waits until the master has been reaped and no process of the
// session is left, reaping orphans the test process inherited.
func waitGone(done <-chan struct{}, sid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		members, err := sessionMembers(sid)
		if err != nil {
			return err
		}
		reapOrphans(members, sid)
		select {
		case <-done:
			if len(members) == 0 {
				return nil
			}
		default:
		}
		if time.Now().After(deadline) {
			var left []string
			for _, m := range members {
				left = append(left, fmt.Sprintf("%d(ppid %d, state %c)", m.pid, m.ppid, m.state))
			}
			return fmt.Errorf("processes of session %d left after %v: %v", sid, timeout, left)
		}
		time.Sleep(pollInterval)
	}
}

var subreaperOnce sync.Once

func enableSubreaper(t testing.TB) {
	subreaperOnce.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			t.Logf("gunicorntest: PR_SET_CHILD_SUBREAPER: %v (orphaned workers may stay zombies)", err)
		}
	})
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

// buildEnv merges extra over base (last value wins, since Python keeps the
// first of duplicate variables), drops variables that would reconfigure or
// confuse Gunicorn, and prepends pythonPath to PYTHONPATH.
func buildEnv(base, extra []string, pythonPath string) []string {
	drop := map[string]bool{
		"GUNICORN_CMD_ARGS": true, "GUNICORN_PID": true, "GUNICORN_FD": true,
		"LISTEN_PID": true, "LISTEN_FDS": true, "LISTEN_FDNAMES": true,
	}
	var keys []string
	vals := map[string]string{}
	for i, kv := range append(append([]string{}, base...), extra...) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || (drop[k] && i < len(base)) {
			continue
		}
		if _, seen := vals[k]; !seen {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	if pythonPath != "" {
		if old := vals["PYTHONPATH"]; old != "" {
			pythonPath += string(os.PathListSeparator) + old
		}
		if _, seen := vals["PYTHONPATH"]; !seen {
			keys = append(keys, "PYTHONPATH")
		}
		vals["PYTHONPATH"] = pythonPath
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+vals[k])
	}
	return out
}

// interpreter returns the Python named in the gunicorn script's #! line.
func interpreter(t testing.TB, script string) (string, error) {
	f, err := os.Open(script)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, 512)
	n, _ := f.Read(buf)
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	if !strings.HasPrefix(line, "#!") {
		return "", fmt.Errorf("%s has no #! line", script)
	}
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if len(fields) == 0 {
		return "", fmt.Errorf("%s has an empty #! line", script)
	}
	if filepath.Base(fields[0]) != "env" {
		return fields[0], nil
	}
	for _, f := range fields[1:] {
		if !strings.HasPrefix(f, "-") && !strings.Contains(f, "=") {
			return testenv.LookPath(t, f), nil
		}
	}
	return "", fmt.Errorf("%s: cannot find the interpreter in %q", script, line)
}
