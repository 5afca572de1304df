package appset

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/errorlog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// A Gunicorn 24.0.0 master that does not reap its workers is logged once,
// with its version, however many deaths follow.
func TestPipelineLogsMasterNotReaping(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	p, err := newPipeline(Spec{Name: "a"}, config.Logs{}, logger, timeline.New(16, 0), time.Now)
	require.NoError(t, err)
	for _, l := range []string{
		"[2026-12-01 19:27:56 +0000] [32067] [INFO] Starting gunicorn 24.0.0",
		"[2026-12-01 19:28:00 +0000] [32067] [ERROR] Unhandled signal: cld",
		"[2026-12-01 19:28:03 +0000] [32067] [ERROR] Unhandled signal: cld",
	} {
		p.observeErrorLine([]byte(l))
	}
	out := buf.String()
	require.Equal(t, 1, strings.Count(out, "does not replace dead workers"), out)
	require.Contains(t, out, "version=24.0.0")
	require.Contains(t, out, "master_pid=32067")
}

// One source carrying both logs sends each line to the log it belongs to,
// by shape: headers and what follows them on stderr to the error log,
// access-format lines to the access log, other stdout lines nowhere.
func TestPipelineRoutesMixedLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.log")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	spec := Spec{Name: "a", ErrorLog: "-", AccessLog: "-", AccessLogFormat: `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`,
		Output: Output{Kind: linesource.KindFile, Path: path}}
	p, err := newPipeline(spec, config.Logs{}, slog.New(slog.DiscardHandler), timeline.New(16, 0), time.Now)
	require.NoError(t, err)
	p.errLog.Poll() // opens at the end of the empty file
	lines := []struct {
		stream linesource.Stream
		text   string
	}{
		{linesource.StreamStderr, "[2026-12-01 19:27:56 +0000] [32067] [INFO] Starting gunicorn 23.0.0"},
		{linesource.StreamStdout, `127.0.0.1 - - [01/Dec/2026:19:28:00 +0000] "GET / HTTP/1.1" 200 2 "-" "curl/8.0"`},
		{linesource.StreamStderr, "[2026-12-01 19:28:01 +0000] [32070] [ERROR] Exception in worker process"},
		{linesource.StreamStdout, "hello from print()"},
		{linesource.StreamStderr, "Traceback (most recent call last):"},
		{linesource.StreamUnknown, `127.0.0.1 - - [01/Dec/2026:19:28:02 +0000] "POST /x HTTP/1.1" 500 0 "-" "curl/8.0"`},
	}
	for _, l := range lines {
		p.routeMixed(l.stream, []byte(l.text))
	}
	s := p.snapshot()
	require.Equal(t, uint64(3), s.ErrorLog.Lines)
	require.Equal(t, uint64(2), s.AccessLog.Lines)
	require.Equal(t, uint64(1), s.OtherLines)
	require.NotNil(t, s.Access)
	require.Zero(t, s.Access.ParseFailures())
	require.Equal(t, linesource.KindFile, s.ErrorLogSource)
	require.Equal(t, linesource.KindFile, s.AccessLogSource)
	require.Equal(t, uint64(1), s.Lifecycle.Messages[errorlog.LevelInfo])
	require.Equal(t, uint64(1), s.Lifecycle.Messages[errorlog.LevelError])
}

// A line of a container's log file that is not in the runtime's format is
// counted as an error-log parse failure, and the lines around it still
// count.
func TestPipelineCountsUndecodableContainerLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	p, err := newPipeline(Spec{Name: "a", ErrorLog: "-", Output: Output{Kind: linesource.KindCRI, Path: path}},
		config.Logs{}, slog.New(slog.DiscardHandler), timeline.New(16, 0), time.Now)
	require.NoError(t, err)
	defer p.errLog.Close()
	p.errLog.Poll()
	require.NoError(t, os.WriteFile(path, []byte("2026-12-01T19:27:56Z stderr F [2026-12-01 19:27:56 +0000] [1] [INFO] Starting gunicorn 23.0.0\n"+
		"not a CRI line\n2026-12-01T19:27:57Z stderr F [2026-12-01 19:27:57 +0000] [2] [INFO] Booting worker with pid: 2\n"), 0o600))
	p.errLog.Poll()
	s := p.snapshot()
	require.Equal(t, uint64(1), s.Lifecycle.ParseFailures)
	require.Equal(t, uint64(1), s.Lifecycle.Boots)
	require.Equal(t, uint64(2), s.ErrorLog.Lines)
}
