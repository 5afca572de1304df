package journal

import (
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
)

// Source is a Reader seen as a linesource.Source. The journal does not
// keep which stream a line was written to (systemd gives a service one
// stream socket for both stdout and stderr), so every line is
// StreamUnknown and the pipeline tells the logs apart by shape.
type Source struct {
	r *Reader
}

// NewSource starts a Reader whose lines go to h.
func NewSource(opts Options, h linesource.Handler) (*Source, error) {
	r, err := New(opts, func(line []byte) { h(linesource.StreamUnknown, line) })
	if err != nil {
		return nil, err
	}
	return &Source{r: r}, nil
}

// Kind implements linesource.Source.
func (*Source) Kind() linesource.Kind { return linesource.KindJournal }

// Poll implements linesource.Source.
func (s *Source) Poll() { s.r.Poll() }

// Close implements linesource.Source.
func (s *Source) Close() error { return s.r.Close() }

// Stats implements linesource.Source: read errors are the entries that
// could not be decoded and the journalctl children that exited or could
// not start; the source is up while a child runs and may read the journal.
func (s *Source) Stats() follower.Stats {
	st := s.r.Stats()
	return follower.Stats{
		Lines:          st.Lines,
		Bytes:          st.Bytes,
		ReadErrors:     st.DecodeErrors + st.StartErrors + st.Restarts,
		OversizedLines: st.OversizedLines,
		Open:           st.Running && !st.PermissionDenied,
		LastError:      st.LastError,
	}
}

// Journal returns the reader's own counters.
func (s *Source) Journal() Stats { return s.r.Stats() }
