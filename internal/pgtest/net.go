package pgtest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Blackhole is a TCP listener on 127.0.0.1 that accepts every connection and
// never answers: the "hung server" of reliability scenario B2. It drains
// what clients send and notices when they close, so a test can assert that
// no connection is left open.
type Blackhole struct {
	Addr string

	l        net.Listener
	accepted atomic.Int64
	open     atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// NewBlackhole starts a Blackhole closed in t.Cleanup.
func NewBlackhole(t testing.TB) *Blackhole {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: blackhole: %v", err)
	}
	b := &Blackhole{Addr: l.Addr().String(), l: l, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(b.Close)
	return b
}

// Port returns the listening port.
func (b *Blackhole) Port() int { return b.l.Addr().(*net.TCPAddr).Port }

func (b *Blackhole) serve() {
	defer b.wg.Done()
	for {
		c, err := b.l.Accept()
		if err != nil {
			return
		}
		b.accepted.Add(1)
		b.open.Add(1)
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			_, _ = io.Copy(io.Discard, c) // returns when the client closes
			b.open.Add(-1)
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// Accepted returns how many connections were accepted so far.
func (b *Blackhole) Accepted() int { return int(b.accepted.Load()) }

// Open returns how many accepted connections the client has not closed.
func (b *Blackhole) Open() int { return int(b.open.Load()) }

// Close stops listening and closes every connection.
func (b *Blackhole) Close() {
	_ = b.l.Close()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}
