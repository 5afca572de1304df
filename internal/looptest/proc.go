package looptest

import (
	"bytes"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is one Prometheus or Alertmanager process of a test.
type server struct {
	name string
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	out  lockedBuffer
}

// start runs bin with args, output captured, killed with the test binary
// (Pdeathsig) as a backstop, and stopped by pid in a cleanup; it waits until
// URL/-/ready answers 200.
func (s *server) start(t testing.TB, bin string, args ...string) {
	t.Helper()
	s.done = make(chan struct{})
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("looptest: start %s: %v", s.name, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.Stop(t)
		if t.Failed() {
			t.Logf("%s %s log (tail):\n%s", s.name, s.URL, tail(s.out.String(), 60))
		}
	})
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := client.Get(s.URL + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-s.done:
			t.Fatalf("looptest: %s exited before it was ready:\n%s", s.name, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("looptest: %s not ready after 30s:\n%s", s.name, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the process by pid: SIGTERM, then SIGKILL after 10 s.
func (s *server) Stop(t testing.TB) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Errorf("looptest: %s did not stop within 10s of SIGTERM; killing it", s.name)
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Log is everything the process wrote so far.
func (s *server) Log() string { return s.out.String() }

// PID is the process id.
func (s *server) PID() int { return s.cmd.Process.Pid }

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	lines := bytes.Split(bytes.TrimRight([]byte(s), "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
