package gunicornctl

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
)

// Replies recorded from real Gunicorn 25.3.0 and 26.1.0 masters (their
// "show workers" and "show stats" answers, and 25.3.0's "show config" for
// a master run with --timeout 3); {{ID}} is replaced by the request id.
var recorded = map[string]string{
	"show workers": `{"id": {{ID}}, "status": "ok", "data": {"workers": [{"pid": 30830, "age": 9, "booted": false, "aborted": false, "last_heartbeat": 0.5}, {"pid": 30981, "age": 10, "booted": false, "aborted": false, "last_heartbeat": 0.5}], "count": 2}}`,
	"show stats":   `{"id": {{ID}}, "status": "ok", "data": {"uptime": 32.75, "pid": 30643, "workers_current": 2, "workers_target": 2, "workers_spawned": 10, "workers_killed": 4, "reloads": 1, "dirty_arbiter_pid": null}}`,
	"show config":  `{"id": {{ID}}, "status": "ok", "data": {"bind": ["127.0.0.1:48992"], "workers": 1, "worker_class": "<class 'gunicorn.workers.sync.SyncWorker'>", "threads": 1, "timeout": 3, "graceful_timeout": 30, "keepalive": 2, "max_requests": 0, "max_requests_jitter": 0, "worker_connections": 1000, "preload_app": false, "daemon": false, "pidfile": null, "proc_name": "a:app", "reload": false, "dirty_workers": 0, "dirty_apps": [], "dirty_timeout": 300, "control_socket": "/tmp/g.ctl", "control_socket_disable": false}}`,
}

// serve runs a Unix socket server that reads one framed request per
// connection and answers with reply(request) written raw (a test can send
// anything, framed or not).
func serve(t *testing.T, reply func(req map[string]any) []byte) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "g.ctl")
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				body, err := readMessage(c)
				if err != nil {
					return
				}
				var req map[string]any
				if json.Unmarshal(body, &req) != nil {
					return
				}
				out := reply(req)
				if out != nil && len(out) == 0 {
					return // close without a word
				}
				if out != nil {
					_, _ = c.Write(out)
				}
				// Hold the connection so a client that reads too far blocks
				// until its deadline instead of seeing EOF.
				buf := make([]byte, 1)
				_, _ = c.Read(buf)
			}()
		}
	}()
	return path
}

func frame(s string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
}

func recordedServer(t *testing.T) string {
	return serve(t, func(req map[string]any) []byte {
		cmd, _ := req["command"].(string)
		args, _ := req["args"].([]any)
		for _, a := range args {
			cmd += " " + a.(string)
		}
		r, ok := recorded[cmd]
		if !ok {
			return frame(`{"id": 0, "status": "error", "error": "Unknown command: ` + cmd + `"}`)
		}
		id, _ := json.Marshal(req["id"])
		return frame(strings.ReplaceAll(r, "{{ID}}", string(id)))
	})
}

func TestRecordedReplies(t *testing.T) {
	t.Parallel()
	c := &Client{Path: recordedServer(t)}
	ctx := context.Background()

	cfg, err := c.ShowConfig(ctx)
	require.NoError(t, err)
	require.NotNil(t, cfg.Timeout)
	require.InDelta(t, 3, *cfg.Timeout, 0)
	require.Equal(t, 1, *cfg.Workers)
	require.Equal(t, 1, *cfg.Threads)
	require.Equal(t, "sync", cfg.WorkerClass)
	require.Empty(t, cfg.Pidfile, "null")
	require.Equal(t, "a:app", cfg.ProcName)
	require.Equal(t, []string{"127.0.0.1:48992"}, cfg.Bind)

	ws, err := c.ShowWorkers(ctx)
	require.NoError(t, err)
	require.Len(t, ws, 2)
	require.Equal(t, 30830, ws[0].PID)
	require.InDelta(t, 0.5, *ws[1].LastHeartbeat, 0)

	st, err := c.ShowStats(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, st.WorkersTarget)
	require.Equal(t, 2, st.WorkersCurrent)
	require.Equal(t, 30643, st.PID)
}

// Every malformed or hostile answer is an error, never a hang or a panic.
func TestBadPeers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		reply func(req map[string]any) []byte
		is    error
		msg   string
	}{
		{"http server", func(map[string]any) []byte { return []byte("HTTP/1.1 400 Bad Request\r\n\r\n") }, ErrNotControlSocket, "over"},
		{"closed at once", func(map[string]any) []byte { return []byte{} }, ErrNotControlSocket, "closed before a reply"},
		{"cut short", func(map[string]any) []byte { return frame(`{"id": 1, "status": "ok"`)[:10] }, nil, "timeout"},
		{"not json", func(map[string]any) []byte { return frame(`hello`) }, ErrNotControlSocket, ""},
		{"wrong id", func(map[string]any) []byte { return frame(`{"id": 99, "status": "ok", "data": {}}`) }, ErrNotControlSocket, "reply to request 99"},
		{"error status", func(map[string]any) []byte {
			return frame(`{"id": 1, "status": "error", "error": "Unknown show target: config"}`)
		}, nil, "Unknown show target"},
		{"data of the wrong shape", func(map[string]any) []byte { return frame(`{"id": 1, "status": "ok", "data": [1]}`) }, nil, "unexpected data"},
		{"silent", func(map[string]any) []byte { return nil }, os.ErrDeadlineExceeded, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &Client{Path: serve(t, tc.reply), Timeout: 300 * time.Millisecond}
			_, err := c.ShowStats(context.Background())
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), tc.msg)
			if tc.name == "error status" {
				var ce *CommandError
				require.True(t, errors.As(err, &ce))
				require.Equal(t, "show stats", ce.Command)
			}
		})
	}
	_, err := (&Client{Path: filepath.Join(t.TempDir(), "absent.ctl")}).ShowConfig(context.Background())
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestWorkerClassName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"<class 'gunicorn.workers.sync.SyncWorker'>":      "sync",
		"<class 'gunicorn.workers.gthread.ThreadWorker'>": "gthread",
		"<class 'uvicorn.workers.UvicornWorker'>":         "uvicorn.workers.UvicornWorker",
		"": "",
	} {
		require.Equal(t, want, workerClassName(in), in)
	}
}

// SourceEnv names a Gunicorn >= 25.1 source tree (the directory holding the
// gunicorn package, e.g. `git archive 25.3.0 gunicorn | tar -x -C DIR`).
// Debian ships 20.1, so the test against a real control socket runs only
// when it is set.
const SourceEnv = "REFLEX_GUNICORN25_SRC"

// TestRealControlSocket asks a real Gunicorn 25.x master, run from source
// with setproctitle titling it, for its settings, workers and stats.
func TestRealControlSocket(t *testing.T) {
	t.Parallel()
	src := os.Getenv(SourceEnv)
	if src == "" {
		t.Skip(SourceEnv + " is not set: no Gunicorn >= 25.1 source tree to run")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "g.ctl")
	g := gunicorntest.Start(t, gunicorntest.Options{
		UsePythonM: true, Workers: 2, Timeout: 3, Dir: dir,
		Env:       []string{"PYTHONPATH=" + src},
		ExtraArgs: []string{"--control-socket", sock},
	})
	c := &Client{Path: sock, Timeout: 2 * time.Second}
	ctx := context.Background()
	// The master opens its control socket in a thread of its own, after the
	// workers are forked (and reopens it after each fork).
	var (
		cfg Config
		err error
	)
	require.Eventually(t, func() bool {
		cfg, err = c.ShowConfig(ctx)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	require.InDelta(t, 3, *cfg.Timeout, 0)
	require.Equal(t, 2, *cfg.Workers)
	require.Equal(t, "sync", cfg.WorkerClass)
	require.Equal(t, g.Pidfile, cfg.Pidfile)
	require.Equal(t, sock, cfg.ControlSocket)

	ws, err := c.ShowWorkers(ctx)
	require.NoError(t, err)
	pids := []int{}
	for _, w := range ws {
		pids = append(pids, w.PID)
		require.NotNil(t, w.LastHeartbeat)
		require.Less(t, *w.LastHeartbeat, 3.0)
	}
	require.ElementsMatch(t, g.WorkerPIDs(), pids)

	st, err := c.ShowStats(ctx)
	require.NoError(t, err)
	require.Equal(t, g.MasterPID(), st.PID)
	require.Equal(t, 2, st.WorkersTarget)
}
