// Package gunicornctl is a read-only client for the control socket Gunicorn
// 25.1 and later opens in its master (gunicorn/ctl: the socket `gunicornc`
// talks to; by default $XDG_RUNTIME_DIR/gunicorn.ctl, else
// $HOME/.gunicorn/gunicorn.ctl, mode 0600).
//
// The protocol (gunicorn/ctl/protocol.py) is one JSON object per message,
// preceded by its length as a 4-byte big-endian integer, over a Unix stream
// socket: the client sends {"id": N, "command": "show", "args": ["config"]}
// and the master answers {"id": N, "status": "ok", "data": {...}} or
// {"id": N, "status": "error", "error": "..."}.
//
// Only the three `show` commands that change nothing are sent: `show
// config`, `show workers` and `show stats`. Nothing here is required:
// callers use the answers as a more exact source beside /proc and fall back
// when the socket is absent, not readable or not a control socket.
package gunicornctl

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// MaxReply bounds the size of one reply. Gunicorn allows 16 MiB; the
// replies read here are a few KiB, so a larger length prefix means the peer
// is not a control socket (an HTTP server answering "HTTP/1.1 400" gives a
// length of about 1.2 GB).
const MaxReply = 1 << 20

// DefaultTimeout bounds one command (connect, send, read) when the context
// has no earlier deadline.
const DefaultTimeout = time.Second

// ErrNotControlSocket says the peer answered something that is not the
// control protocol.
var ErrNotControlSocket = errors.New("not a Gunicorn control socket")

// CommandError is a {"status": "error"} reply.
type CommandError struct {
	Command, Msg string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("gunicorn control socket: %s: %s", e.Command, e.Msg)
}

// Client talks to one control socket. The zero value is not usable: set
// Path.
type Client struct {
	// Path is the socket to connect to, as this process sees it (for a
	// master in another mount namespace, /proc/<pid>/root/<path>).
	Path string
	// Timeout bounds each command; 0 means DefaultTimeout.
	Timeout time.Duration

	id atomic.Int64
}

// Config is the answer to `show config` (gunicorn/ctl/handlers.py
// show_config): the effective settings of the running master. Settings the
// master did not report are nil.
type Config struct {
	Timeout         *float64 // --timeout, seconds; 0 disables timeouts
	GracefulTimeout *float64
	Workers         *int
	Threads         *int
	// WorkerClass is the short name for Gunicorn's own classes ("sync",
	// "gthread", "gevent", ...) and the dotted class path otherwise
	// ("uvicorn.workers.UvicornWorker"); "" when not reported.
	WorkerClass   string
	Pidfile       string
	ProcName      string
	Bind          []string
	MaxRequests   *int
	ControlSocket string
	// Raw is every setting as reported.
	Raw map[string]json.RawMessage
}

// Worker is one entry of `show workers`.
type Worker struct {
	PID     int  `json:"pid"`
	Age     int  `json:"age"` // spawn order, not a duration
	Booted  bool `json:"booted"`
	Aborted bool `json:"aborted"`
	// LastHeartbeat is the seconds since the worker last notified, as the
	// master computes it; nil when the master could not read it.
	LastHeartbeat *float64 `json:"last_heartbeat"`
}

// Stats is the answer to `show stats`.
type Stats struct {
	Uptime         *float64 `json:"uptime"`
	PID            int      `json:"pid"`
	WorkersCurrent int      `json:"workers_current"`
	// WorkersTarget is the number of workers the master is keeping
	// (--workers, changed by TTIN/TTOU and `worker add/remove`).
	WorkersTarget  int `json:"workers_target"`
	WorkersSpawned int `json:"workers_spawned"`
	WorkersKilled  int `json:"workers_killed"`
	Reloads        int `json:"reloads"`
}

// ShowConfig sends `show config`.
func (c *Client) ShowConfig(ctx context.Context) (Config, error) {
	var raw map[string]json.RawMessage
	if err := c.show(ctx, "config", &raw); err != nil {
		return Config{}, err
	}
	return decodeConfig(raw), nil
}

// ShowWorkers sends `show workers`.
func (c *Client) ShowWorkers(ctx context.Context) ([]Worker, error) {
	var data struct {
		Workers []Worker `json:"workers"`
	}
	if err := c.show(ctx, "workers", &data); err != nil {
		return nil, err
	}
	return data.Workers, nil
}

// ShowStats sends `show stats`.
func (c *Client) ShowStats(ctx context.Context) (Stats, error) {
	var s Stats
	err := c.show(ctx, "stats", &s)
	return s, err
}

type request struct {
	ID      int64    `json:"id"`
	Command string   `json:"command"`
	Args    []string `json:"args"`
}

type reply struct {
	ID     *int64          `json:"id"`
	Status string          `json:"status"`
	Data   json.RawMessage `json:"data"`
	Error  string          `json:"error"`
}

// show runs `show <target>` on a connection of its own and decodes the
// reply's data into out.
func (c *Client) show(ctx context.Context, target string, out any) error {
	cmd := "show " + target
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Path)
	if err != nil {
		return fmt.Errorf("gunicorn control socket %s: %w", c.Path, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A cancelled context also unblocks a read in progress.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	id := c.id.Add(1)
	payload, err := json.Marshal(request{ID: id, Command: cmd, Args: []string{}})
	if err != nil {
		return err
	}
	msg := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(payload)), uint32(len(payload)))
	if _, err := conn.Write(append(msg, payload...)); err != nil {
		return fmt.Errorf("gunicorn control socket %s: %s: %w", c.Path, cmd, err)
	}
	body, err := readMessage(conn)
	if err != nil {
		return fmt.Errorf("gunicorn control socket %s: %s: %w", c.Path, cmd, err)
	}
	var r reply
	if err := json.Unmarshal(body, &r); err != nil || r.ID == nil || r.Status == "" {
		return fmt.Errorf("gunicorn control socket %s: %s: %w", c.Path, cmd, ErrNotControlSocket)
	}
	if *r.ID != id {
		return fmt.Errorf("gunicorn control socket %s: %s: reply to request %d, sent %d: %w", c.Path, cmd, *r.ID, id, ErrNotControlSocket)
	}
	if r.Status != "ok" {
		return &CommandError{Command: cmd, Msg: r.Error}
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		return fmt.Errorf("gunicorn control socket %s: %s: unexpected data: %w", c.Path, cmd, err)
	}
	return nil
}

// readMessage reads one length-prefixed message.
func readMessage(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("closed before a reply: %w", ErrNotControlSocket)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxReply {
		return nil, fmt.Errorf("reply length %d over %d bytes: %w", n, MaxReply, ErrNotControlSocket)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("reply cut short: %w", ErrNotControlSocket)
		}
		return nil, err
	}
	return body, nil
}

// decodeConfig picks the settings callers use out of `show config`; a
// value of an unexpected type is left out rather than guessed.
func decodeConfig(raw map[string]json.RawMessage) Config {
	c := Config{Raw: raw}
	num := func(k string) *float64 {
		var f float64
		if v, ok := raw[k]; ok && json.Unmarshal(v, &f) == nil && !math.IsNaN(f) && f >= 0 {
			return &f
		}
		return nil
	}
	integer := func(k string) *int {
		if f := num(k); f != nil && *f == math.Trunc(*f) && *f < 1<<31 {
			n := int(*f)
			return &n
		}
		return nil
	}
	str := func(k string) string {
		var s string
		if v, ok := raw[k]; ok && json.Unmarshal(v, &s) == nil {
			return s
		}
		return ""
	}
	c.Timeout, c.GracefulTimeout = num("timeout"), num("graceful_timeout")
	c.Workers, c.Threads, c.MaxRequests = integer("workers"), integer("threads"), integer("max_requests")
	c.WorkerClass = workerClassName(str("worker_class"))
	c.Pidfile, c.ProcName, c.ControlSocket = str("pidfile"), str("proc_name"), str("control_socket")
	if v, ok := raw["bind"]; ok {
		var b []string
		if json.Unmarshal(v, &b) == nil {
			c.Bind = b
		}
	}
	return c
}

// gunicornWorkers maps Gunicorn's own worker classes to the names -k takes.
var gunicornWorkers = map[string]string{
	"gunicorn.workers.sync.SyncWorker":          "sync",
	"gunicorn.workers.gthread.ThreadWorker":     "gthread",
	"gunicorn.workers.ggevent.GeventWorker":     "gevent",
	"gunicorn.workers.geventlet.EventletWorker": "eventlet",
	"gunicorn.workers.gtornado.TornadoWorker":   "tornado",
	"gunicorn.workers.gasgi.ASGIWorker":         "asgi",
}

// workerClassName turns show_config's str(cls), "<class
// 'gunicorn.workers.sync.SyncWorker'>", into a -k name.
func workerClassName(s string) string {
	if inner, ok := strings.CutPrefix(s, "<class '"); ok {
		s = strings.TrimSuffix(inner, "'>")
	}
	if short, ok := gunicornWorkers[s]; ok {
		return short
	}
	return s
}
