package pgtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// pyClientSource connects with psycopg2 (DSN from the environment, never
// argv), prints the local address and port of its TCP socket, then runs the
// statement given in argv[1] and prints "done".
const pyClientSource = `import os, socket, sys
import psycopg2
conn = psycopg2.connect(os.environ["REFLEX_TEST_PG_DSN"])
conn.autocommit = True
s = socket.socket(fileno=conn.fileno())
host, port = s.getsockname()[:2]
s.detach()
print("local %s %d" % (host, port), flush=True)
cur = conn.cursor()
cur.execute(sys.argv[1])
print("done", flush=True)
`

var (
	pyOnce sync.Once
	pyPath string
)

// psycopgPython returns a python3 that can import psycopg2: Debian's
// /usr/bin/python3 first (python3-psycopg2 installs there), then PATH.
func psycopgPython() string {
	pyOnce.Do(func() {
		cands := []string{"/usr/bin/python3"}
		if p, err := exec.LookPath("python3"); err == nil {
			cands = append(cands, p)
		}
		for _, c := range cands {
			if err := exec.Command(c, "-c", "import psycopg2").Run(); err == nil {
				pyPath = c
				return
			}
		}
	})
	return pyPath
}

// PyClient is a python3 psycopg2 client process started by StartPyClient.
type PyClient struct {
	LocalAddr string // the client socket's local address, e.g. "127.0.0.1"
	LocalPort int
	Cmd       *exec.Cmd

	done chan struct{}
}

// StartPyClient starts a psycopg2 client that connects with dsn and runs sql
// (typically "SELECT pg_sleep(30)"), and returns once it has printed its
// socket's local address, i.e. once it is connected. The process is killed
// by pid in t.Cleanup. A python3 without psycopg2 skips the test (fails
// under REFLEX_REQUIRE_REAL=1).
func StartPyClient(t testing.TB, dsn, sql string) *PyClient {
	t.Helper()
	py := psycopgPython()
	if py == "" {
		testenv.Missing(t, "no python3 that can import psycopg2 (Debian package: python3-psycopg2)")
	}
	cmd := exec.Command(py, "-c", pyClientSource, sql)
	cmd.Env = append(os.Environ(), "REFLEX_TEST_PG_DSN="+dsn)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("pgtest: start python: %v", err)
	}
	lines := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		// Drain stdout so the client never blocks on a full pipe, then reap
		// it; Wait also finishes copying stderr.
		sc := bufio.NewScanner(stdout)
		for first := true; sc.Scan(); first = false {
			if first {
				lines <- sc.Text()
			}
		}
		_ = cmd.Wait()
		close(done)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
	}
	t.Cleanup(stop)
	select {
	case line := <-lines:
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "local" {
			stop()
			t.Fatalf("pgtest: python client said %q: %s", line, stderr.String())
		}
		port, err := strconv.Atoi(f[2])
		if err != nil {
			t.Fatalf("pgtest: python client port %q: %v", f[2], err)
		}
		return &PyClient{LocalAddr: f[1], LocalPort: port, Cmd: cmd, done: done}
	case <-done:
		t.Fatalf("pgtest: python client exited before connecting: %s", stderr.String())
	case <-time.After(20 * time.Second):
		stop()
		t.Fatalf("pgtest: python client did not connect within 20 s: %s", stderr.String())
	}
	return nil
}

// Exited reports whether the client process has exited (and been reaped).
func (p *PyClient) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// PID returns the client's pid.
func (p *PyClient) PID() int { return p.Cmd.Process.Pid }

// String describes the client for test messages.
func (p *PyClient) String() string {
	return fmt.Sprintf("psycopg2 client pid %d from %s:%d", p.PID(), p.LocalAddr, p.LocalPort)
}
