// Package reflextest runs the real gunicorn-reflex binary for end-to-end
// tests: it builds it once per test process, starts it on a free loopback
// port, scrapes /metrics into a queryable form, and stops it by pid.
package reflextest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// built is the binary Binary built for this process: its directory, its
// path, or the error building it gave; main says Main runs the tests.
var built struct {
	mu   sync.Mutex
	dir  string
	path string
	err  error
	main bool
}

// command is the main package Binary builds; a test of this package builds
// a smaller one.
var command = "./cmd/gunicorn-reflex"

// Binary builds cmd/gunicorn-reflex (once per test process) and returns its
// path. The binary lives in a temporary directory of its own, outside any
// test's TempDir, because every test of the process shares it (and every
// -count repetition): no test's cleanup can remove it. So in a test binary
// Binary requires the package's TestMain to be Main, which removes it when
// the tests end, and fails the test otherwise, before building anything; a
// program using the harnesses (reflex-demo) removes it with RemoveBinary.
func Binary(t testing.TB) string {
	t.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	if testing.Testing() && !built.main {
		t.Fatal("reflextest: the binary Binary builds outlives every test, and only Main removes it: " +
			"the package needs `func TestMain(m *testing.M) { reflextest.Main(m) }`")
	}
	if built.path == "" && built.err == nil {
		built.err = build()
	}
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func build() error {
	dir, err := os.MkdirTemp("", "reflextest-bin-")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, filepath.Base(command))
	if err := testenv.BuildCommand(path, command); err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	built.dir, built.path = dir, path
	return nil
}

// Main is the TestMain of every package whose tests run the binary
// (directly or through a harness built on this package, such as looptest):
// it runs the tests, removes the binary, and exits with the tests' code,
// or 1 if the removal failed. -run and -count work as without it. A test
// binary that panics or times out still leaves the directory behind.
func Main(m *testing.M) {
	built.mu.Lock()
	built.main = true
	built.mu.Unlock()
	code := m.Run()
	if err := RemoveBinary(); err != nil {
		fmt.Fprintf(os.Stderr, "reflextest: remove the gunicorn-reflex binary: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// RemoveBinary removes the binary Binary built and its directory; a later
// Binary builds it again. Main calls it after the tests; a program that
// runs the harnesses (reflex-demo), which must leave nothing behind when
// it ends, calls it after every exporter has stopped.
func RemoveBinary() error {
	built.mu.Lock()
	defer built.mu.Unlock()
	dir := built.dir
	built.dir, built.path, built.err = "", "", nil
	if dir == "" {
		return nil
	}
	return os.RemoveAll(dir)
}

// Exporter is one running gunicorn-reflex process.
type Exporter struct {
	URL    string
	Stderr *testenv.LockedBuffer
	cmd    *exec.Cmd
	done   chan struct{}
	t      testing.TB
}

// Start runs the binary with args plus --web.listen-address on a free
// loopback port and waits until /-/ready answers 200. A cleanup stops it.
func Start(t testing.TB, args ...string) *Exporter {
	t.Helper()
	return StartWithStdin(t, nil, args...)
}

// StartWithStdin is Start with the exporter's stdin read from stdin (nil:
// the null device).
func StartWithStdin(t testing.TB, stdin io.Reader, args ...string) *Exporter {
	t.Helper()
	return StartOn(t, "127.0.0.1:0", stdin, args...)
}

// StartOn is StartWithStdin listening on addr, a loopback host:port; port 0
// picks a free one. Addresses 127.0.0.2 and up let tests run several
// "hosts" on one machine.
func StartOn(t testing.TB, addr string, stdin io.Reader, args ...string) *Exporter {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("reflextest: listen address %q: %v", addr, err)
	}
	if port == "0" {
		addr = net.JoinHostPort(host, strconv.Itoa(freePort(t, host)))
	}
	cmd := exec.Command(Binary(t), append([]string{"--web.listen-address=" + addr, "--log.level=debug"}, args...)...)
	e := &Exporter{URL: "http://" + addr, Stderr: &testenv.LockedBuffer{}, cmd: cmd, done: make(chan struct{}), t: t}
	cmd.Stdout = e.Stderr
	cmd.Stderr = e.Stderr
	cmd.Stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gunicorn-reflex: %v", err)
	}
	go func() { _ = cmd.Wait(); close(e.done) }()
	t.Cleanup(e.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(e.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e
			}
		}
		select {
		case <-e.done:
			t.Fatalf("gunicorn-reflex exited before it was ready:\n%s", e.Stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gunicorn-reflex not ready after 20s:\n%s", e.Stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PID is the exporter's process id.
func (e *Exporter) PID() int { return e.cmd.Process.Pid }

// Signal sends sig to the exporter.
func (e *Exporter) Signal(sig syscall.Signal) error { return e.cmd.Process.Signal(sig) }

// Stop terminates the exporter by pid: SIGTERM, then SIGKILL after 10 s.
func (e *Exporter) Stop() {
	select {
	case <-e.done:
		return
	default:
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		e.t.Errorf("gunicorn-reflex did not stop within 10s of SIGTERM; killing it")
		_ = e.cmd.Process.Kill()
		<-e.done
	}
}

// Get fetches a path and returns status and body.
func (e *Exporter) Get(path string) (int, string, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(e.URL + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// Metrics is one scrape, keyed by metric family name.
type Metrics struct {
	Text     string
	Families map[string]*dto.MetricFamily
}

// Scrape fetches /metrics in the text format and parses it.
func (e *Exporter) Scrape(t testing.TB) *Metrics {
	t.Helper()
	status, body, err := e.Get("/metrics")
	if err != nil || status != http.StatusOK {
		t.Fatalf("scrape: status %d, err %v\n%s", status, err, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return &Metrics{Text: body, Families: fams}
}

// Value returns the value of the series of family name whose labels include
// every given name=value pair; ok is false when no series matches.
func (m *Metrics) Value(name string, labels ...string) (float64, bool) {
	fam, found := m.Families[name]
	if !found {
		return 0, false
	}
	for _, s := range fam.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue(), true
		case s.Gauge != nil:
			return s.Gauge.GetValue(), true
		case s.Untyped != nil:
			return s.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// Series lists "name{labels} value" lines of a family for failure messages.
func (m *Metrics) Series(name string) string {
	var lines []string
	for _, l := range strings.Split(m.Text, "\n") {
		if strings.HasPrefix(l, name) {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func hasLabels(s *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, lp := range s.GetLabel() {
			if lp.GetName() == kv[i] && lp.GetValue() == kv[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// WaitValue scrapes until the series equals want or timeout passes, and
// returns the last scrape.
func (e *Exporter) WaitValue(t testing.TB, timeout time.Duration, want float64, name string, labels ...string) *Metrics {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := e.Scrape(t)
		if v, ok := m.Value(name, labels...); ok && v == want {
			return m
		}
		if time.Now().After(deadline) {
			v, ok := m.Value(name, labels...)
			t.Fatalf("%s%v = %v (present %v), want %v after %v\n%s\nexporter log:\n%s", name, labels, v, ok, want, timeout, m.Series(name), e.Stderr.Tail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t testing.TB, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
