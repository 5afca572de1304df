package follower

import (
	"bytes"
	"context"
)

// counters are the follower's running totals. They are plain integers because
// only the polling goroutine (under Follower.mu) touches them; the follower
// copies them into atomics once per read block so that Stats stays cheap and
// the per-line path does no atomic writes.
type counters struct {
	lines, bytes, discarded, oversized, readErrors, missed uint64
	rotations                                              [NumRotationReasons]uint64
}

// utf8BOM is stripped from the first line of a file read from offset 0.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// splitter cuts a byte stream into lines. It keeps a partial line between
// writes (never emitting it as two lines), bounds that partial line to max
// bytes, and drops NUL runs at the start of a line, which is what a sparse
// file left by a non-O_APPEND writer after copytruncate looks like.
//
// The rules, applied to every line (the bytes before a '\n', or the
// unterminated rest of the input at flush):
//  1. leading NUL bytes are discarded (counted);
//  2. a line longer than max is cut to its first max bytes; the rest is
//     discarded (counted) and the line is counted as oversized;
//  3. a UTF-8 BOM is stripped from the first line when the stream starts at
//     file offset 0;
//  4. one trailing '\r' is stripped;
//  5. a line that is empty after these steps and had NULs removed in step 1
//     is dropped (it was padding, not a line); other empty lines are emitted.
//
// A line is emitted as soon as it is known: on its '\n' or, for an oversized
// line, as soon as more than max bytes of it have arrived. The slice passed to
// the handler aliases either the caller's block or the partial buffer.
type splitter struct {
	h   Handler
	max int
	c   *counters

	buf     []byte // pending partial line, len(buf) <= max
	discard bool   // dropping bytes up to the next '\n' (oversized tail, or the fragment before a mid-line start offset)
	skipped bool   // NULs were dropped at the start of the current line
	first   bool   // the current line starts at file offset 0 (BOM candidate)
}

// reset forgets any partial line. atStart says the next byte is at file
// offset 0.
func (s *splitter) reset(atStart bool) {
	s.buf = s.buf[:0]
	s.discard = false
	s.skipped = false
	s.first = atStart
}

// write feeds the next block of the stream. Once ctx is done no more lines
// are emitted: the follower is shutting down.
func (s *splitter) write(ctx context.Context, p []byte) {
	for len(p) > 0 {
		if s.discard {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				s.c.discarded += uint64(len(p))
				return
			}
			s.c.discarded += uint64(i)
			s.discard = false
			p = p[i+1:]
			continue
		}
		if len(s.buf) == 0 && p[0] == 0 {
			n := 1
			for n < len(p) && p[n] == 0 {
				n++
			}
			s.c.discarded += uint64(n)
			s.skipped = true
			p = p[n:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.hold(ctx, p)
			return
		}
		line := p[:i]
		p = p[i+1:]
		if len(s.buf) > 0 {
			if room := s.max - len(s.buf); len(line) > room {
				s.c.discarded += uint64(len(line) - room)
				s.c.oversized++
				line = line[:room]
			}
			s.appendBuf(line)
			s.emit(ctx, s.buf)
			s.buf = s.buf[:0]
			continue
		}
		if len(line) > s.max {
			s.c.discarded += uint64(len(line) - s.max)
			s.c.oversized++
			line = line[:s.max]
		}
		s.emit(ctx, line)
	}
}

// hold keeps p (which has no '\n') as part of the pending line. When the
// pending line would exceed max it is cut and emitted now, and the rest of
// the line is discarded as it arrives, so memory stays bounded by max.
func (s *splitter) hold(ctx context.Context, p []byte) {
	room := s.max - len(s.buf)
	if len(p) <= room {
		s.appendBuf(p)
		return
	}
	s.appendBuf(p[:room])
	s.c.discarded += uint64(len(p) - room)
	s.c.oversized++
	s.emit(ctx, s.buf)
	s.buf = s.buf[:0]
	s.discard = true
}

// appendBuf appends to the partial buffer without ever growing its capacity
// beyond max (append's own growth could overshoot).
func (s *splitter) appendBuf(p []byte) {
	if need := len(s.buf) + len(p); need > cap(s.buf) {
		c := max(2*cap(s.buf), need, 512)
		c = min(c, s.max)
		nb := make([]byte, len(s.buf), c)
		copy(nb, s.buf)
		s.buf = nb
	}
	s.buf = append(s.buf, p...)
}

// flush emits the pending partial line, if any, as a complete line. It is
// called when no more bytes can complete it: at the end of a rotated file's
// drain, at truncation, and at the end of a one-shot read.
func (s *splitter) flush(ctx context.Context) {
	if len(s.buf) > 0 {
		s.emit(ctx, s.buf)
		s.buf = s.buf[:0]
	}
	s.discard = false
	s.skipped = false
}

func (s *splitter) emit(ctx context.Context, line []byte) {
	if s.first {
		s.first = false
		line = bytes.TrimPrefix(line, utf8BOM)
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 && s.skipped {
		s.skipped = false
		return
	}
	s.skipped = false
	if ctx.Err() != nil {
		return
	}
	s.c.lines++
	s.h(line)
}
