// Package promtest runs a real Prometheus and a real Alertmanager for
// tests: it writes their configuration, starts each on a free port of a
// loopback address with its storage in a temporary directory, waits until
// it is ready, queries its HTTP API, and stops it by pid in a test cleanup.
// It knows nothing of the remediation loop: internal/looptest builds the
// loop on it, and tests that need only one of the two use it directly.
//
// It starts programs and sends signals, so it is a test harness: production
// code never imports it (internal/importrules enforces that).
package promtest

import (
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// server is one Prometheus or Alertmanager process of a test.
type server struct {
	name string
	// URL is the base URL of the web listener, http://host:port.
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	out  testenv.LockedBuffer
}

// client talks to the servers. Proxy is nil: they listen on loopback, and
// no proxy from the environment may stand in between.
var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

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
		t.Fatalf("promtest: start %s: %v", s.name, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.Stop(t)
		if t.Failed() {
			t.Logf("%s %s log (tail):\n%s", s.name, s.URL, s.out.Tail(60))
		}
	})
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
			t.Fatalf("promtest: %s exited before it was ready:\n%s", s.name, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("promtest: %s not ready after 30s:\n%s", s.name, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the process by pid: SIGTERM, then SIGKILL after 10 s. The
// cleanup calls it too; calling it twice is harmless.
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
		t.Errorf("promtest: %s did not stop within 10s of SIGTERM; killing it", s.name)
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Log is everything the process wrote so far.
func (s *server) Log() string { return s.out.String() }

// PID is the process id.
func (s *server) PID() int { return s.cmd.Process.Pid }

// Addr is the web listener's host:port (for Prometheus's alerting config,
// or a scrape target).
func (s *server) Addr() string { return strings.TrimPrefix(s.URL, "http://") }

// FreeAddr returns a host:port of the loopback address host whose port was
// free a moment ago.
func FreeAddr(t testing.TB, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("promtest: listen on %s: %v", host, err)
	}
	defer l.Close()
	return l.Addr().String()
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}
