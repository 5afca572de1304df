package lifecycle

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBase is second 0 of the synthetic logs.
var logBase = time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC)

// feeder writes default-format lines at log second sec and keeps the facts.
type feeder struct {
	t     *testing.T
	tr    *Tracker
	wall  time.Time
	facts []Fact
}

func newFeeder(t *testing.T) *feeder {
	f := &feeder{t: t, wall: wallStart}
	f.tr = NewTracker(Options{Now: func() time.Time { return f.wall }, Location: time.UTC})
	return f
}

func (f *feeder) at(sec int, pid int, level, msg string) []Fact {
	ts := logBase.Add(time.Duration(sec) * time.Second).Format("2006-01-02 15:04:05 -0700")
	return f.line(fmt.Sprintf("[%s] [%d] [%s] %s", ts, pid, level, msg))
}

func (f *feeder) line(s string) []Fact {
	got := f.tr.ObserveLine([]byte(s))
	f.facts = append(f.facts, got...)
	return got
}

func (f *feeder) lines(s string) {
	for _, l := range strings.Split(strings.TrimPrefix(s, "\n"), "\n") {
		f.line(l)
	}
}

// done flushes an hour later and returns the counts.
func (f *feeder) done() Counts {
	f.facts = append(f.facts, f.tr.Flush(f.wall.Add(time.Hour))...)
	return f.tr.Snapshot()
}

// exitOf returns the exit cause of pid, failing on none or several.
func (f *feeder) exitOf(pid int) string {
	f.t.Helper()
	cause := ""
	for _, fa := range f.facts {
		if fa.Kind == FactWorkerExit && fa.PID == pid {
			if cause != "" {
				f.t.Errorf("pid %d exited twice (%s, %s)", pid, cause, fa.Cause)
			}
			cause = fa.Cause
		}
	}
	if cause == "" {
		f.t.Errorf("pid %d never exited", pid)
	}
	return cause
}

func (f *feeder) exitFact(pid int) Fact {
	for _, fa := range f.facts {
		if fa.Kind == FactWorkerExit && fa.PID == pid {
			return fa
		}
	}
	f.t.Fatalf("no exit fact for %d", pid)
	return Fact{}
}

// start writes a master start with n workers, pids master+1..master+n, and
// ends the boot burst with a USR1 so the target count is known.
func (f *feeder) start(sec, master, n int, version string) {
	f.at(sec, master, "INFO", "Starting gunicorn "+version)
	f.at(sec, master, "INFO", fmt.Sprintf("Listening at: http://127.0.0.1:8000 (%d)", master))
	f.at(sec, master, "INFO", "Using worker: sync")
	for i := 1; i <= n; i++ {
		f.at(sec, master+i, "INFO", fmt.Sprintf("Booting worker with pid: %d", master+i))
	}
	f.at(sec+1, master, "INFO", "Handling signal: usr1")
}

func TestTimeoutThenSIGKILLIsTimeout(t *testing.T) {
	tests := []struct {
		version string
		lines   func(f *feeder)
	}{
		{"23.0.0", func(f *feeder) { // gunicorn.md §1.3, real 23.0
			f.at(10, 100, "CRITICAL", "WORKER TIMEOUT (pid:101)")
			f.at(11, 100, "ERROR", "Worker (pid:101) was sent SIGKILL! Perhaps out of memory?")
			f.at(11, 103, "INFO", "Booting worker with pid: 103")
		}},
		{"20.1.0", func(f *feeder) { // run/L: a SIGSTOPped worker
			f.at(10, 100, "CRITICAL", "WORKER TIMEOUT (pid:101)")
			f.at(11, 100, "WARNING", "Worker with pid 101 was terminated due to signal 9")
			f.at(11, 103, "INFO", "Booting worker with pid: 103")
		}},
		{"19.9.0", func(f *feeder) { // hung worker: nothing after the CRITICAL line
			f.at(10, 100, "CRITICAL", "WORKER TIMEOUT (pid:101)")
			f.at(11, 103, "INFO", "Booting worker with pid: 103")
		}},
		{"21.2.0", func(f *feeder) { // gunicorn.md §1.5
			f.at(10, 100, "CRITICAL", "WORKER TIMEOUT (pid:101)")
			f.at(10, 101, "INFO", "Worker exiting (pid: 101)")
			f.at(10, 100, "ERROR", "Worker (pid:101) exited with code 1")
			f.at(10, 100, "ERROR", "Worker (pid:101) exited with code 1.")
			f.at(10, 103, "INFO", "Booting worker with pid: 103")
		}},
		{"22.0.0", func(f *feeder) { // SystemExit in the request, exit code 0
			f.at(10, 100, "CRITICAL", "WORKER TIMEOUT (pid:101)")
			f.lines(`[2026-11-24 18:00:10 +0000] [101] [ERROR] Error handling request /sleep?s=10
Traceback (most recent call last):
  File "gunicorn/workers/base.py", line 204, in handle_abort
    sys.exit(1)
SystemExit: 1`)
			f.at(10, 101, "INFO", "Worker exiting (pid: 101)")
			f.at(10, 103, "INFO", "Booting worker with pid: 103")
		}},
		{"25.3.0", func(f *feeder) { // method in the request line, control socket after the fork
			f.at(10, 100, "CRITICAL", "WORKER TIMEOUT (pid:101)")
			f.at(10, 101, "ERROR", "Error handling request GET /sleep?s=10")
			f.at(11, 100, "ERROR", "Worker (pid:101) was sent SIGKILL! Perhaps out of memory?")
			f.at(11, 103, "INFO", "Booting worker with pid: 103")
			f.at(11, 100, "INFO", "Control socket listening at /run/g.ctl")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.version, func(t *testing.T) {
			f := newFeeder(t)
			f.start(0, 100, 2, tc.version)
			tc.lines(f)
			c := f.done()
			if got := f.exitOf(101); got != "timeout" {
				t.Errorf("exit cause %s", got)
			}
			if c.Exits[ExitTimeout] != 1 || c.Timeouts != 1 || c.Exits[ExitSIGKILL] != 0 || c.Exits[ExitUnknown] != 0 {
				t.Errorf("counts %+v", c)
			}
			if c.WorkerSignals != ([NumSignals]uint64{}) {
				t.Errorf("the timeout's SIGKILL counted as a worker signal: %v", c.WorkerSignals)
			}
			if c.RequestErrors != 0 {
				t.Errorf("the abort's SystemExit counted as a request error")
			}
			if !c.LastTimeout.Equal(logBase.Add(10 * time.Second)) {
				t.Errorf("last timeout %v", c.LastTimeout)
			}
		})
	}
}

func TestSIGKILLWithoutTimeoutIsSigkill(t *testing.T) {
	f := newFeeder(t)
	f.start(0, 100, 2, "21.2.0")
	f.at(5, 100, "ERROR", "Worker (pid:101) was sent SIGKILL! Perhaps out of memory?")
	c := f.done()
	if f.exitOf(101) != "sigkill" || c.WorkerSignals[SigKILL] != 1 || c.Exits[ExitSIGKILL] != 1 {
		t.Errorf("counts %+v", c)
	}
	if d := f.exitFact(101).Detail; d != "killed by SIGKILL" {
		t.Errorf("detail %q", d)
	}
}

func TestWorkerSignals(t *testing.T) {
	tests := []struct {
		msg    string
		signal Signal
		detail string
	}{
		{"Worker with pid 101 was terminated due to signal 1", SigHUP, "killed by SIGHUP"},    // kill -HUP to a worker (20.1, real)
		{"Worker with pid 101 was terminated due to signal 12", SigUSR2, "killed by SIGUSR2"}, // kill -USR2 to a worker (20.1, real)
		{"Worker with pid 101 was terminated due to signal 11", SigSEGV, "killed by SIGSEGV"},
		{"Worker (pid:101) was sent SIGBUS!", SigBUS, "killed by SIGBUS"},
		{"Worker (pid:101) was sent code 134!", SigABRT, "killed by SIGABRT (core dumped)"},
		{"Worker (pid:101) was sent SIGTERM!", SigTERM, "killed by SIGTERM"}, // nobody asked the master
		{"Worker (pid:101) was sent SIGRTMIN!", SigOther, "killed by signal -1"},
		{"Worker with pid 101 was terminated due to signal 24", SigOther, "killed by SIGXCPU"},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			f := newFeeder(t)
			f.start(0, 100, 2, "21.2.0")
			f.at(5, 100, "ERROR", tc.msg)
			c := f.done()
			if f.exitOf(101) != "signal" || c.Exits[ExitSignal] != 1 {
				t.Errorf("exits %v", c.Exits)
			}
			var want [NumSignals]uint64
			want[tc.signal] = 1
			if c.WorkerSignals != want {
				t.Errorf("signals %v, want %v", c.WorkerSignals, want)
			}
			if d := f.exitFact(101).Detail; d != tc.detail {
				t.Errorf("detail %q, want %q", d, tc.detail)
			}
		})
	}
}

// TestExitCountedOnce feeds every combination of lines one death produces.
func TestExitCountedOnce(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		cause string
	}{
		{"21.x kill -ABRT: both code-1 lines", []string{
			"[101] [INFO] Worker exiting (pid: 101)",
			"[100] [ERROR] Worker (pid:101) exited with code 1",
			"[100] [ERROR] Worker (pid:101) exited with code 1.",
		}, "error"},
		{"21.x code lines before Worker exiting", []string{
			"[100] [ERROR] Worker (pid:101) exited with code 255",
			"[100] [ERROR] Worker (pid:101) exited with code 255.",
			"[101] [INFO] Worker exiting (pid: 101)",
		}, "error"},
		{"20.1 double SIGTERM with no master action", []string{
			"[101] [INFO] Worker exiting (pid: 101)",
			"[100] [WARNING] Worker with pid 101 was terminated due to signal 15",
		}, "signal"},
		{"20.1 exception after boot exits 255 silently", []string{
			"[101] [ERROR] Exception in worker process",
			"Traceback (most recent call last):",
			"  File \"x.py\", line 1, in run",
			"OSError: [Errno 24] Too many open files",
			"[101] [INFO] Worker exiting (pid: 101)",
		}, "error"},
		{"max requests", []string{
			"[101] [INFO] Autorestarting worker after current request.",
			"[101] [INFO] Worker exiting (pid: 101)",
		}, "max_requests"},
		{"max requests, then a crash while finishing", []string{
			"[101] [INFO] Autorestarting worker after current request.",
			"[100] [ERROR] Worker (pid:101) was sent SIGSEGV!",
		}, "signal"},
		{"parent changed", []string{
			"[101] [INFO] Parent changed, shutting down: <Worker 101>",
			"[101] [INFO] Worker exiting (pid: 101)",
		}, "shutdown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t)
			f.start(0, 100, 2, "21.2.0")
			for _, l := range tc.lines {
				if strings.HasPrefix(l, "[") {
					l = "[2026-11-24 18:00:05 +0000] " + l
				}
				f.line(l)
			}
			// A replayed duplicate long after the commit changes nothing.
			f.at(30, 100, "ERROR", "Worker (pid:101) exited with code 1")
			c := f.done()
			if got := f.exitOf(101); got != tc.cause {
				t.Errorf("cause %s, want %s (%s)", got, tc.cause, f.exitFact(101).Detail)
			}
			var n uint64
			for _, v := range c.Exits {
				n += v
			}
			if n != 1 {
				t.Errorf("%d exits counted: %v", n, c.Exits)
			}
		})
	}
}

// TestMasterActionsExplainSIGTERM: the spurious SIGTERM lines of HUP, TTOU
// and TERM (issues #2908, #3050, #3312) are not crashes.
func TestMasterActionsExplainSIGTERM(t *testing.T) {
	t.Run("22.0 HUP (real lines)", func(t *testing.T) {
		f := newFeeder(t)
		f.start(0, 21661, 2, "22.0.0")
		f.lines(`
[2026-11-24 18:00:29 +0000] [21661] [INFO] Handling signal: hup
[2026-11-24 18:00:29 +0000] [21661] [INFO] Hang up: Master
[2026-11-24 18:00:29 +0000] [21706] [INFO] Booting worker with pid: 21706
[2026-11-24 18:00:29 +0000] [21707] [INFO] Booting worker with pid: 21707
[2026-11-24 18:00:29 +0000] [21662] [INFO] Worker exiting (pid: 21662)
[2026-11-24 18:00:29 +0000] [21663] [INFO] Worker exiting (pid: 21663)
[2026-11-24 18:00:29 +0000] [21661] [ERROR] Worker (pid:21662) was sent SIGTERM!`)
		c := f.done()
		if f.exitOf(21662) != "reload" || f.exitOf(21663) != "reload" || c.Exits[ExitReload] != 2 || c.WorkerSignals != ([NumSignals]uint64{}) {
			t.Errorf("counts %+v", c)
		}
	})
	t.Run("21.x TTOU", func(t *testing.T) {
		f := newFeeder(t)
		f.start(0, 100, 3, "21.2.0")
		f.at(5, 100, "INFO", "Handling signal: ttou")
		f.at(5, 101, "INFO", "Worker exiting (pid: 101)")
		f.at(5, 100, "ERROR", "Worker (pid:101) was sent SIGTERM!")
		// A second exit later is not the TTOU's.
		f.at(8, 102, "INFO", "Worker exiting (pid: 102)")
		c := f.done()
		if f.exitOf(101) != "scale_down" || f.exitOf(102) != "terminated" || c.WorkerSignals != ([NumSignals]uint64{}) {
			t.Errorf("counts %+v", c)
		}
	})
	t.Run("TERM with graceful-timeout SIGKILL", func(t *testing.T) {
		f := newFeeder(t)
		f.start(0, 100, 2, "21.2.0")
		f.at(5, 100, "INFO", "Handling signal: term")
		f.at(5, 101, "INFO", "Worker exiting (pid: 101)")
		f.at(35, 100, "ERROR", "Worker (pid:102) was sent SIGKILL! Perhaps out of memory?")
		f.at(35, 100, "INFO", "Shutting down: Master")
		c := f.done()
		if f.exitOf(101) != "shutdown" || f.exitOf(102) != "shutdown" || c.Exits[ExitSIGKILL] != 0 {
			t.Errorf("counts %+v", c)
		}
	})
	t.Run("a crash during HUP is still a crash", func(t *testing.T) {
		f := newFeeder(t)
		f.start(0, 100, 2, "21.2.0")
		f.at(5, 100, "INFO", "Hang up: Master")
		f.at(5, 100, "ERROR", "Worker (pid:101) was sent SIGSEGV!")
		f.done()
		if f.exitOf(101) != "signal" {
			t.Error("SIGSEGV during HUP explained away")
		}
	})
}

func TestTTOUAtOneWorkerDoesNothing(t *testing.T) {
	f := newFeeder(t)
	f.start(0, 100, 1, "20.1.0")
	f.at(5, 100, "INFO", "Handling signal: ttou") // num_workers <= 1: ignored by Gunicorn
	f.at(9, 101, "INFO", "Worker exiting (pid: 101)")
	f.done()
	if got := f.exitOf(101); got != "terminated" {
		t.Errorf("cause %s", got)
	}
}

// TestPendingExitCommittedByFlush steps an injected wall clock: an exit
// waits PendingWindow for refining lines and Flush commits it without any
// further line.
func TestPendingExitCommittedByFlush(t *testing.T) {
	f := newFeeder(t)
	f.start(0, 100, 2, "21.2.0")
	if got := f.at(5, 101, "INFO", "Worker exiting (pid: 101)"); hasExit(got) {
		t.Fatal("exit committed before its window")
	}
	if n := f.tr.Pending(); n != 1 {
		t.Fatalf("pending %d", n)
	}
	// A refining line inside the window: 21.x's exit code after ABRT.
	f.wall = f.wall.Add(time.Second)
	f.at(5, 100, "ERROR", "Worker (pid:101) exited with code 1")
	if got := f.tr.Flush(f.wall.Add(1900 * time.Millisecond)); len(got) != 0 {
		t.Fatalf("committed early: %+v", got)
	}
	got := f.tr.Flush(wallStart.Add(DefaultPendingWindow))
	if len(got) != 1 || got[0].Kind != FactWorkerExit || got[0].PID != 101 || got[0].Cause != "error" {
		t.Fatalf("flush gave %+v", got)
	}
	if !got[0].Time.Equal(logBase.Add(5 * time.Second)) {
		t.Errorf("fact time %v, want the first line's log time", got[0].Time)
	}
	if c := f.tr.Snapshot(); c.Exits[ExitError] != 1 || f.tr.Pending() != 0 {
		t.Errorf("counts %+v pending %d", c, f.tr.Pending())
	}
	// The second exit-code line arrives late: still one exit.
	f.at(9, 100, "ERROR", "Worker (pid:101) exited with code 1.")
	if c := f.done(); c.Exits[ExitError] != 1 {
		t.Errorf("late line counted again: %v", c.Exits)
	}
}

// TestPendingExitCommittedByLogTime: replaying a backlog, the log's own
// clock commits exits.
func TestPendingExitCommittedByLogTime(t *testing.T) {
	f := newFeeder(t)
	f.start(0, 100, 2, "20.1.0")
	f.at(5, 101, "INFO", "Worker exiting (pid: 101)")
	if hasExit(f.at(7, 100, "INFO", "Handling signal: usr1")) {
		t.Fatal("committed after 2 s of log time")
	}
	if !hasExit(f.at(8, 100, "INFO", "Handling signal: usr1")) {
		t.Fatal("not committed after 3 s of log time")
	}
}

// TestPendingWithoutLogTime: a datefmt with no date leaves only the wall
// clock, which ObserveLine and Flush both consult.
func TestPendingWithoutLogTime(t *testing.T) {
	f := newFeeder(t)
	f.line("[100] [INFO] Starting gunicorn 23.0.0")
	f.line("[101] [INFO] Booting worker with pid: 101")
	f.line("[101] [INFO] Worker exiting (pid: 101)")
	f.wall = f.wall.Add(4 * time.Second)
	got := f.line("[100] [INFO] Handling signal: usr1")
	if !hasExit(got) {
		t.Fatalf("facts %+v", got)
	}
	if fa := f.exitFact(101); !fa.Time.Equal(wallStart) {
		t.Errorf("fact time %v, want the wall time of the first line", fa.Time)
	}
}

func TestCustomWindow(t *testing.T) {
	now := wallStart
	tr := NewTracker(Options{Now: func() time.Time { return now }, PendingWindow: 10 * time.Second})
	tr.ObserveLine([]byte("[101] [INFO] Worker exiting (pid: 101)"))
	if got := tr.Flush(now.Add(9 * time.Second)); len(got) != 0 {
		t.Fatalf("%+v", got)
	}
	if got := tr.Flush(now.Add(10 * time.Second)); len(got) != 1 || got[0].Cause != "terminated" {
		t.Fatalf("%+v", got)
	}
}

func hasExit(fs []Fact) bool {
	for _, f := range fs {
		if f.Kind == FactWorkerExit {
			return true
		}
	}
	return false
}

// TestLoggingErrorRecoversLostExit: the SIGCHLD handler's reap line was
// lost to the reentrant-write bug; the report's Message/Arguments bring it
// back.
func TestLoggingErrorRecoversLostExit(t *testing.T) {
	f := newFeeder(t)
	f.start(0, 100, 2, "20.1.0")
	f.lines(`--- Logging error ---
Traceback (most recent call last):
  File "/usr/lib/python3.11/logging/__init__.py", line 1114, in emit
    self.flush()
RuntimeError: reentrant call inside <_io.BufferedWriter name='<stderr>'>
Call stack:
  File "/usr/lib/python3/dist-packages/gunicorn/arbiter.py", line 530, in reap_workers
    self.log.warning(
Message: 'Worker with pid %s was terminated due to signal %s'
Arguments: (101, 9)`)
	f.at(6, 103, "INFO", "Booting worker with pid: 103")
	c := f.done()
	if f.exitOf(101) != "sigkill" || c.LoggingErrors != 1 || c.Exits[ExitUnknown] != 0 || c.ParseFailures != 0 {
		t.Errorf("counts %+v", c)
	}
}

// TestInferUnknownOnlyWhenSound: the replacement boot of a silent death is
// counted, but not during a boot burst, a USR2 overlap, or with an unknown
// target.
func TestInferUnknownOnlyWhenSound(t *testing.T) {
	t.Run("full complement", func(t *testing.T) {
		f := newFeeder(t)
		f.start(0, 100, 2, "19.9.0")
		f.at(5, 103, "INFO", "Booting worker with pid: 103") // 101 died silently
		f.at(7, 104, "INFO", "Booting worker with pid: 104") // and another
		f.at(9, 100, "INFO", "Handling signal: term")
		f.at(9, 103, "INFO", "Worker exiting (pid: 103)")
		f.at(9, 104, "INFO", "Worker exiting (pid: 104)")
		f.at(9, 100, "INFO", "Shutting down: Master")
		c := f.done()
		// The two ghosts (101 and 102 never logged) are not counted again
		// at shutdown: 4 boots, 4 exits.
		if c.Exits[ExitUnknown] != 2 || c.Exits[ExitShutdown] != 2 || c.Boots != 4 {
			t.Errorf("exits %v boots %d", c.Exits, c.Boots)
		}
	})
	t.Run("debug worker count", func(t *testing.T) {
		f := newFeeder(t)
		f.at(0, 100, "INFO", "Starting gunicorn 20.1.0")
		f.at(0, 101, "INFO", "Booting worker with pid: 101")
		f.at(0, 100, "DEBUG", "1 workers")
		f.at(5, 102, "INFO", "Booting worker with pid: 102")
		if c := f.done(); c.Exits[ExitUnknown] != 1 {
			t.Errorf("exits %v", c.Exits)
		}
	})
	t.Run("boot burst", func(t *testing.T) {
		f := newFeeder(t)
		f.at(0, 100, "INFO", "Starting gunicorn 19.9.0")
		for i := 1; i <= 4; i++ {
			f.at(i/2, 100+i, "INFO", fmt.Sprintf("Booting worker with pid: %d", 100+i))
		}
		if c := f.done(); c.Exits[ExitUnknown] != 0 {
			t.Errorf("exits %v", c.Exits)
		}
	})
	t.Run("burst ends after 10 quiet seconds", func(t *testing.T) {
		f := newFeeder(t)
		f.at(0, 100, "INFO", "Starting gunicorn 19.9.0")
		f.at(0, 101, "INFO", "Booting worker with pid: 101")
		f.at(0, 102, "INFO", "Booting worker with pid: 102")
		f.at(20, 103, "INFO", "Booting worker with pid: 103")
		if c := f.done(); c.Exits[ExitUnknown] != 1 {
			t.Errorf("exits %v", c.Exits)
		}
	})
	t.Run("TTIN", func(t *testing.T) {
		f := newFeeder(t)
		f.start(0, 100, 2, "19.9.0")
		f.at(5, 100, "INFO", "Handling signal: ttin")
		f.at(5, 103, "INFO", "Booting worker with pid: 103")
		if c := f.done(); c.Exits[ExitUnknown] != 0 {
			t.Errorf("exits %v", c.Exits)
		}
	})
	t.Run("HUP may change the worker count", func(t *testing.T) {
		f := newFeeder(t)
		f.start(0, 100, 2, "19.9.0")
		f.at(5, 100, "INFO", "Hang up: Master")
		for i := 3; i <= 6; i++ { // the new config has 4 workers
			f.at(5, 100+i, "INFO", fmt.Sprintf("Booting worker with pid: %d", 100+i))
		}
		f.at(5, 101, "INFO", "Worker exiting (pid: 101)")
		f.at(5, 102, "INFO", "Worker exiting (pid: 102)")
		f.at(8, 100, "INFO", "Handling signal: usr1") // burst over: target 4
		f.at(9, 107, "INFO", "Booting worker with pid: 107")
		c := f.done()
		if c.Exits[ExitUnknown] != 1 || c.Exits[ExitReload] != 2 {
			t.Errorf("exits %v", c.Exits)
		}
	})
	t.Run("USR2 overlap", func(t *testing.T) {
		f := newFeeder(t)
		f.start(0, 100, 2, "20.1.0")
		f.at(5, 100, "INFO", "Handling signal: usr2")
		f.start(5, 200, 2, "20.1.0")
		// The old master replaces a worker while both run: which master
		// booted it cannot be told, so nothing is inferred.
		f.at(7, 103, "INFO", "Booting worker with pid: 103")
		f.at(8, 100, "INFO", "Handling signal: term")
		f.at(8, 101, "INFO", "Worker exiting (pid: 101)")
		f.at(8, 102, "INFO", "Worker exiting (pid: 102)")
		f.at(8, 100, "INFO", "Shutting down: Master")
		f.at(9, 200, "INFO", "Master has been promoted.")
		// One master again: a boot beyond its complement is a death.
		f.at(15, 204, "INFO", "Booting worker with pid: 204")
		c := f.done()
		if c.Exits[ExitUnknown] != 1 || c.Promotions != 1 || c.MasterStarts != 2 {
			t.Errorf("counts %+v", c)
		}
	})
	t.Run("followed from the middle", func(t *testing.T) {
		f := newFeeder(t)
		f.at(0, 101, "INFO", "Booting worker with pid: 101")
		f.at(1, 102, "INFO", "Booting worker with pid: 102")
		if c := f.done(); c.Exits[ExitUnknown] != 0 {
			t.Errorf("exits %v", c.Exits)
		}
	})
}

func TestPIDReuse(t *testing.T) {
	f := newFeeder(t)
	f.start(0, 100, 2, "20.1.0")
	f.at(50, 100, "INFO", "Handling signal: ttin")
	f.at(50, 101, "INFO", "Booting worker with pid: 101") // 101 died unseen, then the pid came back
	c := f.done()
	if f.exitOf(101) != "unknown" || c.Exits[ExitUnknown] != 1 {
		t.Errorf("exits %v", c.Exits)
	}
	if d := f.exitFact(101).Detail; !strings.Contains(d, "booted again") {
		t.Errorf("detail %q", d)
	}
}

// TestHaltStopsHealthySiblings: one of three workers fails to import on
// 21+; the others are stopped by the halt, one of them without a line.
func TestHaltStopsHealthySiblings(t *testing.T) {
	f := newFeeder(t)
	f.start(0, 100, 3, "23.0.0")
	f.lines(`[2026-11-24 18:00:02 +0000] [103] [ERROR] Exception in worker process
Traceback (most recent call last):
  File "/srv/app/app.py", line 1, in <module>
ImportError: cannot import name 'x'
[2026-11-24 18:00:02 +0000] [103] [INFO] Worker exiting (pid: 103)
[2026-11-24 18:00:02 +0000] [100] [ERROR] Worker (pid:103) exited with code 3
[2026-11-24 18:00:02 +0000] [101] [INFO] Worker exiting (pid: 101)
[2026-11-24 18:00:03 +0000] [100] [ERROR] Shutting down: Master
[2026-11-24 18:00:03 +0000] [100] [ERROR] Reason: Worker failed to boot.`)
	c := f.done()
	if f.exitOf(103) != "boot_failure" || f.exitOf(101) != "shutdown" || f.exitOf(102) != "shutdown" {
		t.Errorf("facts %+v", f.facts)
	}
	if c.BootFailures[BootWorker] != 1 || c.Exits[ExitBootFailure] != 1 || c.Exits[ExitShutdown] != 2 || c.Boots != 3 {
		t.Errorf("counts %+v", c)
	}
	for _, fa := range f.facts {
		if fa.Kind == FactBootFailure && fa.Detail != "ImportError: cannot import name 'x'" {
			t.Errorf("boot failure detail %q", fa.Detail)
		}
	}
	if d := f.exitFact(102).Detail; !strings.Contains(d, "no exit line") {
		t.Errorf("silent shutdown detail %q", d)
	}
}

// TestFollowedFromTheMiddle: workers first seen after a HUP or TERM, with no
// boot line, are retired by it.
func TestFollowedFromTheMiddle(t *testing.T) {
	f := newFeeder(t)
	f.at(0, 10, "INFO", "Worker exiting (pid: 10)") // before any master line
	f.at(1, 5, "INFO", "Handling signal: hup")
	f.at(1, 5, "INFO", "Hang up: Master")
	f.at(1, 11, "INFO", "Worker exiting (pid: 11)")
	f.at(1, 5, "WARNING", "Worker with pid 11 was terminated due to signal 15")
	f.at(1, 21, "INFO", "Booting worker with pid: 21")
	f.at(90, 21, "INFO", "Worker exiting (pid: 21)") // later kill -TERM
	c := f.done()
	if f.exitOf(10) != "terminated" || f.exitOf(11) != "reload" || f.exitOf(21) != "terminated" {
		t.Errorf("facts %+v", f.facts)
	}
	if c.WorkerSignals != ([NumSignals]uint64{}) {
		t.Errorf("signals %v", c.WorkerSignals)
	}
}

func TestMessagesAndParseFailures(t *testing.T) {
	f := newFeeder(t)
	f.lines(`[2026-11-24 18:00:00 +0000] [101] [ERROR] Error handling request /error
Traceback (most recent call last):
  File "/srv/app/app.py", line 12, in app
RuntimeError: boom
Failed to find attribute 'nosuchattr' in 'app'.
<frozen os>:1031: RuntimeWarning: line buffering
[2026-11-24 18:00:01 +0000] [100] [WARN
[2026-11-24 18:00:01 +0000] [100] [INFO] Invalid request from ip=1.2.3.4: Invalid HTTP request line: 'x'
[2026-11-24 18:00:01 +0000] [100] [WARNING] Invalid request from ip=1.2.3.4: Invalid HTTP request line: 'x'`)
	c := f.done()
	want := Counts{
		Messages:        [NumLevels]uint64{0, 1, 1, 1, 0},
		RequestErrors:   1,
		InvalidRequests: 2,
		RawLines:        2,
		ParseFailures:   1,
	}
	if c != want {
		t.Errorf("counts\n got %+v\nwant %+v", c, want)
	}
}

func TestMasterSignalFacts(t *testing.T) {
	f := newFeeder(t)
	for i, s := range AllMasterSignals {
		f.at(i, 100, "INFO", "Handling signal: "+s.String())
	}
	f.at(20, 100, "INFO", "Handling signal: bogus")
	c := f.done()
	for _, s := range AllMasterSignals {
		if c.MasterSignals[s] != 1 {
			t.Errorf("%s counted %d", s, c.MasterSignals[s])
		}
	}
	var causes []string
	for _, fa := range f.facts {
		if fa.Kind == FactMasterSignal {
			causes = append(causes, fa.Cause)
		}
	}
	if got := strings.Join(causes, ","); got != "hup,ttin,ttou,usr1,usr2,winch,term,int,quit,other" {
		t.Errorf("causes %s", got)
	}
}

func TestDaemonWINCHScalesDown(t *testing.T) {
	f := newFeeder(t)
	f.start(0, 100, 2, "20.1.0")
	f.at(5, 100, "INFO", "Handling signal: winch")
	f.at(5, 100, "INFO", "graceful stop of workers")
	f.at(5, 101, "INFO", "Worker exiting (pid: 101)")
	f.at(5, 100, "WARNING", "Worker with pid 102 was terminated due to signal 15")
	f.done()
	if f.exitOf(101) != "scale_down" || f.exitOf(102) != "scale_down" {
		t.Errorf("facts %+v", f.facts)
	}
}

// TestBoundedMemory: pids beyond MaxTrackedPIDs are forgotten, counts stay
// right.
func TestBoundedMemory(t *testing.T) {
	f := newFeeder(t)
	f.tr = NewTracker(Options{Now: func() time.Time { return f.wall }, MaxTrackedPIDs: 64})
	f.start(0, 100, 2, "20.1.0")
	const n = 5000
	for i := 0; i < n; i++ {
		pid := 1000 + i
		f.at(10+i, pid, "INFO", fmt.Sprintf("Booting worker with pid: %d", pid))
		f.at(10+i, pid, "INFO", fmt.Sprintf("Worker exiting (pid: %d)", pid))
	}
	// Only boots, never an exit: live workers are dropped too.
	for i := 0; i < 500; i++ {
		f.at(n+20, 9000+i, "INFO", fmt.Sprintf("Booting worker with pid: %d", 9000+i))
	}
	if len(f.tr.workers) > 64 || len(f.tr.pending) > 64 {
		t.Errorf("%d workers and %d pending kept", len(f.tr.workers), len(f.tr.pending))
	}
	c := f.done()
	if c.Exits[ExitTerminated] != n || c.Boots != n+502 {
		t.Errorf("terminated %d boots %d", c.Exits[ExitTerminated], c.Boots)
	}
	// Many masters (restarts) are bounded too.
	for i := 0; i < 100; i++ {
		f.at(n+30+i, 20000+i, "INFO", "Starting gunicorn 20.1.0")
	}
	if len(f.tr.masters) > maxMasters {
		t.Errorf("%d masters kept", len(f.tr.masters))
	}
}

// TestConcurrentSnapshot runs under -race: one goroutine feeds, others
// snapshot.
func TestConcurrentSnapshot(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(readFixture(t, "20.1-lifecycle/error.log")), "\n")
	tr := NewTracker(Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					c := tr.Snapshot()
					_ = c.Exits[ExitTimeout] + c.Boots
				}
			}
		}()
	}
	for round := 0; round < 20; round++ {
		for _, l := range lines {
			tr.ObserveLine([]byte(l))
		}
		tr.Flush(time.Now())
	}
	close(stop)
	wg.Wait()
	if c := tr.Snapshot(); c.Boots != 20*13 || c.Timeouts != 20*2 {
		t.Errorf("boots %d timeouts %d", c.Boots, c.Timeouts)
	}
}

// TestControlSocket: 25.3+ writes "Control socket listening at" after
// every fork, and "worker add" through the socket logs only the boot.
func TestControlSocket(t *testing.T) {
	f := newFeeder(t)
	f.start(0, 100, 2, "25.3.0")
	f.at(0, 100, "INFO", "Control socket listening at /root/.gunicorn/gunicorn.ctl")
	f.at(5, 100, "INFO", "Handling signal: ttin")
	f.at(5, 103, "INFO", "Booting worker with pid: 103")
	f.at(5, 100, "INFO", "Control socket listening at /root/.gunicorn/gunicorn.ctl")
	// "worker add 1": 3 of 3 live, yet nobody died.
	f.at(8, 104, "INFO", "Booting worker with pid: 104")
	f.at(8, 100, "INFO", "Control socket listening at /root/.gunicorn/gunicorn.ctl")
	// A second "worker add": the target followed the first.
	f.at(9, 105, "INFO", "Booting worker with pid: 105")
	f.at(9, 100, "INFO", "Control socket listening at /root/.gunicorn/gunicorn.ctl")
	f.at(12, 100, "INFO", "Handling signal: term")
	for pid := 101; pid <= 105; pid++ {
		f.at(12, pid, "INFO", fmt.Sprintf("Worker exiting (pid: %d)", pid))
	}
	f.at(12, 100, "INFO", "Shutting down: Master")
	c := f.done()
	if c.MasterStarts != 1 || c.Boots != 5 || c.ParseFailures != 0 || c.Messages[1] != 21 {
		t.Errorf("counts %+v", c)
	}
	if c.Exits[ExitUnknown] != 0 || c.Exits[ExitShutdown] != 5 {
		t.Errorf("exits %v: a boot through the control socket is no death", c.Exits)
	}
	for _, fa := range f.facts {
		if fa.Kind == FactMasterStart && fa.PID != 100 {
			t.Errorf("fact %+v", fa)
		}
	}
}

// TestUnreapedWorkers: Gunicorn 24.0.0 logs "Unhandled signal: cld" for
// every SIGCHLD and never reaps; later it times out the dead worker's
// zombie (v24.0.0 fixture).
func TestUnreapedWorkers(t *testing.T) {
	f := newFeeder(t)
	f.start(0, 100, 2, "24.0.0")
	f.at(5, 100, "INFO", "Handling signal: ttou")
	f.at(5, 101, "INFO", "Worker exiting (pid: 101)")
	f.at(5, 100, "ERROR", "Unhandled signal: cld")
	f.at(7, 100, "CRITICAL", "WORKER TIMEOUT (pid:101)")
	f.at(20, 100, "CRITICAL", "WORKER TIMEOUT (pid:102)")
	f.at(20, 102, "INFO", "Worker exiting (pid: 102)")
	f.at(20, 100, "ERROR", "Unhandled signal: cld")
	f.at(30, 100, "INFO", "Handling signal: term")
	f.at(30, 100, "INFO", "Shutting down: Master")
	c := f.done()
	if c.UnreplacedWorkerDeaths != 2 {
		t.Errorf("unreplaced deaths %d, want 2", c.UnreplacedWorkerDeaths)
	}
	if c.Timeouts != 1 || f.exitOf(101) != "scale_down" || f.exitOf(102) != "timeout" {
		t.Errorf("timeouts %d, exits %v: the zombie's timeout counted", c.Timeouts, c.Exits)
	}
	if !c.LastTimeout.Equal(logBase.Add(20 * time.Second)) {
		t.Errorf("last timeout %v", c.LastTimeout)
	}
	var got []Fact
	for _, fa := range f.facts {
		if fa.Kind == FactMasterNotReaping {
			got = append(got, fa)
		}
	}
	want := Fact{Time: logBase.Add(5 * time.Second), Kind: FactMasterNotReaping, PID: 100, Detail: "24.0.0"}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("facts %+v, want once %+v", got, want)
	}

	t.Run("other signals and reaping masters", func(t *testing.T) {
		f := newFeeder(t)
		f.start(0, 100, 2, "23.0.0")
		f.at(2, 100, "ERROR", "Unhandled signal: usr3")
		// A WORKER TIMEOUT after the worker's own exit line from a master
		// that reaps is still a timeout.
		f.at(5, 101, "INFO", "Worker exiting (pid: 101)")
		f.at(6, 100, "CRITICAL", "WORKER TIMEOUT (pid:101)")
		c := f.done()
		if c.UnreplacedWorkerDeaths != 0 || c.Timeouts != 1 || f.exitOf(101) != "timeout" {
			t.Errorf("counts %+v", c)
		}
		for _, fa := range f.facts {
			if fa.Kind == FactMasterNotReaping {
				t.Errorf("fact %+v", fa)
			}
		}
	})
}
