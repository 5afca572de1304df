//go:build linux

package follower

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// dropFileCapabilities makes permission bits bind this test even as root (CI
// runs tests as root, where chmod 000 blocks nothing): it locks the test
// goroutine to its OS thread and clears CAP_DAC_OVERRIDE and
// CAP_DAC_READ_SEARCH from that thread's effective set. Poll, called from the
// test goroutine, makes its syscalls on this thread. The capabilities stay
// permitted and are restored at cleanup; if that fails the thread stays
// locked and exits with the goroutine.
func dropFileCapabilities(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		return // permission bits already apply
	}
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var orig [2]unix.CapUserData
	if err := unix.Capget(&hdr, &orig[0]); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("capget: %v", err)
	}
	data := orig
	data[0].Effective &^= 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_DAC_READ_SEARCH
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("capset: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Capset(&hdr, &orig[0]); err != nil {
			t.Errorf("restoring capabilities: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})
}

// requireDenied fails the test when the setup does not actually deny access,
// so the test can never pass without exercising the error path.
func requireDenied(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("setup did not deny access (err = %v); the permission path would not be exercised", err)
	}
}

// A11: permission denied on the new file after a rotation, on the file from
// start-up, and on its directory. The follower never exits, counts every
// failed attempt, logs once per state change, and recovers.
func TestPermissionDenied(t *testing.T) {
	t.Run("chmod 000 on the new file after rotation", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, "")
		h := newHarness(t, path, nil)
		h.poll()
		dropFileCapabilities(t)

		appendFile(t, path, text(seq("a", 0, 5)))
		require.Equal(t, seq("a", 0, 5), h.poll())
		require.NoError(t, os.Rename(path, path+".1"))
		w := openAppend(t, path)
		write(t, w, text(seq("b", 0, 5)))
		require.NoError(t, os.Chmod(path, 0))
		_, err := os.Open(path)
		requireDenied(t, err)

		for range 10 {
			require.Empty(t, h.poll())
		}
		st := h.f.Stats()
		require.False(t, st.Open)
		require.Equal(t, uint64(10), st.ReadErrors)
		require.Contains(t, st.LastError, "permission denied")
		require.Equal(t, wantRotations(1, 0, 0, 0), rotations(st))
		require.Equal(t, 1, h.logs.count("level=WARN"), "one log line per state change, not per poll")

		write(t, w, text(seq("b", 5, 10)))
		require.NoError(t, os.Chmod(path, 0o644))
		require.Equal(t, seq("b", 0, 10), h.poll(), "the rotated-in file is read from offset 0")
		st = h.f.Stats()
		require.True(t, st.Open)
		require.Empty(t, st.LastError)
		require.Equal(t, uint64(10), st.ReadErrors)
		require.Equal(t, 1, h.logs.count("readable again"))
	})

	t.Run("unreadable from start", func(t *testing.T) {
		path := tempLog(t)
		w := openAppend(t, path)
		write(t, w, text(seq("before-start", 0, 5)))
		require.NoError(t, os.Chmod(path, 0))
		h := newHarness(t, path, nil)
		dropFileCapabilities(t)
		_, err := os.Open(path)
		requireDenied(t, err)

		for range 3 {
			require.Empty(t, h.poll())
		}
		require.Equal(t, uint64(3), h.f.Stats().ReadErrors)
		write(t, w, text(seq("after-start", 0, 5)))
		require.NoError(t, os.Chmod(path, 0o644))
		require.Equal(t, seq("after-start", 0, 5), h.poll(),
			"reading starts at the size seen at start-up: nothing older, nothing newer lost")
		require.True(t, h.f.Stats().Open)
	})

	t.Run("directory not searchable", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "logs")
		require.NoError(t, os.Mkdir(dir, 0o755))
		path := filepath.Join(dir, "app.log")
		w := openAppend(t, path)
		h := newHarness(t, path, nil)
		h.poll()
		dropFileCapabilities(t)

		require.NoError(t, os.Chmod(dir, 0))
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		_, err := os.Stat(path)
		requireDenied(t, err)

		write(t, w, text(seq("x", 0, 5)))
		require.Equal(t, seq("x", 0, 5), h.poll(), "the open file is still read")
		st := h.f.Stats()
		require.Equal(t, uint64(1), st.ReadErrors)
		require.Contains(t, st.LastError, "permission denied")
		require.True(t, st.Open)
		require.Equal(t, wantRotations(0, 0, 0, 0), rotations(st))

		require.NoError(t, os.Chmod(dir, 0o755))
		write(t, w, text(seq("x", 5, 10)))
		require.Equal(t, seq("x", 5, 10), h.poll())
		require.Empty(t, h.f.Stats().LastError)
		require.Equal(t, 1, h.logs.count("level=WARN"))
	})
	t.Run("intermediate file of two rotations in one poll unreadable", func(t *testing.T) {
		path := tempLog(t)
		appendFile(t, path, "")
		h := newHarness(t, path, nil)
		h.poll()
		dropFileCapabilities(t)

		b := text(seq("b", 0, 50))
		require.NoError(t, os.Rename(path, path+".1"))
		appendFile(t, path, b)
		require.NoError(t, os.Chmod(path, 0))
		require.NoError(t, os.Rename(path+".1", path+".2"))
		require.NoError(t, os.Rename(path, path+".1"))
		appendFile(t, path, "c\n")
		_, err := os.Open(path + ".1")
		requireDenied(t, err)

		require.Equal(t, []string{"c"}, h.poll())
		// Another rotation: the unreadable file is a candidate again (its
		// mtime may equal the last one seen) but is not counted again.
		require.NoError(t, os.Rename(path+".1", path+".2"))
		require.NoError(t, os.Rename(path, path+".1"))
		appendFile(t, path, "d\n")
		require.Equal(t, []string{"d"}, h.poll())
		require.Equal(t, uint64(len(b)), h.f.Stats().MissedBytes, "counted once, with its size")
		require.Equal(t, 1, h.logs.count("may be lost"))
	})
	t.Run("directory not listable at two rotations in one poll", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "logs")
		require.NoError(t, os.Mkdir(dir, 0o755))
		path := filepath.Join(dir, "app.log")
		appendFile(t, path, "")
		h := newHarness(t, path, nil)
		h.poll()
		dropFileCapabilities(t)

		appendFile(t, path, "a\n")
		require.NoError(t, os.Rename(path, path+".1"))
		appendFile(t, path, "b\n")
		require.NoError(t, os.Rename(path+".1", path+".2"))
		require.NoError(t, os.Rename(path, path+".1"))
		appendFile(t, path, "c\n")
		require.NoError(t, os.Chmod(dir, 0o311)) // search, no read
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		_, err := os.ReadDir(dir)
		requireDenied(t, err)

		require.Equal(t, []string{"a", "c"}, h.poll(), "the open and the new file are read")
		require.Equal(t, 1, h.logs.count("cannot list the log directory"), "the possible loss is logged")
	})
}
