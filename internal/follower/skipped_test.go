package follower

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rotateTwice does what two logrotate runs in "create" mode with a writer
// that reopens at once do within one poll interval: app.log (A) becomes
// app.log.1, a new app.log (B) gets bLines, then app.log.1 becomes app.log.2,
// B becomes app.log.1 and a new, empty app.log (C) is created.
func rotateTwice(t *testing.T, path string, bLines []string) {
	t.Helper()
	require.NoError(t, os.Rename(path, path+".1"))
	appendFile(t, path, text(bLines))
	require.NoError(t, os.Rename(path+".1", path+".2"))
	require.NoError(t, os.Rename(path, path+".1"))
	appendFile(t, path, "")
}

// Issue 9 item 7: two rotations between two wakes of a running follower.
// Before, all 1,000 lines of the intermediate file were lost without a
// trace; now it is found under its rotated name and drained before the new
// file, and nothing is counted as missed.
func TestTwoRotationsBetweenStepsDrainIntermediateFile(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, "")
	waker := NewTestWaker()
	h := newHarness(t, path, func(o *Options) { o.Waker = waker })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.f.Run(runCtx) }()
	require.NoError(t, waker.WaitIdle(ctx))

	a := seq("a", 0, 10)
	appendFile(t, path, text(a[:5]))
	require.NoError(t, waker.Step(ctx))
	appendFile(t, path, text(a[5:])) // unread when A is renamed

	b := seq("b", 0, 1000)
	rotateTwice(t, path, b)
	c := seq("c", 0, 7)
	appendFile(t, path, text(c))
	require.NoError(t, waker.Step(ctx))

	want := append(append(append([]string{}, a...), b...), c...)
	require.Equal(t, want, h.sink.take(), "every line, in order")
	st := h.f.Stats()
	require.Equal(t, uint64(len(want)), st.Lines)
	require.Zero(t, st.MissedBytes)
	require.Equal(t, wantRotations(2, 0, 0, 0), rotations(st))
	require.Equal(t, 1, h.logs.count("never saw under its path"))

	stop()
	require.NoError(t, <-done)
}

// Three rotations in one interval: both intermediate files are drained,
// oldest first, even when their mtimes are equal at the kernel's timestamp
// granularity.
func TestThreeRotationsWithinOnePoll(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, text(seq("a", 0, 3)))
	h := newHarness(t, path, func(o *Options) { o.FromStart = true })
	require.Equal(t, seq("a", 0, 3), h.poll())

	shift := func() {
		for n := 3; n >= 1; n-- {
			src := path
			if n > 1 {
				src = path + "." + string(rune('0'+n-1))
			}
			if _, err := os.Stat(src); err == nil {
				require.NoError(t, os.Rename(src, path+"."+string(rune('0'+n))))
			}
		}
	}
	var want []string
	for _, p := range []string{"b", "c"} {
		shift()
		l := seq(p, 0, 50)
		appendFile(t, path, text(l))
		want = append(want, l...)
	}
	shift()
	appendFile(t, path, text(seq("d", 0, 2)))
	want = append(want, seq("d", 0, 2)...)
	require.Equal(t, want, h.poll())
	require.Equal(t, wantRotations(3, 0, 0, 0), rotations(h.f.Stats()))
}

// Rotated files that were there before, older than the last poll, and logs
// whose name merely starts with the same text are never read: one ordinary
// rotation reads exactly the old and the new file.
func TestOrdinaryRotationReadsNothingElse(t *testing.T) {
	path := tempLog(t)
	hourAgo := time.Now().Add(-time.Hour)
	for _, name := range []string{".1", ".2", "-20261130"} {
		require.NoError(t, os.WriteFile(path+name, []byte("old line\n"), 0o644))
		require.NoError(t, os.Chtimes(path+name, hourAgo, hourAgo))
	}
	appendFile(t, path, "")
	h := newHarness(t, path, nil)
	h.poll()
	appendFile(t, path, "a\n")
	require.Equal(t, []string{"a"}, h.poll())
	appendFile(t, path+".error", "unrelated\n") // written now, but no rotation suffix

	require.NoError(t, os.Rename(path+".2", path+".3"))
	require.NoError(t, os.Rename(path+".1", path+".2"))
	require.NoError(t, os.Rename(path, path+".1"))
	appendFile(t, path, "b\n")
	require.Equal(t, []string{"b"}, h.poll())
	require.Equal(t, wantRotations(1, 0, 0, 0), rotations(h.f.Stats()))
	require.Zero(t, h.f.Stats().MissedBytes)
	require.Zero(t, h.logs.count("never saw"))
}

// A file that was read, closed after its grace and then written to again is
// not read twice when it turns up as a candidate: only what was written
// after the close is read.
func TestClosedFileResumedNotReread(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, "")
	h := newHarness(t, path, nil)
	h.poll()
	appendFile(t, path, "a1\n")
	require.Equal(t, []string{"a1"}, h.poll())
	require.NoError(t, os.Rename(path, path+".1"))
	appendFile(t, path, "b1\n")
	require.Equal(t, []string{"b1"}, h.poll())
	h.clock.Advance(DefaultRotateGrace)
	h.poll()
	require.Zero(t, h.draining())

	// A stale writer appends to the closed file; then the new file is
	// rotated away and replaced before the next poll.
	appendFile(t, path+".1", "a2\n")
	require.NoError(t, os.Rename(path+".1", path+".2"))
	require.NoError(t, os.Rename(path, path+".1"))
	appendFile(t, path, "c1\n")
	require.Equal(t, []string{"a2", "c1"}, h.poll())
}

func gzipFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err = zw.Write(data)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(dst, buf.Bytes(), 0o644))
	require.NoError(t, os.Remove(src))
}

// logrotate's compress without delaycompress, twice in one interval: the
// intermediate file exists only compressed. Its bytes are counted as missed
// (exactly, from the gzip trailer) and logged; the compressed copy of the
// file the follower was reading is recognised and not counted.
func TestIntermediateCompressedIsCountedAsMissed(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, "")
	h := newHarness(t, path, nil)
	h.poll()
	a := text(seq("a", 0, 20))
	appendFile(t, path, a)
	require.Len(t, h.poll(), 20)

	require.NoError(t, os.Rename(path, path+".1"))
	gzipFile(t, path+".1", path+".1.gz")
	b := text(seq("b", 0, 300))
	appendFile(t, path, b)
	require.NoError(t, os.Rename(path+".1.gz", path+".2.gz"))
	require.NoError(t, os.Rename(path, path+".1"))
	gzipFile(t, path+".1", path+".1.gz")
	appendFile(t, path, "c\n")

	require.Equal(t, []string{"c"}, h.poll())
	st := h.f.Stats()
	require.Equal(t, uint64(len(b)), st.MissedBytes)
	require.Equal(t, 1, h.logs.count("may be lost"))

	// Counted once, not again at the next rotation.
	require.NoError(t, os.Rename(path, path+".1"))
	appendFile(t, path, "d\n")
	require.Equal(t, []string{"d"}, h.poll())
	require.Equal(t, uint64(len(b)), h.f.Stats().MissedBytes)
}

func TestRotatedName(t *testing.T) {
	for name, want := range map[string]bool{
		"app.log.1":          true,
		"app.log.12.gz":      true,
		"app.log-20261201":   true,
		"app.log_2026-12-01": true,
		"app.log":            false,
		"app.log.error":      false,
		"app.log1":           false,
		"app.logs.1":         false,
		"other.log.1":        false,
	} {
		require.Equal(t, want, rotatedName(name, "app.log"), name)
	}
}

// Rotated files already there when the follower starts hold lines from
// before the start: a rotation soon after, while such a file still looks
// recent, must not read them from offset 0; only lines added after the start
// are read.
func TestRotatedFilesFromBeforeStartAreNotReread(t *testing.T) {
	path := tempLog(t)
	appendFile(t, path, "")
	old := time.Now().Add(-time.Minute)
	require.NoError(t, os.Chtimes(path, old, old)) // app.log idle since its rotation
	appendFile(t, path+".1", text(seq("before-start", 0, 5)))
	h := newHarness(t, path, nil)
	h.poll()
	appendFile(t, path+".1", "after-start\n") // Gunicorn before its USR1

	require.NoError(t, os.Rename(path+".1", path+".2"))
	require.NoError(t, os.Rename(path, path+".1"))
	appendFile(t, path, "new\n")
	require.Equal(t, []string{"after-start", "new"}, h.poll())
}
