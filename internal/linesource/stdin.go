package linesource

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
)

// DefaultMaxQueueBytes bounds the lines a Reader holds between two polls.
const DefaultMaxQueueBytes = 8 << 20

// ReaderOptions configures a Reader. Zero values mean the defaults.
type ReaderOptions struct {
	// MaxLineBytes bounds a line; default follower.DefaultMaxLineBytes.
	// Longer lines are cut, the rest discarded, and both counted.
	MaxLineBytes int
	// MaxQueueBytes bounds what is held until the next Poll; default
	// DefaultMaxQueueBytes. When it is full, lines are dropped and
	// counted as missed rather than stopping the reads: a blocked pipe
	// would block Gunicorn's logging, and with it its workers.
	MaxQueueBytes int
	// Tee, when set, receives every byte read, as read, so that what a
	// supervisor piped through the exporter still reaches its log.
	Tee io.Writer
	// Logger receives the end of the input; nil discards.
	Logger *slog.Logger
}

// Reader reads lines from a stream that cannot be reopened or sought
// (stdin): Run reads it on its own goroutine into a bounded queue, and
// the Source it gives drains that queue on Poll.
type Reader struct {
	r    io.Reader
	opts ReaderOptions
	log  *slog.Logger

	mu     sync.Mutex
	queue  [][]byte
	queued int

	lines, bytes, oversized, discarded, missed, readErrors atomic.Uint64
	open                                                   atomic.Bool
	lastErr                                                atomic.Value // string
}

// NewReader returns a Reader of r; call Run to read it.
func NewReader(r io.Reader, opts ReaderOptions) *Reader {
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = follower.DefaultMaxLineBytes
	}
	if opts.MaxQueueBytes <= 0 {
		opts.MaxQueueBytes = DefaultMaxQueueBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rd := &Reader{r: r, opts: opts, log: log}
	rd.open.Store(true)
	return rd
}

// Run reads until the end of the input or a read error, then returns; the
// lines read stay queued for the next Poll. A last line without a newline
// counts as a line.
func (rd *Reader) Run() {
	br := bufio.NewReaderSize(rd.r, 64<<10)
	var line []byte
	cut := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			rd.bytes.Add(uint64(len(chunk)))
			if rd.opts.Tee != nil {
				_, _ = rd.opts.Tee.Write(chunk)
			}
		}
		full := len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		if full {
			chunk = chunk[:len(chunk)-1]
		}
		if room := rd.opts.MaxLineBytes - len(line); len(chunk) > room {
			if !cut {
				cut = true
				rd.oversized.Add(1)
			}
			rd.discarded.Add(uint64(len(chunk) - room))
			chunk = chunk[:room]
		}
		line = append(line, chunk...)
		if full || (err != nil && !errors.Is(err, bufio.ErrBufferFull) && (len(line) > 0 || cut)) {
			rd.enqueue(line)
			line, cut = nil, false
		}
		switch {
		case err == nil || errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			rd.log.Info("the input ended: no more lines will come (the piped process exited or closed its output)")
		default:
			rd.readErrors.Add(1)
			rd.lastErr.Store(err.Error())
			rd.log.Error("cannot read the input; no more lines will come", "err", err)
		}
		rd.open.Store(false)
		return
	}
}

func (rd *Reader) enqueue(line []byte) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.queued+len(line) > rd.opts.MaxQueueBytes {
		rd.missed.Add(uint64(len(line) + 1))
		return
	}
	rd.queue = append(rd.queue, line)
	rd.queued += len(line)
}

// Source returns the Source that passes the lines to h. Only one Source
// should be in use at a time; lines read while none is polled wait in the
// queue (bounded).
func (rd *Reader) Source(h Handler) Source { return &readerSource{rd: rd, h: h} }

type readerSource struct {
	rd *Reader
	h  Handler
}

func (s *readerSource) Kind() Kind { return KindStdin }

func (s *readerSource) Poll() {
	rd := s.rd
	rd.mu.Lock()
	q := rd.queue
	rd.queue, rd.queued = nil, 0
	rd.mu.Unlock()
	for _, l := range q {
		rd.lines.Add(1)
		s.h(StreamUnknown, l)
	}
}

func (s *readerSource) Stats() follower.Stats {
	rd := s.rd
	st := follower.Stats{
		Lines: rd.lines.Load(), Bytes: rd.bytes.Load(), ReadErrors: rd.readErrors.Load(),
		OversizedLines: rd.oversized.Load(), DiscardedBytes: rd.discarded.Load(), MissedBytes: rd.missed.Load(),
		Open: rd.open.Load(),
	}
	if e, ok := rd.lastErr.Load().(string); ok {
		st.LastError = e
	}
	return st
}

// Close does nothing: the input is the process's and cannot be reopened,
// so a pipeline restarted by a reload takes the same Reader again.
func (s *readerSource) Close() error { return nil }
