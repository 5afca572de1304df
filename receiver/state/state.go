// Package state owns the durable copy of the remediation policy's state
// (policy.State: idempotency keys with their expiry, cooldowns, budgets,
// circuits, desired worker counts, paused apps), so that a receiver that
// restarts, even in a crash loop, still deduplicates, cools down and stays
// within its budgets.
//
// The state is one small JSON file, replaced atomically on every Save:
// written to a temporary file in the same directory, fsync'd, renamed over
// the old one, and the directory fsync'd, so a crash leaves either the old
// or the new state, never a mix. A file rather than an embedded database
// because the state is a few kilobytes that is always read and written
// whole, one writer (the engine, under its lock) saves it, and a person can
// read it with cat; the write is one fsync'd file, not a B+tree's pages.
// An advisory lock (flock on a ".lock" file beside it) keeps a second
// receiver from sharing the file.
//
// The file carries a format version and a CRC-32C of the state it holds.
// A file that is empty, truncated, not JSON, of an unknown version or
// whose checksum does not match is corrupt: Open moves it aside (to
// "<path>.corrupt-<unix seconds>", so nothing is lost) and starts from a
// fail-safe state in which every action cools down (policy.State's
// FailSafeSince), never from a clean slate; Corrupt reports it so the
// collector can export it. Only a missing file (the first start, or a
// person deleting it on purpose) starts empty.
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
)

// formatVersion is the version of the file format Save writes.
const formatVersion = 1

// ErrLocked is returned by Open when another process holds the state's
// lock.
var ErrLocked = errors.New("state file is in use by another process")

// ErrCorrupt describes why a state file was found corrupt (Store.CorruptErr).
var ErrCorrupt = errors.New("state file is corrupt")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// file is the JSON envelope on disk.
type file struct {
	Version int             `json:"version"`
	CRC32C  string          `json:"crc32c"`
	Saved   time.Time       `json:"saved"`
	State   json.RawMessage `json:"state"`
}

// Store is the durable state file. Its methods are safe for concurrent
// use, though one writer is the intended use.
type Store struct {
	path string
	lock *os.File

	mu         sync.Mutex
	st         policy.State
	corruptErr error
	movedTo    string
}

// Open locks and reads the state file at path. now is the time a fail-safe
// state starts from when the file is corrupt. It fails when the file
// cannot be read at all (permissions, I/O errors), so the receiver does not
// start with unknown state; a corrupt file is not an error (see the
// package doc).
func Open(path string, now time.Time) (*Store, error) {
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("state %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("state: lock %s: %w", path, err)
	}
	s := &Store{path: path, lock: lock}
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		lock.Close()
		return nil, fmt.Errorf("state: %w", err)
	}
	st, derr := decode(raw)
	if derr == nil {
		s.st = st
		return s, nil
	}
	s.corruptErr = fmt.Errorf("%s: %w: %w", path, ErrCorrupt, derr)
	s.movedTo = fmt.Sprintf("%s.corrupt-%d", path, now.Unix())
	if err := os.Rename(path, s.movedTo); err != nil {
		lock.Close()
		return nil, fmt.Errorf("state: keep the corrupt file: %w", err)
	}
	s.st = policy.State{FailSafeSince: now}
	if err := s.save(s.st, now); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the lock. The state was saved by the last Save.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Load returns a copy of the state as last loaded or saved; the caller may
// change it freely.
func (s *Store) Load() policy.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.st)
}

// Save replaces the state durably (see the package doc) and returns only
// once it is on disk. On an error the previous state is still on disk and
// Load still returns it.
func (s *Store) Save(st policy.State, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return fmt.Errorf("state %s: save after close", s.path)
	}
	if err := s.save(st, now); err != nil {
		return err
	}
	s.st = clone(st)
	return nil
}

// Corrupt reports whether the state file was found corrupt when it was
// opened; CorruptErr says why and where the old file was moved.
func (s *Store) Corrupt() bool { return s.corruptErr != nil }

// CorruptErr is why the file was found corrupt (nil if it was not),
// wrapping ErrCorrupt.
func (s *Store) CorruptErr() error {
	if s.corruptErr == nil {
		return nil
	}
	return fmt.Errorf("%w (moved to %s)", s.corruptErr, s.movedTo)
}

func (s *Store) save(st policy.State, now time.Time) error {
	raw, err := encode(st, now)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := writeAtomic(s.path, raw); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

func encode(st policy.State, now time.Time) ([]byte, error) {
	inner, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	f := file{
		Version: formatVersion,
		CRC32C:  strconv.FormatUint(uint64(crc32.Checksum(inner, castagnoli)), 16),
		Saved:   now.UTC(),
		State:   inner,
	}
	out, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func decode(raw []byte) (policy.State, error) {
	var f file
	if len(bytes.TrimSpace(raw)) == 0 {
		return policy.State{}, errors.New("empty file")
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return policy.State{}, err
	}
	if f.Version != formatVersion {
		return policy.State{}, fmt.Errorf("format version %d, want %d", f.Version, formatVersion)
	}
	if got := strconv.FormatUint(uint64(crc32.Checksum(f.State, castagnoli)), 16); got != f.CRC32C {
		return policy.State{}, fmt.Errorf("checksum %s, want %s", got, f.CRC32C)
	}
	var st policy.State
	if err := json.Unmarshal(f.State, &st); err != nil {
		return policy.State{}, err
	}
	return st, nil
}

// writeAtomic replaces path with data: temp file, fsync, rename, fsync of
// the directory (without it the rename may not survive a power loss).
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// clone deep-copies st's maps and slices, so the caller's edits never
// reach the store's copy.
func clone(st policy.State) policy.State {
	out := st
	out.Keys = maps.Clone(st.Keys)
	out.Acted = append([]time.Time(nil), st.Acted...)
	if st.Apps != nil {
		out.Apps = make(map[string]policy.AppState, len(st.Apps))
		for name, a := range st.Apps {
			c := a
			c.Spent = append([]time.Time(nil), a.Spent...)
			c.LastActed = maps.Clone(a.LastActed)
			out.Apps[name] = c
		}
	}
	return out
}
