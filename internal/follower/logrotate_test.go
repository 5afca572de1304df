package follower

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// TestRealLogrotate drives the real logrotate binary in both modes Gunicorn
// deployments use, with a writer that behaves like Gunicorn's FileHandler
// (O_APPEND, keeps its fd until it is told to reopen).
func TestRealLogrotate(t *testing.T) {
	bin := testenv.LookPath(t, "logrotate")

	rotate := func(t *testing.T, path, mode string) {
		t.Helper()
		dir := filepath.Dir(path)
		conf := filepath.Join(dir, "logrotate.conf")
		// mode comes last so that it can override nocompress.
		require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil,
			"%s {\n  rotate 5\n  missingok\n  nocompress\n  %s\n}\n", path, mode), 0o644))
		out, err := exec.Command(bin, "-f", "-s", filepath.Join(dir, "logrotate.state"), conf).CombinedOutput()
		require.NoError(t, err, "logrotate: %s", out)
	}

	t.Run("create, writer reopens late (rename + USR1)", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, "")
		h := newHarness(t, path, nil)
		h.poll()
		w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		require.NoError(t, err)
		defer func() { _ = w.Close() }()

		var want, got []string
		n := 0
		emit := func(k int) {
			lines := seq("l", n, n+k)
			n += k
			want = append(want, lines...)
			write(t, w, text(lines))
		}
		for range 3 {
			emit(100)
			got = append(got, h.poll()...)
			emit(50) // unread at rotation
			rotate(t, path, "create")
			emit(30) // Gunicorn has not had USR1 yet
			got = append(got, h.poll()...)
			emit(30)
			// USR1: reopen the path.
			require.NoError(t, w.Close())
			w, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			require.NoError(t, err)
			emit(40)
			got = append(got, h.poll()...)
		}
		require.Equal(t, want, got)
		require.Equal(t, wantRotations(3, 0, 0, 0), rotations(h.f.Stats()))
	})

	t.Run("copytruncate, writer regrows the file before the next poll", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, "")
		h := newHarness(t, path, nil)
		h.poll()
		w := openAppend(t, path)

		var want, got []string
		n := 0
		emit := func(k int) {
			lines := seq("l", n, n+k)
			n += k
			want = append(want, lines...)
			write(t, w, text(lines))
		}
		for range 3 {
			emit(100)
			got = append(got, h.poll()...)
			rotate(t, path, "copytruncate")
			emit(300) // past the old size before the follower looks
			got = append(got, h.poll()...)
		}
		require.Equal(t, want, got)
		require.Equal(t, wantRotations(0, 3, 0, 0), rotations(h.f.Stats()))
	})
	// Issue 9 item 7 with the real binary: two logrotate runs between two
	// polls, the writer reopening after each (USR1). Without compression the
	// intermediate file is drained; with compress (and no delaycompress) it
	// exists only as app.log.1.gz, and exactly its bytes are counted as
	// missed, while app.log.2.gz, the compressed copy of the file the
	// follower was reading, is not.
	for _, compress := range []bool{false, true} {
		mode, name := "create", "twice in one poll, nocompress"
		if compress {
			mode, name = "create\n  compress", "twice in one poll, compress"
		}
		t.Run(name, func(t *testing.T) {
			path := tempLog(t)
			appendFile(t, path, "")
			h := newHarness(t, path, nil)
			h.poll()
			var want, got []string
			appendFile(t, path, text(seq("a", 0, 100)))
			got = append(got, h.poll()...)
			appendFile(t, path, text(seq("a", 100, 150)))
			want = append(want, seq("a", 0, 150)...)
			rotate(t, path, mode)
			b := text(seq("b", 0, 1000))
			appendFile(t, path, b)
			if !compress {
				want = append(want, seq("b", 0, 1000)...)
			}
			rotate(t, path, mode)
			appendFile(t, path, text(seq("c", 0, 10)))
			want = append(want, seq("c", 0, 10)...)
			got = append(got, h.poll()...)
			require.Equal(t, want, got)
			if compress {
				require.Equal(t, uint64(len(b)), h.f.Stats().MissedBytes)
			} else {
				require.Zero(t, h.f.Stats().MissedBytes)
			}
		})
	}
}
