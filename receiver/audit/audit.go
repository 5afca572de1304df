// Package audit owns the remediation receiver's record of what it decided
// and did: one JSON line per decision (policy.Decision, including the
// verification that follows an action) in an append-only file, fsync'd
// before Record returns, and the same decision as an event in the timeline
// (source "receiver"), so incidents and the dashboard can show it.
//
// The file is opened with O_APPEND and never rewritten or truncated by the
// receiver. A line is written with one write call; if a crash left a
// partial last line, Open ends it with a newline so the next record starts
// a line of its own and the partial one stays as evidence. Rotate the file
// with logrotate's copytruncate or call Reopen after moving it.
//
// Deduplicated decisions are written to the file but not to the timeline:
// the timeline is bounded, and Alertmanager retrying one notification
// hundreds of times must not evict the evidence incidents need.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
)

// Writer appends decisions to the audit file and the timeline. Its methods
// are safe for concurrent use.
type Writer struct {
	path string
	tl   *timeline.Timeline

	mu  sync.Mutex
	f   *os.File
	buf []byte
}

// Open opens (creating it with mode 0600) the audit file at path for
// appending. tl may be nil: then only the file is written.
func Open(path string, tl *timeline.Timeline) (*Writer, error) {
	w := &Writer{path: path, tl: tl}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := endLine(w.path, f); err != nil {
		f.Close()
		return fmt.Errorf("audit: %w", err)
	}
	w.f = f
	return nil
}

// endLine appends a newline to f when the file at path does not end with
// one (a crash in the middle of a write).
func endLine(path string, f *os.File) error {
	r, err := os.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil || size == 0 {
		return err
	}
	last := make([]byte, 1)
	if _, err := r.ReadAt(last, size-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		return err
	}
	return f.Sync()
}

// Record writes d as one line, fsyncs the file, and then appends d to the
// timeline. It returns an error (and appends nothing to the timeline) when
// the line could not be made durable.
func (w *Writer) Record(d policy.Decision) error {
	line, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	w.mu.Lock()
	if w.f == nil {
		w.mu.Unlock()
		return errors.New("audit: record after close")
	}
	w.buf = append(append(w.buf[:0], line...), '\n')
	_, err = w.f.Write(w.buf)
	if err == nil {
		err = w.f.Sync()
	}
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("audit: %s: %w", w.path, err)
	}
	if w.tl != nil && d.Outcome != intent.OutcomeDeduplicated {
		w.tl.Append(Event(d))
	}
	return nil
}

// Reopen closes the file and opens path again (after a rotation moved it).
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		w.f = nil
	}
	return w.open()
}

// Close closes the file; every recorded line is already on disk.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Event is d as a timeline event: Kind by outcome, Cause the outcome,
// Detail the reason, and the action, rule, refusal, counts and ids as
// Attrs.
func Event(d policy.Decision) timeline.Event {
	attrs := map[string]string{
		"action": string(d.Action),
		"rule":   strconv.Itoa(d.Rule),
	}
	if d.Refusal != "" {
		attrs["refusal"] = string(d.Refusal)
	}
	if d.Workers >= 0 {
		attrs["workers"] = strconv.Itoa(d.Workers)
	}
	if d.Target > 0 {
		attrs["target"] = strconv.Itoa(d.Target)
	}
	if d.Reconcile {
		attrs["reconcile"] = "true"
	}
	if d.ID != "" {
		attrs["id"] = d.ID
	}
	if d.Verifies != "" {
		attrs["verifies"] = d.Verifies
	}
	detail := d.Reason
	if d.Evidence != "" {
		detail += ": " + d.Evidence
	}
	return timeline.Event{
		Time:   d.At,
		App:    d.App,
		Source: timeline.SourceReceiver,
		Kind:   kind(d.Outcome),
		Cause:  string(d.Outcome),
		Detail: detail,
		Attrs:  attrs,
	}
}

func kind(o intent.Outcome) string {
	switch o {
	case intent.OutcomeActed:
		return timeline.KindRemediationActed
	case intent.OutcomeVerified:
		return timeline.KindRemediationVerified
	case intent.OutcomeVerificationFailed, intent.OutcomeFailed:
		return timeline.KindRemediationFailed
	}
	return timeline.KindRemediationDeclined
}
