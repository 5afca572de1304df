package follower

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxKnown bounds how many closed files the follower remembers, so that a
// file it has already read is not read again when it shows up as a rotation
// candidate.
const maxKnown = 16

// knownFile is a file the follower read and closed: its identity, how far it
// was read, and its first bytes (an inode number can be reused once the file
// is deleted, so the identity alone does not prove it is the same file).
type knownFile struct {
	id      fileID
	off     int64
	head    [fingerprintLen]byte
	headLen int
}

// remember records a closed file, dropping the oldest past maxKnown.
func (f *Follower) remember(k knownFile) {
	if len(f.known) >= maxKnown {
		f.known = slices.Delete(f.known, 0, 1)
	}
	f.known = append(f.known, k)
}

// compressedExt are the suffixes logrotate's compress options produce. Such a
// file is never read as text.
var compressedExt = []string{".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".Z", ".zip"}

// rotatedName reports whether name looks like a rotated copy of base:
// base followed by '.', '-' or '_' and a suffix with a digit in it
// ("app.log.1", "app.log-20261201", "app.log.2.gz"). Requiring the digit
// keeps unrelated logs such as "app.log.error" out.
func rotatedName(name, base string) bool {
	if len(name) < len(base)+2 || !strings.HasPrefix(name, base) {
		return false
	}
	if c := name[len(base)]; c != '.' && c != '-' && c != '_' {
		return false
	}
	return strings.ContainsAny(name[len(base)+1:], "0123456789")
}

// rotationNumber returns N for "<dir>/<base>.N" (an optional compression
// suffix allowed).
func rotationNumber(path, base string) (int, bool) {
	name := filepath.Base(path)
	for _, ext := range compressedExt {
		name = strings.TrimSuffix(name, ext)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, base+"."))
	return n, err == nil && n >= 0 && len(name) > len(base)+1
}

func isCompressed(name string) bool {
	for _, ext := range compressedExt {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// findSkipped looks for files that were the log between two polls without
// the follower ever seeing them under Path: with two rotations in one poll
// interval (app.log → app.log.1 → app.log.2 while a new app.log.1 is written
// and rotated too), the intermediate file was never named by Path. Such a
// file is in the same directory under a rotated name, and it was written
// after the last poll, so its mtime is not older than the newest mtime the
// follower saw at that poll (since). Old rotated files were last written
// before the file that replaced them got its first line, so they fail that
// test; files the follower has read are recognised by identity and first
// bytes and are only resumed if they grew. Candidates are added to the
// draining list oldest first, so their lines come before the new file's.
//
// A candidate that cannot be opened, or that was compressed before it could
// be read and is not a compressed copy of a file already read, is counted in
// MissedBytes and logged: the lines may be lost, but not silently.
func (f *Follower) findSkipped(since time.Time, now time.Time, newID fileID) {
	dir, base := filepath.Split(f.opts.Path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !f.listFailed { // once per failure, not at every poll
			f.log.Warn("cannot list the log directory to look for files rotated twice between two polls; their lines may be lost", "err", err)
		}
		f.listFailed = true
		return
	}
	f.listFailed = false
	type cand struct {
		path string
		fi   fs.FileInfo
	}
	var cands []cand
	for _, e := range entries {
		name := e.Name()
		if !rotatedName(name, base) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.Size() == 0 || fi.ModTime().Before(since) {
			continue
		}
		id := idOf(fi)
		if id == newID || f.following(id) {
			continue
		}
		cands = append(cands, cand{filepath.Join(dir, name), fi})
	}
	// Oldest first. File timestamps tick at the kernel's coarse clock, so two
	// files written within a few milliseconds can share one: then a higher
	// rotation number is older ("app.log.2" before "app.log.1"), and other
	// names (dates) sort as text.
	slices.SortStableFunc(cands, func(a, b cand) int {
		if c := a.fi.ModTime().Compare(b.fi.ModTime()); c != 0 {
			return c
		}
		na, oka := rotationNumber(a.path, base)
		nb, okb := rotationNumber(b.path, base)
		if oka && okb {
			return nb - na
		}
		return strings.Compare(a.path, b.path)
	})
	for _, c := range cands {
		if isCompressed(c.path) {
			f.countCompressed(c.path, c.fi)
			continue
		}
		f.adopt(c.path, c.fi, now)
	}
}

// primeKnown remembers, before the first file is opened, the rotated files
// already in the directory at their current size: lines in them were there
// before this follower started (and were counted by a previous exporter, if
// any), so a later search must not read them from offset 0. Only the newest
// maxKnown are kept; older ones fail the search's mtime test anyway.
func (f *Follower) primeKnown() {
	dir, base := filepath.Split(f.opts.Path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // the search logs it, if it ever runs
	}
	type seen struct {
		path string
		fi   fs.FileInfo
	}
	var files []seen
	for _, e := range entries {
		if !rotatedName(e.Name(), base) || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil {
			files = append(files, seen{filepath.Join(dir, e.Name()), fi})
		}
	}
	slices.SortFunc(files, func(a, b seen) int { return a.fi.ModTime().Compare(b.fi.ModTime()) })
	for _, c := range files[max(len(files)-maxKnown, 0):] {
		k := knownFile{id: idOf(c.fi), off: c.fi.Size()}
		if fd, err := os.Open(c.path); err == nil {
			k.headLen, _ = fd.ReadAt(k.head[:], 0)
			_ = fd.Close()
		}
		f.remember(k)
	}
}

// following reports whether id is the current file or one being drained.
func (f *Follower) following(id fileID) bool {
	if f.cur != nil && f.cur.id == id {
		return true
	}
	for _, s := range f.old {
		if s.id == id {
			return true
		}
	}
	return false
}

// knownAt returns the index in f.known of the file read through r with
// identity id, or -1. The first bytes must match too, since the inode may
// have been reused; r may be nil for a file that cannot be opened, which
// matches only entries recorded without first bytes.
func (f *Follower) knownAt(id fileID, r io.ReaderAt) int {
	for i := len(f.known) - 1; i >= 0; i-- {
		k := &f.known[i]
		if k.id != id {
			continue
		}
		if k.headLen == 0 {
			return i // known by identity only (it could not be read)
		}
		if r == nil {
			continue
		}
		got := f.buf[:k.headLen]
		if n, _ := r.ReadAt(got, 0); n == k.headLen && bytes.Equal(got, k.head[:k.headLen]) {
			return i
		}
	}
	return -1
}

// adopt opens a skipped rotated file and adds it to the draining list, from
// offset 0, or from where it was left if the follower read it before.
func (f *Follower) adopt(path string, fi fs.FileInfo, now time.Time) {
	fd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		var ofi fs.FileInfo
		if ofi, err = fd.Stat(); err == nil && !ofi.Mode().IsRegular() {
			err = fmt.Errorf("%s is not a regular file (mode %v)", path, ofi.Mode())
		}
		if err != nil {
			_ = fd.Close()
		} else {
			fi = ofi
		}
	}
	if err != nil {
		if i := f.knownAt(idOf(fi), nil); i < 0 {
			// Counted once: remembered with no first bytes, by identity.
			f.remember(knownFile{id: idOf(fi), off: fi.Size()})
			f.missed(path, fi.Size(), "cannot open", err)
		}
		return
	}
	id := idOf(fi)
	s := &stream{f: fd, id: id, rotatedAt: now, lastSize: fi.Size(), lastMod: fi.ModTime()}
	if i := f.knownAt(id, fd); i >= 0 {
		if fi.Size() <= f.known[i].off {
			_ = fd.Close() // read to its end already
			return
		}
		// Written to after the follower closed it: read the rest.
		s.off = f.known[i].off
		f.known = slices.Delete(f.known, i, i+1)
	}
	s.sp = splitter{h: f.h, max: f.opts.MaxLineBytes, c: &f.cnt}
	s.sp.reset(s.off == 0)
	if s.off > 0 {
		if err := s.loadFingerprints(); err != nil {
			_ = fd.Close()
			f.missed(path, fi.Size()-s.off, "cannot read", err)
			return
		}
	}
	f.old = append(f.old, s)
	if s.off == 0 {
		f.cnt.rotations[RotationRename]++ // the rotation that was never seen
	}
	f.log.Warn("found a rotated log file the follower never saw under its path (rotated twice between two polls); draining it",
		"file", path, "offset", s.off, "size", fi.Size())
}

// countCompressed counts a compressed candidate as missed unless it is a
// compressed copy of a file the follower read (logrotate's compress without
// delaycompress compresses the file just renamed, which the follower still
// reads through its open descriptor). Only gzip, logrotate's default, can be
// checked and sized (its trailer holds the uncompressed size modulo 2^32);
// other formats are counted by their compressed size.
func (f *Follower) countCompressed(path string, fi fs.FileInfo) {
	fd, err := os.Open(path)
	if err != nil {
		f.missed(path, fi.Size(), "cannot open compressed", err)
		return
	}
	defer func() { _ = fd.Close() }()
	id := idOf(fi)
	if f.knownAt(id, fd) >= 0 {
		return
	}
	k := knownFile{id: id, off: fi.Size()}
	k.headLen, _ = fd.ReadAt(k.head[:], 0)
	f.remember(k) // counted once, not at every later rotation
	if !strings.HasSuffix(path, ".gz") {
		f.missed(path, fi.Size(), "compressed before it was read", nil)
		return
	}
	zr, err := gzip.NewReader(io.NewSectionReader(fd, 0, fi.Size()))
	if err != nil {
		f.missed(path, fi.Size(), "unreadable gzip", err)
		return
	}
	var head [fingerprintLen]byte
	n, _ := io.ReadFull(zr, head[:])
	if n > 0 && f.readBefore(head[:n]) {
		return
	}
	var trailer [4]byte
	if _, err := fd.ReadAt(trailer[:], fi.Size()-4); err != nil {
		f.missed(path, fi.Size(), "unreadable gzip", err)
		return
	}
	f.missed(path, int64(binary.LittleEndian.Uint32(trailer[:])), "compressed before it was read", nil)
}

// readBefore reports whether head is the start of a file being drained or
// read before.
func (f *Follower) readBefore(head []byte) bool {
	match := func(h []byte) bool {
		m := min(len(h), len(head))
		return m > 0 && bytes.Equal(h[:m], head[:m])
	}
	for _, s := range f.old {
		if match(s.head[:s.headLen]) {
			return true
		}
	}
	for _, k := range f.known {
		if match(k.head[:k.headLen]) {
			return true
		}
	}
	return false
}

// missed counts bytes of a rotated file the follower found but could not
// read, and says so once.
func (f *Follower) missed(path string, n int64, why string, err error) {
	if n <= 0 {
		return
	}
	f.cnt.missed += uint64(n)
	f.log.Warn("lines of a rotated log file may be lost: it was rotated twice between two polls and cannot be read",
		"file", path, "reason", why, "bytes", n, "err", err)
}
