package follower

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeAccessLog writes Gunicorn-access-log-like lines (about 180 bytes, the
// average of the project's 2M-line/357 MB sample) until the file holds at
// least size bytes, and returns the size and line count.
func writeAccessLog(tb testing.TB, path string, size int64) (int64, int) {
	tb.Helper()
	fh, err := os.Create(path)
	require.NoError(tb, err)
	w := bufio.NewWriterSize(fh, 1<<20)
	var n int64
	lines := 0
	for n < size {
		k, err := fmt.Fprintf(w, "10.0.%d.%d - - [24/Nov/2026:20:%02d:%02d +0000] \"GET /api/v1/items/%d?page=%d HTTP/1.1\" %d %d \"-\" \"Mozilla/5.0 (X11; Linux x86_64) python-requests/2.31\" %d\n",
			lines%256, lines%200, lines/60%60, lines%60, lines, lines%17, 200+lines%5, 1000+lines%9000, lines%100000)
		require.NoError(tb, err)
		n += int64(k)
		lines++
	}
	require.NoError(tb, w.Flush())
	require.NoError(tb, fh.Close())
	return n, lines
}

// BenchmarkFollowerOneShot reads a ~50 MB file with OneShot, counting lines.
func BenchmarkFollowerOneShot(b *testing.B) {
	path := filepath.Join(b.TempDir(), "access.log")
	size, want := writeAccessLog(b, path, 50<<20)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		f, err := New(Options{Path: path, OneShot: true}, func([]byte) { n++ })
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		if n != want {
			b.Fatalf("got %d lines, want %d", n, want)
		}
	}
	b.ReportMetric(float64(want)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// The hot path allocates nothing per line: splitting a block allocates
// nothing, and a poll that reads 20k lines allocates only its fixed per-poll
// bookkeeping (stat results, error values).
func TestNoAllocationPerLine(t *testing.T) {
	block := []byte(text(seq("some log line with a bit of text", 0, 2000)))
	s := splitter{h: func([]byte) {}, max: DefaultMaxLineBytes, c: &counters{}}
	s.reset(false)
	ctx := context.Background()
	require.Zero(t, testing.AllocsPerRun(20, func() { s.write(ctx, block[:len(block)-7]); s.write(ctx, block[len(block)-7:]) }))

	path := tempLog(t)
	appendFile(t, path, "")
	h := newHarness(t, path, nil)
	h.poll()
	lines := 0
	h.f.h = func([]byte) { lines++ } // no collecting: measure the follower only
	h.f.cur.sp.h = h.f.h
	w := openAppend(t, path)
	chunk := text(seq("x", 0, 20000))
	allocs := testing.AllocsPerRun(5, func() {
		write(t, w, chunk)
		h.f.Poll()
	})
	require.Equal(t, 6*20000, lines)
	require.Less(t, allocs, 40.0, "per-poll allocations must not grow with the number of lines")
}

// BenchmarkRotationSearch is the cost a rename rotation adds for the search
// of files rotated out of sight (findSkipped): one directory listing and an
// lstat per entry, here 52 rotated files (a year of weekly logs) and 20
// unrelated ones, none of them a candidate.
func BenchmarkRotationSearch(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "app.log")
	for i := 1; i <= 52; i++ {
		require.NoError(b, os.WriteFile(fmt.Sprintf("%s.%d", path, i), []byte("old\n"), 0o644))
	}
	for i := range 20 {
		require.NoError(b, os.WriteFile(filepath.Join(dir, fmt.Sprintf("other%d.log", i)), nil, 0o644))
	}
	require.NoError(b, os.WriteFile(path, []byte("x\n"), 0o644))
	f, err := New(Options{Path: path}, func([]byte) {})
	require.NoError(b, err)
	defer func() { _ = f.Close() }()
	since := time.Now().Add(time.Hour) // every file is older: none is read
	b.ReportAllocs()
	for b.Loop() {
		f.findSkipped(since, time.Now(), fileID{})
	}
}
