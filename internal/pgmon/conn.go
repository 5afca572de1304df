package pgmon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Operation names used in errors and logs.
const (
	opConnect = "connect"
	opWait    = "wait"
	opScrape  = "scrape"
	opLink    = "link"
	opPools   = "show pools"
)

// cleanupGrace bounds how long pgx may keep a dead connection's cleanup
// alive. When a query is interrupted by the deadline, pgconn closes the
// connection asynchronously: it dials the server again to send a cancel
// request and then drains the old socket, with a 15 s deadline of its own.
// Against a hung server that would keep a goroutine and two sockets for
// 15 s per interrupted scrape; boundedConn clamps those deadlines to this.
const cleanupGrace = 2 * time.Second

// boundedConn clamps every non-zero deadline to at most cleanupGrace from
// now. pgx only sets future deadlines on the cleanup path (normal
// cancellation sets a deadline of "now"), so normal operation is unchanged.
type boundedConn struct{ net.Conn }

func clamp(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	if limit := time.Now().Add(cleanupGrace); t.After(limit) {
		return limit
	}
	return t
}

func (c boundedConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(clamp(t)) }
func (c boundedConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(clamp(t)) }
func (c boundedConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(clamp(t)) }

// holder owns the single connection of a target: it connects lazily under
// the caller's deadline, serialises its use (one query at a time per
// target, waiting callers give up at their own deadline), drops the
// connection when it breaks, and retries once on a fresh connection when
// a reused one turns out to be dead.
type holder struct {
	name    string
	kind    string // "postgres" or "pgbouncer", for logs
	cfg     *pgx.ConnConfig
	red     redactor
	logger  *slog.Logger
	timeout time.Duration

	// onConnect runs on every new connection before it is used (the
	// target's session query). Called with the semaphore held.
	onConnect func(ctx context.Context, conn *pgx.Conn) error

	sem      chan struct{} // capacity 1: the right to use conn
	conn     *pgx.Conn     // guarded by sem
	closed   bool          // guarded by sem
	lastUp   int8          // guarded by sem: -1 unknown, 0 down, 1 up
	connects atomic.Uint64

	// testHookBeforeQuery, when set, runs before each attempt's queries.
	testHookBeforeQuery func(attempt int, conn *pgx.Conn)
}

func newHolder(name, kind string, cfg *pgx.ConnConfig, red redactor, logger *slog.Logger, timeout time.Duration) *holder {
	return &holder{name: name, kind: kind, cfg: cfg, red: red, logger: logger, timeout: timeout,
		sem: make(chan struct{}, 1), lastUp: -1}
}

// bound returns ctx limited to the holder's timeout (a caller without a
// deadline still gets one).
func (h *holder) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.timeout)
}

func (h *holder) fail(op string, kind error) *Error {
	return &Error{Target: h.name, Op: op, Kind: kind}
}

// do runs fn on the connection, connecting first when there is none. When
// fn fails on a connection reused from an earlier call and the connection
// is now closed (the backend was terminated, the server restarted, an idle
// timeout fired), it reconnects and runs fn once more if the deadline has
// not passed. Any other failure is returned; a broken connection is dropped
// so the next call reconnects.
func (h *holder) do(ctx context.Context, op string, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return h.fail(opWait, ErrTimeout)
	}
	defer func() { <-h.sem }()
	if h.closed {
		return h.fail(op, ErrClosed)
	}
	err := h.run(ctx, op, fn)
	h.observe(err)
	if err != nil {
		return err
	}
	return nil
}

// run is do's body; called with the semaphore held.
func (h *holder) run(ctx context.Context, op string, fn func(ctx context.Context, conn *pgx.Conn) error) *Error {
	for attempt := 0; ; attempt++ {
		reused := h.conn != nil
		if h.conn == nil {
			if err := h.connect(ctx); err != nil {
				return err
			}
		}
		if h.testHookBeforeQuery != nil {
			h.testHookBeforeQuery(attempt, h.conn)
		}
		err := fn(ctx, h.conn)
		if err == nil {
			return nil
		}
		var classified *Error
		if errors.As(err, &classified) { // already classified by fn
			return classified
		}
		closed := h.conn.IsClosed()
		e := h.red.newError(h.name, op, err, closed)
		if closed {
			h.drop(ctx)
			if reused && attempt == 0 && ctx.Err() == nil && errors.Is(e.Kind, ErrConnectionLost) {
				h.logger.Debug("connection lost, reconnecting", "err", e)
				continue
			}
		}
		return e
	}
}

// connect opens a new connection; called with the semaphore held.
func (h *holder) connect(ctx context.Context) *Error {
	cfg := h.cfg.Copy()
	var established atomic.Bool
	dialer := &net.Dialer{KeepAlive: 15 * time.Second}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if established.Load() {
			// pgconn's cancel request after an interrupted query.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, cleanupGrace)
			defer cancel()
		}
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if established.Load() {
			_ = c.SetDeadline(time.Now().Add(cleanupGrace))
		}
		return boundedConn{c}, nil
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return h.red.newError(h.name, opConnect, err, true)
	}
	established.Store(true)
	if h.onConnect != nil {
		if err := h.onConnect(ctx, conn); err != nil {
			e := h.red.newError(h.name, opConnect, err, conn.IsClosed())
			if errors.Is(e.Kind, ErrQuery) {
				e.Kind = ErrUnreachable
			}
			_ = conn.Close(ctx)
			return e
		}
	}
	h.conn = conn
	h.connects.Add(1)
	return nil
}

// drop closes the connection; called with the semaphore held. An already
// closed connection returns at once; an open one is closed under ctx (an
// expired ctx closes the socket without waiting).
func (h *holder) drop(ctx context.Context) {
	if h.conn == nil {
		return
	}
	_ = h.conn.Close(ctx)
	h.conn = nil
}

// observe logs up/down transitions once, not on every scrape; called with
// the semaphore held.
func (h *holder) observe(err *Error) {
	up := err == nil || errors.Is(err.Kind, ErrAmbiguous) || errors.Is(err.Kind, ErrInvalid)
	switch {
	case up && h.lastUp == 0:
		h.logger.Info(h.kind + " target reachable again")
	case !up && h.lastUp != 0:
		h.logger.Warn(h.kind+" target down; reporting up=0 until it answers", "err", err)
	case !up:
		h.logger.Debug(h.kind+" target still down", "err", err)
	}
	if up {
		h.lastUp = 1
	} else {
		h.lastUp = 0
	}
}

// close waits for an in-flight call (bounded by its deadline), closes the
// connection and refuses further calls.
func (h *holder) close() {
	h.sem <- struct{}{}
	defer func() { <-h.sem }()
	h.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	h.drop(ctx)
}
