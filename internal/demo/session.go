package demo

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// Session lets the test harnesses (which take a testing.TB, because their
// first users are tests) run inside a plain program: it collects their
// cleanups and runs them in reverse order on Close, and turns a harness's
// Fatal or Skip into a failure of the function Session.Run is running.
//
// Only the methods the harnesses call are implemented; the embedded nil
// testing.TB supplies the unexported method that makes Session a
// testing.TB, and calling any other method panics, which is a bug here
// rather than a silent no-op.
type Session struct {
	testing.TB

	log io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	msgs     []string
	tmp      []string
}

// NewSession returns a Session that writes harness log lines to log.
func NewSession(log io.Writer) *Session { return &Session{log: log} }

// Run calls f on a goroutine of its own, as `go test` does, so that a
// Fatal (runtime.Goexit) ends f and not the caller. It returns the
// failure messages, nil when f returned normally.
func (s *Session) Run(f func(tb testing.TB)) []string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(s)
	}()
	<-done
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failed {
		return nil
	}
	return append([]string(nil), s.msgs...)
}

// Close runs every cleanup, the last registered first, removes the
// temporary directories and the gunicorn-reflex binary the harnesses built,
// and returns the failures the cleanups recorded (a process that did not
// stop when asked, say), nil when there were none: what Run returned
// cannot include them, and a demo that says it stopped everything must
// not hide them.
func (s *Session) Close() []string {
	s.mu.Lock()
	before := len(s.msgs)
	s.mu.Unlock()
	for {
		s.mu.Lock()
		n := len(s.cleanups)
		if n == 0 {
			s.mu.Unlock()
			break
		}
		f := s.cleanups[n-1]
		s.cleanups = s.cleanups[:n-1]
		s.mu.Unlock()
		// On a goroutine of its own, as Run does: a cleanup's Fatal ends
		// that cleanup, not Close, and the ones after it still run.
		done := make(chan struct{})
		go func() {
			defer close(done)
			f()
		}()
		<-done
	}
	for _, d := range s.tmp {
		if err := os.RemoveAll(d); err != nil {
			s.record(fmt.Sprintf("remove %s: %v", d, err))
		}
	}
	// The binary is built once per process into a directory of its own,
	// which a test process leaves behind; the demo is the whole process.
	if err := reflextest.RemoveBinary(); err != nil {
		s.record(fmt.Sprintf("remove the gunicorn-reflex binary: %v", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) == before {
		return nil
	}
	return append([]string(nil), s.msgs[before:]...)
}

// Helper does nothing: line numbers are not reported.
func (s *Session) Helper() {}

// Name names the session, for harnesses that label what they start.
func (s *Session) Name() string { return "reflex-demo" }

// Cleanup registers f to run on Close.
func (s *Session) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// TempDir creates a directory removed on Close.
func (s *Session) TempDir() string {
	d, err := os.MkdirTemp("", "reflex-demo-")
	if err != nil {
		s.Fatalf("temp dir: %v", err)
	}
	s.mu.Lock()
	s.tmp = append(s.tmp, d)
	s.mu.Unlock()
	return d
}

// Failed reports whether a failure was recorded.
func (s *Session) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Log writes a harness log line.
func (s *Session) Log(args ...any) { fmt.Fprintln(s.log, args...) }

// Logf writes a harness log line.
func (s *Session) Logf(format string, args ...any) { fmt.Fprintf(s.log, format+"\n", args...) }

// Error records a failure and goes on.
func (s *Session) Error(args ...any) { s.record(fmt.Sprint(args...)) }

// Errorf records a failure and goes on.
func (s *Session) Errorf(format string, args ...any) { s.record(fmt.Sprintf(format, args...)) }

// Fail records a failure and goes on.
func (s *Session) Fail() { s.record("failed") }

// FailNow records a failure and ends the function Run runs.
func (s *Session) FailNow() { s.record("failed"); runtime.Goexit() }

// Fatal records a failure and ends the function Run runs.
func (s *Session) Fatal(args ...any) { s.record(fmt.Sprint(args...)); runtime.Goexit() }

// Fatalf records a failure and ends the function Run runs.
func (s *Session) Fatalf(format string, args ...any) {
	s.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// Skip is a failure here: the demo needs every real part it starts (a
// harness skips when a program is missing; `make demo` installs them).
func (s *Session) Skip(args ...any) { s.Fatal(append([]any{"missing: "}, args...)...) }

// Skipf is Skip with a format.
func (s *Session) Skipf(format string, args ...any) { s.Fatalf("missing: "+format, args...) }

// SkipNow is Skip without a message.
func (s *Session) SkipNow() { s.Fatal("skipped") }

// Skipped reports false: a skip is a failure here.
func (s *Session) Skipped() bool { return false }

func (s *Session) record(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = true
	s.msgs = append(s.msgs, msg)
}
