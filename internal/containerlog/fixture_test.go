package containerlog

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/lifecycle"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
)

func fixtureLines(t *testing.T, name string) []string {
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	require.NoError(t, sc.Err())
	return out
}

// Files written by Docker's json-file code and containerd's CRI logger
// from a real Gunicorn's output decode, through the follower, to exactly
// the lines Gunicorn wrote on each stream, and give the same lifecycle
// counts as the plain stderr.
func TestRuntimeWrittenFixtures(t *testing.T) {
	wantErr, wantOut := fixtureLines(t, "gunicorn-stderr.log"), fixtureLines(t, "gunicorn-stdout.log")
	plain := lifecycle.NewTracker(lifecycle.Options{})
	for _, l := range wantErr {
		plain.ObserveLine([]byte(l))
	}
	for _, tc := range []struct {
		file   string
		format Format
	}{{"gunicorn-json.log", FormatDocker}, {"gunicorn-cri.log", FormatCRI}} {
		t.Run(tc.format.String(), func(t *testing.T) {
			var gotErr, gotOut []string
			tracker := lifecycle.NewTracker(lifecycle.Options{})
			src, err := NewSource(tc.format, follower.Options{Path: filepath.Join("testdata", tc.file), FromStart: true},
				func(s linesource.Stream, l []byte) {
					switch s {
					case linesource.StreamStderr:
						gotErr = append(gotErr, string(l))
						tracker.ObserveLine(l)
					case linesource.StreamStdout:
						gotOut = append(gotOut, string(l))
					default:
						t.Errorf("a line without a stream: %q", l)
					}
				})
			require.NoError(t, err)
			src.Poll()
			require.NoError(t, src.Close())
			require.Equal(t, wantErr, gotErr)
			require.Equal(t, wantOut, gotOut)
			require.Zero(t, src.DecodeFailures())
			st := src.Stats()
			require.Equal(t, uint64(len(wantErr)+len(wantOut)), st.Lines)
			require.Zero(t, st.OversizedLines)
			require.Equal(t, plain.Snapshot(), tracker.Snapshot())
			require.Equal(t, uint64(1), tracker.Snapshot().Timeouts)
		})
	}
}

// A joined line past MaxLineBytes is cut there and counted, on a real
// file: four 16 KiB pieces against a 40000-byte bound.
func TestSourceCutsLongJoinedLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	piece := make([]byte, 16<<10)
	for i := range piece {
		piece[i] = 'a'
	}
	var raw []byte
	for i := range 4 {
		tag := " P "
		if i == 3 {
			tag = " F "
		}
		raw = append(raw, "2026-12-01T19:27:56.000000001Z stdout"+tag...)
		raw = append(raw, piece...)
		raw = append(raw, '\n')
	}
	raw = append(raw, "2026-12-01T19:27:56.000000002Z stdout F next\n"...)
	require.NoError(t, os.WriteFile(path, raw, 0o600))
	var got []int
	src, err := NewSource(FormatCRI, follower.Options{Path: path, FromStart: true, MaxLineBytes: 40000},
		func(_ linesource.Stream, l []byte) { got = append(got, len(l)) })
	require.NoError(t, err)
	src.Poll()
	require.NoError(t, src.Close())
	require.Equal(t, []int{40000, 4}, got)
	st := src.Stats()
	require.Equal(t, uint64(1), st.OversizedLines)
	require.Equal(t, uint64(4*16<<10-40000), st.DiscardedBytes)
}
