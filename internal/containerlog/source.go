package containerlog

import (
	"sync/atomic"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
)

// rawOverhead is what a runtime's line adds to the text it carries: the
// time, stream and tag of CRI, the keys and time of json-file.
const rawOverhead = 256

// Source follows a runtime's log file with the follower (the runtimes
// rotate by rename at a size limit, which the follower handles), decodes
// each line and joins split lines. It implements linesource.Source.
type Source struct {
	format Format
	f      *follower.Follower
	join   Joiner
	h      linesource.Handler
	text   []byte // json-file unescape buffer, reused

	// Counters of the poll goroutine, published for Stats.
	lines, decodeFailures uint64
	pub                   struct{ lines, oversized, discarded, decodeFailures atomic.Uint64 }
}

// NewSource follows opts.Path in format; opts.MaxLineBytes (default
// follower.DefaultMaxLineBytes) bounds a joined line. The raw lines of the
// file may be longer than the text they carry (json-file escapes a
// control byte as six), so the follower's own bound is raised to match.
func NewSource(format Format, opts follower.Options, h linesource.Handler) (*Source, error) {
	maxLine := opts.MaxLineBytes
	if maxLine <= 0 {
		maxLine = follower.DefaultMaxLineBytes
	}
	s := &Source{format: format, h: h}
	s.join = Joiner{Max: maxLine, Emit: s.emit}
	opts.MaxLineBytes = maxLine + rawOverhead
	if format == FormatDocker {
		// Docker splits at 16 KiB of text, so one raw line carries at most
		// 16 KiB escaped: but a bound from the text limit is safe for any
		// split size.
		opts.MaxLineBytes = 6*maxLine + rawOverhead
	}
	f, err := follower.New(opts, s.raw)
	if err != nil {
		return nil, err
	}
	s.f = f
	return s, nil
}

func (s *Source) raw(line []byte) {
	var e Entry
	var err error
	if s.format == FormatCRI {
		e, err = DecodeCRI(line)
	} else {
		e, err = DecodeDocker(line, s.text)
		if err == nil {
			s.text = e.Text[:0]
		}
	}
	if err != nil {
		s.decodeFailures++
		return
	}
	s.join.Add(e)
}

func (s *Source) emit(stream linesource.Stream, line []byte) {
	s.lines++
	s.h(stream, line)
}

// Kind implements linesource.Source.
func (s *Source) Kind() linesource.Kind { return s.format.Kind() }

// Poll implements linesource.Source.
func (s *Source) Poll() {
	s.f.Poll()
	s.pub.lines.Store(s.lines)
	s.pub.oversized.Store(s.join.Oversized)
	s.pub.discarded.Store(s.join.Discarded)
	s.pub.decodeFailures.Store(s.decodeFailures)
}

// Stats implements linesource.Source: the follower's view of the file,
// with Lines counting joined lines, and the lines cut by the join bound
// added to the follower's own oversized lines.
func (s *Source) Stats() follower.Stats {
	st := s.f.Stats()
	st.Lines = s.pub.lines.Load()
	st.OversizedLines += s.pub.oversized.Load()
	st.DiscardedBytes += s.pub.discarded.Load()
	return st
}

// DecodeFailures counts lines of the file that were not in its format;
// they are skipped.
func (s *Source) DecodeFailures() uint64 { return s.pub.decodeFailures.Load() }

// Close implements linesource.Source.
func (s *Source) Close() error { return s.f.Close() }
