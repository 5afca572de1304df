package follower

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sink collects lines handed to a Handler.
type sink struct {
	mu    sync.Mutex
	lines []string
}

func (s *sink) handle(b []byte) {
	s.mu.Lock()
	s.lines = append(s.lines, string(b))
	s.mu.Unlock()
}

// take returns the lines collected since the last take.
func (s *sink) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lines
	s.lines = nil
	return l
}

// fakeClock is the injected clock for RotateGrace.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// count returns how many log records contain s.
func (b *syncBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for l := range strings.SplitSeq(b.b.String(), "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// harness is a follower on dir/app.log with a fake clock, a sink and a
// captured log.
type harness struct {
	t     *testing.T
	dir   string
	path  string
	f     *Follower
	sink  *sink
	clock *fakeClock
	logs  *syncBuffer
}

func newHarness(t *testing.T, path string, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, path: path, dir: filepath.Dir(path), sink: &sink{}, clock: newFakeClock(), logs: &syncBuffer{}}
	opts := Options{
		Path: path,
		Now:  h.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(h.logs, t.Output()),
			&slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&opts)
	}
	f, err := New(opts, h.sink.handle)
	require.NoError(t, err)
	h.f = f
	t.Cleanup(func() { _ = f.Close() })
	return h
}

// poll runs one poll and returns the lines it produced.
func (h *harness) poll() []string {
	h.f.Poll()
	return h.sink.take()
}

// draining is the number of rotated files still open.
func (h *harness) draining() int {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return len(h.f.old)
}

func tempLog(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "app.log")
}

// seq returns prefix-000from … prefix-000(to-1).
func seq(prefix string, from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%06d", prefix, i))
	}
	return out
}

// text joins lines, each terminated by '\n'.
func text(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// appendFile appends s to path, creating it, through a fresh O_APPEND fd (a
// writer that reopens for every batch, like logrotate's "create" with an
// immediate reopen).
func appendFile(t *testing.T, path, s string) {
	t.Helper()
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	require.NoError(t, err)
	_, err = w.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, w.Close())
}

// openAppend returns a long-lived O_APPEND writer, like Gunicorn's
// logging.FileHandler.
func openAppend(t *testing.T, path string) *os.File {
	t.Helper()
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func write(t *testing.T, w *os.File, s string) {
	t.Helper()
	_, err := w.WriteString(s)
	require.NoError(t, err)
}

// rotations returns the rotation counters as a map for readable failures.
func rotations(st Stats) map[string]uint64 {
	m := map[string]uint64{}
	for _, r := range RotationReasons() {
		m[r.String()] = st.Rotations[r]
	}
	return m
}

func wantRotations(rename, truncate, del, symlink uint64) map[string]uint64 {
	return map[string]uint64{"rename": rename, "truncate": truncate, "delete": del, "symlink": symlink}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count fds: %v", err)
	}
	return len(ents)
}
