package containerlog

import "github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"

// Joiner joins the partial entries of each stream into whole lines,
// bounded: a line longer than Max is cut at Max bytes, the rest of it is
// discarded, and both are counted. Streams are joined apart, since a
// runtime interleaves stdout and stderr entry by entry.
type Joiner struct {
	// Max bounds a joined line in bytes; it must be > 0.
	Max int
	// Emit receives each whole line; the slice is only valid during the
	// call.
	Emit func(stream linesource.Stream, line []byte)

	pending [3]pendingLine
	// Oversized counts lines cut at Max; Discarded the bytes cut off.
	Oversized, Discarded uint64
}

type pendingLine struct {
	buf []byte
	cut bool // this line already exceeded Max
}

// Add takes one decoded entry.
func (j *Joiner) Add(e Entry) {
	p := &j.pending[streamIndex(e.Stream)]
	text := e.Text
	if room := j.Max - len(p.buf); len(text) > room {
		if !p.cut {
			p.cut = true
			j.Oversized++
		}
		j.Discarded += uint64(len(text) - room)
		text = text[:room]
	}
	if !e.Partial && len(p.buf) == 0 {
		// The common case: a whole line in one entry, passed without a
		// copy.
		p.cut = false
		j.Emit(e.Stream, text)
		return
	}
	p.buf = append(p.buf, text...)
	if e.Partial {
		return
	}
	j.Emit(e.Stream, p.buf)
	j.reset(p)
}

// Flush emits what every stream holds of a line whose end never came (the
// file ended with a partial entry, say, before the runtime went away).
func (j *Joiner) Flush() {
	for i := range j.pending {
		if p := &j.pending[i]; len(p.buf) > 0 || p.cut {
			j.Emit(linesource.Stream(i), p.buf)
			j.reset(p)
		}
	}
}

// Pending is how many bytes are held for lines not yet ended.
func (j *Joiner) Pending() int {
	n := 0
	for i := range j.pending {
		n += len(j.pending[i].buf)
	}
	return n
}

func (j *Joiner) reset(p *pendingLine) {
	p.cut = false
	p.buf = p.buf[:0] // at most Max bytes: kept for the next line
}

func streamIndex(s linesource.Stream) int {
	if int(s) < 3 {
		return int(s)
	}
	return 0
}
