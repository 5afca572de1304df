// Package linesource owns the seam between where an app's log lines come
// from and the parsers that read them. A Source delivers lines, each tagged
// with the stream it came on when the carrier knows it (a container
// runtime's log does; a plain file does not), and reports its own health in
// the follower's Stats. The plain-file Source is the first implementation;
// container logs, the journal and stdin are others.
package linesource

import (
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
)

// Stream is the output stream a line was written to, when known.
type Stream uint8

// Streams.
const (
	StreamUnknown Stream = iota
	StreamStdout
	StreamStderr
)

// String returns "stdout", "stderr" or "unknown".
func (s Stream) String() string {
	switch s {
	case StreamStdout:
		return "stdout"
	case StreamStderr:
		return "stderr"
	}
	return "unknown"
}

// Kind names what carries the lines; it is the value of the source label
// of reflex_log_source_info, so the set is closed.
type Kind string

// Kinds of source.
const (
	KindFile    Kind = "file"
	KindJournal Kind = "journal"
	KindDocker  Kind = "docker"
	KindCRI     Kind = "cri"
	KindStdin   Kind = "stdin"
)

// Kinds lists every Kind, in a fixed order.
func Kinds() []Kind { return []Kind{KindFile, KindJournal, KindDocker, KindCRI, KindStdin} }

// Handler receives each line synchronously on the goroutine that calls
// Poll. The line has no trailing newline and is only valid during the call.
type Handler func(stream Stream, line []byte)

// Source delivers one log's lines to the Handler it was built with.
// Poll, Stats and Close must be safe to call from different goroutines;
// Poll and Close are called from one goroutine (the app's pipeline).
type Source interface {
	// Kind says what carries the lines.
	Kind() Kind
	// Poll reads what is new and passes every complete line to the
	// Handler before it returns; it never blocks waiting for more.
	Poll()
	// Stats reports the source's health. Sources that are not files fill
	// the fields that apply to them (Lines, Bytes, ReadErrors, Open,
	// OversizedLines, DiscardedBytes, MissedBytes) and leave the rest 0.
	Stats() follower.Stats
	// Close releases what the source holds; Poll must not be called after.
	Close() error
}

// File is a Source that follows one plain file with the follower.
type File struct {
	f *follower.Follower
}

// NewFile follows opts.Path; every line reaches h with StreamUnknown, since
// a file does not say which stream a line was written to.
func NewFile(opts follower.Options, h Handler) (*File, error) {
	f, err := follower.New(opts, func(line []byte) { h(StreamUnknown, line) })
	if err != nil {
		return nil, err
	}
	return &File{f: f}, nil
}

// Kind implements Source.
func (*File) Kind() Kind { return KindFile }

// Poll implements Source.
func (s *File) Poll() { s.f.Poll() }

// Stats implements Source.
func (s *File) Stats() follower.Stats { return s.f.Stats() }

// Close implements Source.
func (s *File) Close() error { return s.f.Close() }
