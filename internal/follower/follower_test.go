package follower

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewValidation(t *testing.T) {
	h := func([]byte) {}
	for _, tc := range []struct {
		name string
		opts Options
		h    Handler
	}{
		{"empty path", Options{}, h},
		{"nil handler", Options{Path: "x"}, nil},
		{"negative poll interval", Options{Path: "x", PollInterval: -1}, h},
		{"negative grace", Options{Path: "x", RotateGrace: -1}, h},
		{"negative max line", Options{Path: "x", MaxLineBytes: -1}, h},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts, tc.h)
			require.Error(t, err)
		})
	}
	f, err := New(Options{Path: "x", OneShot: true}, h)
	require.NoError(t, err)
	require.Equal(t, DefaultPollInterval, f.opts.PollInterval)
	require.Equal(t, DefaultRotateGrace, f.opts.RotateGrace)
	require.Equal(t, DefaultMaxLineBytes, f.opts.MaxLineBytes)
	require.True(t, f.opts.FromStart, "OneShot implies FromStart")
}

func TestRotationReasonStrings(t *testing.T) {
	var got []string
	for _, r := range RotationReasons() {
		got = append(got, r.String())
	}
	require.Equal(t, []string{"rename", "truncate", "delete", "symlink"}, got)
	require.Len(t, RotationReasons(), int(NumRotationReasons))
}

// A1: lines split across writes at arbitrary bytes, including 4096-byte
// boundaries, with polls at arbitrary points: every line exactly once, whole.
func TestSteadyAppendArbitrarySplits(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, "")
	h := newHarness(t, path, nil)
	require.Empty(t, h.poll())

	rng := rand.New(rand.NewPCG(1, 2))
	var want []string
	for i := range 10000 {
		n := rng.IntN(200)
		if i%500 == 7 {
			n = 4096 + rng.IntN(5000) // longer than a page: crosses 4096 boundaries
		}
		want = append(want, fmt.Sprintf("%06d %s", i, strings.Repeat(string(rune('a'+i%26)), n)))
	}

	w := openAppend(t, path)
	var got []string
	var off int64
	writeAndMaybePoll := func(s string) {
		write(t, w, s)
		off += int64(len(s))
		if rng.IntN(3) == 0 {
			got = append(got, h.poll()...)
		}
	}
	for _, line := range want {
		s := line + "\n"
		switch rng.IntN(3) {
		case 0: // one write
			writeAndMaybePoll(s)
		case 1: // split at a random byte
			k := 1 + rng.IntN(len(s)-1+1)
			writeAndMaybePoll(s[:k-1])
			writeAndMaybePoll(s[k-1:])
		default: // split at the next 4096-byte file offset if it falls inside the line
			k := int(4096 - off%4096)
			if k >= len(s) {
				k = len(s) / 2
			}
			writeAndMaybePoll(s[:k])
			writeAndMaybePoll(s[k:])
		}
	}
	got = append(got, h.poll()...)
	require.Equal(t, len(want), len(got))
	require.Equal(t, want, got)
	st := h.f.Stats()
	require.Equal(t, uint64(len(want)), st.Lines)
	require.Equal(t, uint64(off), st.Bytes)
	require.Zero(t, st.DiscardedBytes)
	require.Zero(t, st.BytesBehind)
	require.Equal(t, wantRotations(0, 0, 0, 0), rotations(st))
}

// A1: a partial line pending at rotation or truncation is completed or
// emitted at drain end, never lost.
func TestPartialLinePendingAtRotation(t *testing.T) {
	t.Run("rename, completed by the stale writer", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, "")
		h := newHarness(t, path, nil)
		h.poll()
		w := openAppend(t, path)
		write(t, w, "done\npart")
		require.Equal(t, []string{"done"}, h.poll())
		require.NoError(t, os.Rename(path, path+".1"))
		appendFile(t, path, "")
		require.Empty(t, h.poll())
		write(t, w, "ial\n")
		require.Equal(t, []string{"partial"}, h.poll())
	})
	t.Run("rename, emitted when the grace ends", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, "")
		h := newHarness(t, path, nil)
		h.poll()
		appendFile(t, path, "done\nhalf")
		require.Equal(t, []string{"done"}, h.poll())
		require.NoError(t, os.Rename(path, path+".1"))
		appendFile(t, path, "new\n")
		require.Equal(t, []string{"new"}, h.poll())
		h.clock.Advance(DefaultRotateGrace)
		require.Equal(t, []string{"half"}, h.poll())
		require.Zero(t, h.draining())
	})
	t.Run("truncate", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, "")
		h := newHarness(t, path, nil)
		h.poll()
		appendFile(t, path, "done\nhalf")
		require.Equal(t, []string{"done"}, h.poll())
		require.NoError(t, os.Truncate(path, 0))
		require.Equal(t, []string{"half"}, h.poll())
		appendFile(t, path, "after\n")
		require.Equal(t, []string{"after"}, h.poll())
		require.Equal(t, wantRotations(0, 1, 0, 0), rotations(h.f.Stats()))
	})
}

// A2: logrotate "create" (rename, create, writer switches at once), five
// times, with polls landing before the rename, between rename and create, and
// after: nothing lost, nothing twice, five renames.
func TestRenameCreate(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, "")
	h := newHarness(t, path, nil)
	h.poll()

	var want, got []string
	n := 0
	batch := func() {
		lines := seq("l", n, n+20)
		n += 20
		want = append(want, lines...)
		appendFile(t, path, text(lines))
	}
	for r := 1; r <= 5; r++ {
		batch()
		got = append(got, h.poll()...)
		batch() // unread when the rename happens
		require.NoError(t, os.Rename(path, fmt.Sprintf("%s.%d", path, r)))
		if r%2 == 0 {
			got = append(got, h.poll()...) // path absent for this poll
			require.False(t, h.f.Stats().Open)
		}
		batch()
		got = append(got, h.poll()...)
		require.True(t, h.f.Stats().Open)
		h.clock.Advance(time.Second)
	}
	got = append(got, h.poll()...)
	require.Equal(t, want, got)
	require.Equal(t, wantRotations(5, 0, 0, 0), rotations(h.f.Stats()))

	h.clock.Advance(DefaultRotateGrace)
	h.poll()
	require.Zero(t, h.draining(), "rotated files are closed after the grace")
}

// A3, A4: rename with lines still unread in the old file and a writer that
// keeps appending to the renamed file (Gunicorn before USR1) while a second
// process already writes to the new one. Everything is read until the grace
// ends; then the old file is closed.
func TestRenameStaleWriter(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, "")
	h := newHarness(t, path, nil)
	h.poll()

	old := openAppend(t, path)
	write(t, old, text(seq("a", 0, 100)))
	require.Equal(t, seq("a", 0, 100), h.poll())
	write(t, old, text(seq("a", 100, 150))) // A4: unread at the rename

	require.NoError(t, os.Rename(path, path+".1"))
	appendFile(t, path, "")
	got := h.poll()
	require.Equal(t, seq("a", 100, 150), got)
	require.Equal(t, wantRotations(1, 0, 0, 0), rotations(h.f.Stats()))

	// Nine seconds of writes to the renamed file (A3) and, interleaved, to
	// the new one.
	var wantOld, wantNew, gotAll []string
	for i := range 9 {
		a := seq("a", 150+i*10, 160+i*10)
		b := seq("b", i*5, i*5+5)
		write(t, old, text(a))
		appendFile(t, path, text(b))
		wantOld = append(wantOld, a...)
		wantNew = append(wantNew, b...)
		h.clock.Advance(time.Second)
		gotAll = append(gotAll, h.poll()...)
		require.Equal(t, 1, h.draining())
	}
	// USR1: Gunicorn reopens the path.
	require.NoError(t, old.Close())
	appendFile(t, path, text(seq("b", 45, 50)))
	wantNew = append(wantNew, seq("b", 45, 50)...)
	gotAll = append(gotAll, h.poll()...)
	require.ElementsMatch(t, append(wantOld, wantNew...), gotAll)
	require.Equal(t, wantOld, filterPrefix(gotAll, "a-"), "old file lines in order")
	require.Equal(t, wantNew, filterPrefix(gotAll, "b-"), "new file lines in order")

	// The grace (10s since the rotation was noticed) ends: one last drain,
	// then close.
	renamed, err := os.OpenFile(path+".1", os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	defer renamed.Close()
	write(t, renamed, "a-last\n")
	h.clock.Advance(time.Second)
	require.Equal(t, []string{"a-last"}, h.poll())
	require.Zero(t, h.draining())
	write(t, renamed, "a-too-late\n")
	require.Empty(t, h.poll(), "the old file is no longer read after the grace")
	require.Equal(t, wantRotations(1, 0, 0, 0), rotations(h.f.Stats()))
}

func filterPrefix(lines []string, p string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, p) {
			out = append(out, l)
		}
	}
	return out
}

// A5: two rename rotations between two polls, repeated: the file open at the
// first rename is drained, the intermediate one (never named by the path at a
// poll) is found under its rotated name and drained, the newest is read, and
// no file descriptor leaks.
func TestTwoRenamesWithinOnePoll(t *testing.T) {
	before := openFDs(t)
	path := tempLog(t)
	appendFile(t, path, "")
	h := newHarness(t, path, nil)
	h.poll()

	var want, got []string
	for r := range 10 {
		a := seq(fmt.Sprintf("r%d-a", r), 0, 10)
		appendFile(t, path, text(a[:5]))
		got = append(got, h.poll()...)
		appendFile(t, path, text(a[5:]))
		want = append(want, a...)

		// logrotate twice: shift .1 to .2, rename, create, write.
		_ = os.Rename(path+".1", path+".2")
		require.NoError(t, os.Rename(path, path+".1"))
		b := seq(fmt.Sprintf("r%d-b", r), 0, 3)
		appendFile(t, path, text(b))
		want = append(want, b...)
		require.NoError(t, os.Rename(path+".1", path+".2"))
		require.NoError(t, os.Rename(path, path+".1"))
		c := seq(fmt.Sprintf("r%d-c", r), 0, 4)
		appendFile(t, path, text(c))
		want = append(want, c...)

		got = append(got, h.poll()...)
		h.clock.Advance(3 * time.Second)
		require.LessOrEqual(t, h.draining(), 8, "rotated files are closed after the grace")
		require.LessOrEqual(t, openFDs(t), before+1+8)
	}
	require.Equal(t, want, got)
	require.Equal(t, wantRotations(20, 0, 0, 0), rotations(h.f.Stats()))
	require.Zero(t, h.f.Stats().MissedBytes)

	h.clock.Advance(DefaultRotateGrace)
	h.poll()
	require.Zero(t, h.draining())
	require.NoError(t, h.f.Close())
	require.Equal(t, before, openFDs(t), "file descriptors leaked")
}

// A6: copytruncate while the writer is idle.
func TestCopytruncateIdleWriter(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, "")
	h := newHarness(t, path, nil)
	h.poll()
	w := openAppend(t, path)
	write(t, w, text(seq("old", 0, 100)))
	require.Equal(t, seq("old", 0, 100), h.poll())

	copyFile(t, path, path+".1")
	require.NoError(t, os.Truncate(path, 0))
	require.Empty(t, h.poll())
	st := h.f.Stats()
	require.Equal(t, wantRotations(0, 1, 0, 0), rotations(st))
	require.True(t, st.Open)

	write(t, w, text(seq("new", 0, 50)))
	require.Equal(t, seq("new", 0, 50), h.poll())
	for range 5 {
		require.Empty(t, h.poll())
	}
	require.Equal(t, wantRotations(0, 1, 0, 0), rotations(h.f.Stats()))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o644))
}

// A7: copytruncate followed by a burst that regrows the file past the old
// offset before the next poll. Detected by the fingerprints: old lines are
// not read again and no mid-line fragment is emitted.
func TestCopytruncateRegrow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		oldN    int
		newText func(oldSize int) string
	}{
		{"regrow past the old size", 100, func(int) string { return text(seq("new", 0, 300)) }},
		{"same line shape, offset lands mid-line", 100, func(int) string {
			// Lines one byte longer than the old ones: the old offset falls
			// inside a line of the new content.
			return text(seq("newx", 0, 300))
		}},
		{"regrow to exactly the old size", 100, func(oldSize int) string {
			return text(seq("new", 0, 100))[:oldSize-1] + "\n"
		}},
		{"same first bytes, different bytes before the offset", 100, func(int) string {
			// Only the tail fingerprint can tell: the new content starts with
			// the old file's first 300 bytes (say, an identical banner).
			old := text(seq("old", 0, 100))
			return old[:300] + text(seq("new", 0, 300))
		}},
		{"small file, offset inside the head fingerprint", 3, func(int) string {
			return text(seq("new", 0, 10))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempLog(t)
			appendFile(t, path, "")
			h := newHarness(t, path, nil)
			h.poll()
			w := openAppend(t, path)
			oldText := text(seq("old", 0, tc.oldN))
			write(t, w, oldText)
			require.Len(t, h.poll(), tc.oldN)

			newText := tc.newText(len(oldText))
			require.NoError(t, os.Truncate(path, 0))
			write(t, w, newText)
			require.GreaterOrEqual(t, len(newText), len(oldText))

			got := h.poll()
			require.Equal(t, strings.Split(strings.TrimSuffix(newText, "\n"), "\n"), got)
			require.Equal(t, wantRotations(0, 1, 0, 0), rotations(h.f.Stats()))
			require.Empty(t, h.poll())
		})
	}
}

// A8: copytruncate with a writer that does not use O_APPEND: it keeps writing
// at its old offset, leaving a NUL-filled hole at the start of the file. No
// NUL fragment becomes a line; the hole is counted as discarded.
func TestCopytruncateNonAppendWriter(t *testing.T) {
	for _, lag := range []int{0, 30} {
		t.Run(fmt.Sprintf("unread lines %d", lag), func(t *testing.T) {
			path := tempLog(t)
			appendFile(t, path, "")
			h := newHarness(t, path, nil)
			h.poll()
			w, err := os.OpenFile(path, os.O_WRONLY, 0)
			require.NoError(t, err)
			defer w.Close()
			write(t, w, text(seq("old", 0, 100)))
			require.Len(t, h.poll(), 100)
			write(t, w, text(seq("old", 100, 100+lag)))

			require.NoError(t, os.Truncate(path, 0))
			hole, err := w.Seek(0, 1)
			require.NoError(t, err)
			write(t, w, text(seq("new", 0, 20)))

			got := h.poll()
			require.Equal(t, seq("new", 0, 20), got)
			for _, l := range got {
				require.NotContains(t, l, "\x00")
			}
			st := h.f.Stats()
			require.Equal(t, uint64(hole), st.DiscardedBytes)
			require.Equal(t, wantRotations(0, 1, 0, 0), rotations(st))
		})
	}
}

// A9: the file is deleted and recreated later: Open is false meanwhile, the
// deleted file is drained for the grace, the new file is read from offset 0.
func TestDeleteRecreate(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, text(seq("before-start", 0, 5)))
	h := newHarness(t, path, nil)
	require.Empty(t, h.poll())
	w := openAppend(t, path)
	write(t, w, text(seq("a", 0, 10)))
	require.Equal(t, seq("a", 0, 10), h.poll())

	require.NoError(t, os.Remove(path))
	write(t, w, "a-after-unlink\n") // still reaches the open, nameless file
	require.Equal(t, []string{"a-after-unlink"}, h.poll())
	st := h.f.Stats()
	require.False(t, st.Open)
	require.Equal(t, wantRotations(0, 0, 1, 0), rotations(st))

	for range 5 { // minutes pass
		h.clock.Advance(time.Minute)
		require.Empty(t, h.poll())
		require.False(t, h.f.Stats().Open)
	}
	require.Zero(t, h.draining())
	require.Zero(t, h.f.Stats().ReadErrors)

	appendFile(t, path, text(seq("b", 0, 10)))
	require.Equal(t, seq("b", 0, 10), h.poll())
	st = h.f.Stats()
	require.True(t, st.Open)
	require.Equal(t, wantRotations(0, 0, 1, 0), rotations(st))
	require.Equal(t, 1, h.logs.count("does not exist"), "absence is logged once")
}

// A10: neither the file nor its directory exist when Run starts: no error,
// and the file is read from offset 0 once it appears.
func TestAbsentAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	path := filepath.Join(dir, "app.log")
	waker := NewTestWaker()
	h := newHarness(t, path, func(o *Options) { o.Waker = waker })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.f.Run(runCtx) }()

	require.NoError(t, waker.WaitIdle(ctx))
	for range 3 {
		require.NoError(t, waker.Step(ctx))
	}
	st := h.f.Stats()
	require.False(t, st.Open)
	require.Zero(t, st.ReadErrors)
	require.Empty(t, st.LastError)

	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, waker.Step(ctx))
	appendFile(t, path, text(seq("x", 0, 7)))
	require.NoError(t, waker.Step(ctx))
	require.Equal(t, seq("x", 0, 7), h.sink.take(), "a file created after start is read from offset 0")
	require.True(t, h.f.Stats().Open)

	stop()
	require.NoError(t, <-done)
	require.False(t, h.f.Stats().Open, "Run closes the file on return")
}

// A11 (by construction, so it also fails as root): the path is a directory,
// then a FIFO. Errors are counted on every poll, logged once per state change,
// Run never exits, and following resumes when a regular file appears.
func TestPathNotRegularFile(t *testing.T) {
	for _, kind := range []string{"directory", "fifo"} {
		t.Run(kind, func(t *testing.T) {
			path := tempLog(t)
			switch kind {
			case "directory":
				require.NoError(t, os.Mkdir(path, 0o755))
			case "fifo":
				if err := syscall.Mkfifo(path, 0o644); err != nil {
					t.Skipf("mkfifo: %v", err)
				}
			}
			h := newHarness(t, path, nil)
			for range 10 {
				require.Empty(t, h.poll())
			}
			st := h.f.Stats()
			require.Equal(t, uint64(10), st.ReadErrors)
			require.Contains(t, st.LastError, "not a regular file")
			require.False(t, st.Open)
			require.Equal(t, 1, h.logs.count("level=WARN"), "one log line per state change")

			require.NoError(t, os.Remove(path))
			appendFile(t, path, text(seq("x", 0, 3)))
			require.Equal(t, seq("x", 0, 3), h.poll(), "a file that replaced the start-up one is new content")
			st = h.f.Stats()
			require.True(t, st.Open)
			require.Empty(t, st.LastError)
			require.Equal(t, uint64(10), st.ReadErrors)
			require.Equal(t, 1, h.logs.count("readable again"))
		})
	}
}

// A13: the path is a symlink whose target is swapped: the new target is
// followed, the old one drained; swapping back within the grace resumes the
// old file where it was.
func TestSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	a, b, link := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log"), filepath.Join(dir, "app.log")
	appendFile(t, a, "before start\n")
	require.NoError(t, os.Symlink("a.log", link))
	h := newHarness(t, link, nil)
	require.Empty(t, h.poll())
	wa := openAppend(t, a)
	write(t, wa, text(seq("a", 0, 5)))
	require.Equal(t, seq("a", 0, 5), h.poll())

	write(t, wa, text(seq("a", 5, 8))) // unread at the swap
	appendFile(t, b, text(seq("b", 0, 4)))
	swapSymlink(t, link, "b.log")
	require.Equal(t, append(seq("a", 5, 8), seq("b", 0, 4)...), h.poll())
	require.Equal(t, wantRotations(0, 0, 0, 1), rotations(h.f.Stats()))

	write(t, wa, text(seq("a", 8, 10))) // old target still written
	h.clock.Advance(time.Second)
	require.Equal(t, seq("a", 8, 10), h.poll())

	// Back to a.log while it is still drained: no re-read from offset 0.
	swapSymlink(t, link, "a.log")
	write(t, wa, text(seq("a", 10, 12)))
	require.Equal(t, seq("a", 10, 12), h.poll())
	require.Equal(t, wantRotations(0, 0, 0, 2), rotations(h.f.Stats()))
	require.Equal(t, 1, h.draining(), "b.log is now the one being drained")

	h.clock.Advance(DefaultRotateGrace)
	h.poll()
	require.Zero(t, h.draining())
	require.True(t, h.f.Stats().Open)
}

func swapSymlink(t *testing.T, link, target string) {
	t.Helper()
	tmp := link + ".tmp"
	require.NoError(t, os.Symlink(target, tmp))
	require.NoError(t, os.Rename(tmp, link))
}

// A14: long lines, invalid UTF-8, NUL bytes, CRLF, BOM.
func TestOddBytes(t *testing.T) {
	t.Run("1 MiB line without newline", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, "")
		h := newHarness(t, path, nil)
		h.poll()
		appendFile(t, path, "short\n"+strings.Repeat("x", 1<<20))
		got := h.poll()
		require.Len(t, got, 2)
		require.Equal(t, "short", got[0])
		require.Equal(t, strings.Repeat("x", DefaultMaxLineBytes), got[1], "cut at MaxLineBytes")
		require.LessOrEqual(t, cap(h.f.cur.sp.buf), DefaultMaxLineBytes, "partial line memory is bounded")

		h.clock.Advance(10 * time.Second)
		appendFile(t, path, strings.Repeat("y", 1000)+"\nnext\n")
		require.Equal(t, []string{"next"}, h.poll())
		st := h.f.Stats()
		require.Equal(t, uint64(1), st.OversizedLines)
		require.Equal(t, uint64(1<<20-DefaultMaxLineBytes+1000), st.DiscardedBytes)
		require.Equal(t, uint64(3), st.Lines)
	})
	for _, tc := range []struct {
		name string
		in   string
		want []string
		disc uint64
	}{
		{"invalid utf-8 passed through", "\xff\xfe ok \xc3\x28\n", []string{"\xff\xfe ok \xc3\x28"}, 0},
		{"nul bytes", "\x00\x00abc\na\x00b\n\x00\x00\n", []string{"abc", "a\x00b"}, 4},
		{"crlf", "one\r\ntwo\r\n", []string{"one", "two"}, 0},
		{"bom at file start", "\xEF\xBB\xBFfirst\n\xEF\xBB\xBFsecond\n", []string{"first", "\xEF\xBB\xBFsecond"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempLog(t)
			appendFile(t, path, tc.in)
			h := newHarness(t, path, func(o *Options) { o.FromStart = true })
			require.Equal(t, tc.want, h.poll())
			st := h.f.Stats()
			require.Equal(t, tc.disc, st.DiscardedBytes)
			require.Equal(t, uint64(len(tc.in)), st.Bytes)
		})
	}
}

// A15: the first open starts at EOF (an exporter restart re-counts nothing);
// FromStart and OneShot read from offset 0.
func TestStartPosition(t *testing.T) {
	t.Run("default starts at EOF", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, text(seq("old", 0, 50)))
		h := newHarness(t, path, nil)
		require.Empty(t, h.poll())
		require.True(t, h.f.Stats().Open)
		appendFile(t, path, "new\n")
		require.Equal(t, []string{"new"}, h.poll())
	})
	t.Run("default at EOF inside a line skips the fragment", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, "old\nhalf-wri")
		h := newHarness(t, path, nil)
		require.Empty(t, h.poll())
		appendFile(t, path, "tten\nnew\n")
		require.Equal(t, []string{"new"}, h.poll())
		require.Equal(t, uint64(len("tten")), h.f.Stats().DiscardedBytes)
	})
	t.Run("FromStart", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, text(seq("old", 0, 50)))
		h := newHarness(t, path, func(o *Options) { o.FromStart = true })
		require.Equal(t, seq("old", 0, 50), h.poll())
	})
	t.Run("OneShot", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, text(seq("old", 0, 50))+"unterminated")
		h := newHarness(t, path, func(o *Options) { o.OneShot = true })
		require.NoError(t, h.f.Run(context.Background()))
		require.Equal(t, append(seq("old", 0, 50), "unterminated"), h.sink.take())
		require.False(t, h.f.Stats().Open)
	})
	t.Run("OneShot on a missing file", func(t *testing.T) {
		h := newHarness(t, tempLog(t), func(o *Options) { o.OneShot = true })
		err := h.f.Run(context.Background())
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("OneShot on a directory", func(t *testing.T) {
		h := newHarness(t, t.TempDir(), func(o *Options) { o.OneShot = true })
		require.ErrorContains(t, h.f.Run(context.Background()), "not a regular file")
	})
}

// A16: a handler that blocks does not deadlock shutdown: Run returns after
// the context is cancelled, as soon as the handler returns, and passes no
// further lines.
func TestBlockingHandlerShutdown(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, text(seq("x", 0, 1000)))
	entered := make(chan struct{})
	release := make(chan struct{})
	calls := 0
	f, err := New(Options{Path: path, FromStart: true, Waker: NewTestWaker()}, func([]byte) {
		calls++
		if calls == 1 {
			close(entered)
			<-release
		}
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	<-entered
	cancel()
	_ = f.Stats() // Stats does not wait for the blocked handler
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while the handler was still running", err)
	default:
	}
	close(release)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	require.Equal(t, 1, calls, "no lines are passed after cancellation")
}

// A18: an idle file polled for an hour of fake time (and touched without
// changes) shows no rotation, truncation, error or line.
func TestIdleNoSpuriousEvents(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, text(seq("old", 0, 100)))
	h := newHarness(t, path, nil)
	_ = openAppend(t, path) // an idle writer holds the file open
	for i := range 14400 {  // 1 h at 250 ms
		h.clock.Advance(DefaultPollInterval)
		if i == 5000 {
			mt := time.Now().Add(time.Hour)
			require.NoError(t, os.Chtimes(path, mt, mt)) // mtime changes, content does not
		}
		require.Empty(t, h.poll())
	}
	st := h.f.Stats()
	require.Equal(t, wantRotations(0, 0, 0, 0), rotations(st))
	require.Zero(t, st.ReadErrors)
	require.Zero(t, st.Lines)
	require.Zero(t, st.BytesBehind)
	require.True(t, st.Open)
	require.Equal(t, 1, h.logs.count("opened log file"))
}

// Stats and Poll from other goroutines while Run works (for -race), and Run
// with its default ticker.
func TestRunWithTickerAndConcurrentStats(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, "")
	var got sink
	f, err := New(Options{Path: path, PollInterval: 2 * time.Millisecond}, got.handle)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	stopStats := make(chan struct{})
	statsDone := make(chan struct{})
	go func() {
		defer close(statsDone)
		for {
			select {
			case <-stopStats:
				return
			default:
				_ = f.Stats()
				f.Poll()
			}
		}
	}()
	require.Eventually(t, func() bool { return f.Stats().Open }, 10*time.Second, time.Millisecond)
	w := openAppend(t, path)
	for i := range 50 {
		write(t, w, text(seq("x", i*20, i*20+20)))
	}
	require.Eventually(t, func() bool { return f.Stats().Lines == 1000 }, 10*time.Second, time.Millisecond)
	close(stopStats)
	<-statsDone
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, seq("x", 0, 1000), got.take())
	require.False(t, f.Stats().Open)
}

// The test waker steps Run deterministically and reports ctx errors instead
// of hanging.
func TestTestWakerCancelled(t *testing.T) {
	w := NewTestWaker()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.True(t, errors.Is(w.Step(ctx), context.Canceled))
}

// A7 and the copytruncate race: lines written after the last poll and
// before logrotate's truncate are only in the copy. The follower finishes
// them from the copy (recognised by content), then reads the new content.
func TestCopytruncateUnreadTailReadFromCopy(t *testing.T) {
	for _, tc := range []struct {
		name, copyName string
		partial        bool
	}{
		{"numbered copy", ".1", false},
		{"dateext copy", "-20261124", false},
		{"partial line at the old offset", ".1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempLog(t)
			appendFile(t, path, "")
			h := newHarness(t, path, nil)
			h.poll()
			w := openAppend(t, path)
			write(t, w, text(seq("old", 0, 100)))
			want := seq("unread", 0, 30)
			if tc.partial {
				write(t, w, "split-")
				require.Equal(t, seq("old", 0, 100), h.poll())
				write(t, w, "line\n")
				want = append([]string{"split-line"}, want...)
			} else {
				require.Equal(t, seq("old", 0, 100), h.poll())
			}
			write(t, w, text(seq("unread", 0, 30))) // after the last poll
			// An unrelated file with the same prefix must not be read.
			appendFile(t, path+".bak", text(seq("unrelated", 0, 500)))
			copyFile(t, path, path+tc.copyName)
			require.NoError(t, os.Truncate(path, 0))
			write(t, w, text(seq("new", 0, 40)))
			require.Equal(t, append(want, seq("new", 0, 40)...), h.poll())
			require.Equal(t, wantRotations(0, 1, 0, 0), rotations(h.f.Stats()))
		})
	}
}

// Without a copy (compressed at once, or deleted) the unread tail is lost:
// the follower cannot invent it, and it still reads the new content once.
func TestCopytruncateWithoutCopyLosesOnlyTheUnreadTail(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, "")
	h := newHarness(t, path, nil)
	h.poll()
	w := openAppend(t, path)
	write(t, w, text(seq("old", 0, 100)))
	require.Equal(t, seq("old", 0, 100), h.poll())
	write(t, w, text(seq("unread", 0, 30)))
	require.NoError(t, os.Truncate(path, 0))
	write(t, w, text(seq("new", 0, 200)))
	require.Equal(t, seq("new", 0, 200), h.poll())
}
