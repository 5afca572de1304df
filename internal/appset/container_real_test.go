package appset

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/lifecycle"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// runtimeWriter writes lines as a container runtime does: Docker's
// json-file or the CRI format, splitting lines at 16 KiB of text (both
// runtimes' default) and rotating by rename when the file passes limit.
type runtimeWriter struct {
	t       *testing.T
	path    string
	cri     bool
	limit   int64
	f       *os.File
	size    int64
	rotated int
	raw     int // runtime lines written
	// poll runs between writes, so a reader sees rotations and CRI lines
	// cut in the middle of a write.
	poll func()
}

const runtimeSplit = 16 << 10

func (w *runtimeWriter) open() {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	require.NoError(w.t, err)
	w.f, w.size = f, 0
}

func (w *runtimeWriter) line(stream, text string) {
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for first := true; first || text != ""; first = false {
		chunk := text
		if len(chunk) > runtimeSplit {
			chunk = chunk[:runtimeSplit]
		}
		text = text[len(chunk):]
		partial := text != ""
		var raw []byte
		if w.cri {
			tag := "F"
			if partial {
				tag = "P"
			}
			raw = []byte(ts + " " + stream + " " + tag + " " + chunk + "\n")
		} else {
			if !partial {
				chunk += "\n"
			}
			b, err := json.Marshal(map[string]string{"log": chunk, "stream": stream, "time": ts})
			require.NoError(w.t, err)
			raw = append(b, '\n')
		}
		w.write(raw)
	}
}

func (w *runtimeWriter) write(raw []byte) {
	w.raw++
	if w.raw%7 == 0 {
		// Half a line, a poll, then the rest: the reader must hold it.
		half := len(raw) / 2
		w.put(raw[:half])
		w.poll()
		raw = raw[half:]
	}
	w.put(raw)
	if w.raw%5 == 0 {
		w.poll()
	}
	if w.size >= w.limit {
		require.NoError(w.t, w.f.Close())
		w.rotated++
		require.NoError(w.t, os.Rename(w.path, fmt.Sprintf("%s.%d", w.path, w.rotated)))
		w.open()
		w.poll()
	}
}

func (w *runtimeWriter) put(b []byte) {
	n, err := w.f.Write(b)
	require.NoError(w.t, err)
	w.size += int64(n)
}

func readLines(t *testing.T, path string) []string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	require.NoError(t, sc.Err())
	return out
}

// A real Gunicorn run with --error-logfile - and --access-logfile -,
// rewritten as Docker's json-file and as a CRI log (16 KiB splits, a 64
// KiB line, rotation by rename mid-stream, lines cut across writes), gives
// the same lifecycle counts as the plain capture, and every line reaches
// the log it belongs to.
func TestContainerLogsOfARealGunicorn(t *testing.T) {
	const fmtStr = `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s`
	g := gunicorntest.Start(t, gunicorntest.Options{
		Workers: 2, Timeout: 1, ErrorLogToStderr: true, NoAccessLog: true, AccessLogFormat: fmtStr,
		ExtraArgs: []string{"--access-logfile", "-", "--limit-request-field_size", "0"},
	})
	for range 5 {
		status, _, err := g.Get("/ok")
		require.NoError(t, err)
		require.Equal(t, 200, status)
	}
	// A 64 KiB line: a User-Agent that long in the access log.
	longUA := strings.Repeat("u", 64<<10)
	req, err := http.NewRequest(http.MethodGet, g.BaseURL+"/ok", nil)
	require.NoError(t, err)
	req.Header.Set("User-Agent", longUA)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, 200, resp.StatusCode)
	<-g.GetAsync("/sleep?s=4") // a worker timeout
	require.NoError(t, g.WaitLog("Booting worker", 3, 20*time.Second))
	workers := g.WorkerPIDs()
	require.NotEmpty(t, workers)
	require.NoError(t, g.SignalWorker(workers[0], syscall.SIGKILL))
	require.NoError(t, g.WaitLog("Booting worker", 4, 20*time.Second))
	require.NoError(t, g.Signal(syscall.SIGTTIN))
	require.NoError(t, g.WaitLog("Booting worker", 5, 20*time.Second))
	g.Stop()

	stderr, stdout := readLines(t, g.Stderr), readLines(t, g.Stdout)
	require.NotEmpty(t, stderr)
	require.GreaterOrEqual(t, len(stdout), 6, "the harness probes too")
	longest := 0
	for _, l := range stdout {
		longest = max(longest, len(l))
	}
	require.Greater(t, longest, 64<<10)

	// The same run through the plain file.
	plain := lifecycle.NewTracker(lifecycle.Options{})
	pf, err := linesource.NewFile(follower.Options{Path: g.Stderr, FromStart: true, MaxLineBytes: 1 << 20},
		func(_ linesource.Stream, l []byte) { plain.ObserveLine(l) })
	require.NoError(t, err)
	pf.Poll()
	require.NoError(t, pf.Close())
	plain.Flush(time.Now().Add(time.Hour))
	want := plain.Snapshot()
	require.Equal(t, uint64(1), want.Timeouts, "the run had one timeout")
	require.NotZero(t, want.Exits[lifecycle.ExitSIGKILL])

	for _, kind := range []linesource.Kind{linesource.KindDocker, linesource.KindCRI} {
		t.Run(string(kind), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "0.log")
			require.NoError(t, os.WriteFile(path, nil, 0o600))
			spec := Spec{Name: "c", ErrorLog: "-", AccessLog: "-", AccessLogFormat: fmtStr, Output: Output{Kind: kind, Path: path}}
			logs := config.Logs{MaxLineBytes: 1 << 20, RotateGrace: config.Duration(time.Hour)}
			p, err := newPipeline(spec, logs, slog.New(slog.DiscardHandler), timeline.New(64, 0), time.Now)
			require.NoError(t, err)
			defer p.errLog.Close()
			p.errLog.Poll()
			w := &runtimeWriter{t: t, path: path, cri: kind == linesource.KindCRI, limit: 8 << 10, poll: p.errLog.Poll}
			w.open()
			// Interleave the streams as a runtime would.
			for i := 0; i < max(len(stderr), len(stdout)); i++ {
				if i < len(stderr) {
					w.line("stderr", stderr[i])
				}
				if i < len(stdout) {
					w.line("stdout", stdout[i])
				}
			}
			require.NoError(t, w.f.Close())
			p.errLog.Poll()
			p.tracker.Flush(time.Now().Add(time.Hour))
			s := p.snapshot()
			t.Logf("%s: %d stderr + %d stdout lines (longest %d bytes) as %d runtime lines, %d rotations; timeouts %d, boots %d, SIGKILL exits %d",
				kind, len(stderr), len(stdout), longest, w.raw, w.rotated, s.Lifecycle.Timeouts, s.Lifecycle.Boots, s.Lifecycle.Exits[lifecycle.ExitSIGKILL])
			require.Greater(t, w.rotated, 2, "rotated mid-stream")
			require.Equal(t, uint64(w.rotated), s.ErrorLog.Rotations[follower.RotationRename])
			require.Equal(t, want, s.Lifecycle)
			require.Equal(t, uint64(len(stderr)), s.ErrorLog.Lines)
			require.Equal(t, uint64(len(stdout)), s.AccessLog.Lines)
			require.Zero(t, s.OtherLines)
			require.Zero(t, s.Access.ParseFailures())
			require.Zero(t, s.ErrorLog.OversizedLines)
			require.Zero(t, p.errLog.(interface{ DecodeFailures() uint64 }).DecodeFailures())
		})
	}
}

// A real Gunicorn writing both logs into one file (supervisord's
// redirect_stderr does the same): the file is read once, each line counted
// in its own log, none as a parse failure.
func TestSharedLogFileOfARealGunicorn(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "error.log")
	m, _ := newManager(t)
	m.Apply(parse(t, "logs:\n  poll_interval: 20ms\napps:\n  - name: both\n    error_log: "+path+"\n    access_log: "+path+"\n"))
	g := gunicorntest.Start(t, gunicorntest.Options{Dir: dir, Workers: 1, NoAccessLog: true, ExtraArgs: []string{"--access-logfile", path}})
	for range 3 {
		status, _, err := g.Get("/ok")
		require.NoError(t, err)
		require.Equal(t, 200, status)
	}
	g.Stop()
	lines := readLines(t, path)
	var s Snapshot
	deadline := time.Now().Add(20 * time.Second)
	for {
		s = snapshotOf(m, "both")
		if s.ErrorLog.Lines+s.AccessLog.Lines == uint64(len(lines)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, uint64(len(lines)), s.ErrorLog.Lines+s.AccessLog.Lines)
	require.GreaterOrEqual(t, s.AccessLog.Lines, uint64(3))
	require.NotNil(t, s.Access)
	require.Zero(t, s.Access.ParseFailures())
	require.Zero(t, s.Lifecycle.ParseFailures)
	require.Zero(t, s.Lifecycle.RawLines, "no access line reached the error log")
	require.Equal(t, uint64(1), s.Lifecycle.Boots)
	require.Equal(t, linesource.KindFile, s.ErrorLogSource)
}
