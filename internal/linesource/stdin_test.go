package linesource

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The Reader passes whole lines, cuts long ones and counts them, keeps a
// last line without a newline, drops and counts what does not fit the
// queue, and copies its input to Tee as read.
func TestReader(t *testing.T) {
	in := "one\n" + strings.Repeat("x", 100) + "\n\nlast"
	var tee bytes.Buffer
	rd := NewReader(strings.NewReader(in), ReaderOptions{MaxLineBytes: 10, Tee: &tee})
	rd.Run()
	var got []string
	src := rd.Source(func(_ Stream, l []byte) { got = append(got, string(l)) })
	src.Poll()
	require.Equal(t, []string{"one", "xxxxxxxxxx", "", "last"}, got)
	st := src.Stats()
	require.Equal(t, uint64(4), st.Lines)
	require.Equal(t, uint64(len(in)), st.Bytes)
	require.Equal(t, uint64(1), st.OversizedLines)
	require.Equal(t, uint64(90), st.DiscardedBytes)
	require.False(t, st.Open, "the input ended")
	require.Equal(t, in, tee.String())

	small := NewReader(strings.NewReader("aaaa\nbbbb\ncccc\n"), ReaderOptions{MaxQueueBytes: 9})
	small.Run()
	got = nil
	s2 := small.Source(func(_ Stream, l []byte) { got = append(got, string(l)) })
	s2.Poll()
	require.Equal(t, []string{"aaaa", "bbbb"}, got)
	require.Equal(t, uint64(5), s2.Stats().MissedBytes)
}

// A line longer than the read buffer (64 KiB) is joined whole.
func TestReaderLongLine(t *testing.T) {
	long := strings.Repeat("y", 150000)
	rd := NewReader(strings.NewReader(long+"\nz\n"), ReaderOptions{MaxLineBytes: 1 << 20})
	rd.Run()
	var got []string
	rd.Source(func(_ Stream, l []byte) { got = append(got, string(l)) }).Poll()
	require.Equal(t, []string{long, "z"}, got)
}
