package procinfo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRestatHeartbeat: the file found by HeartbeatFDs is stat()ed again;
// a closed fd, or an fd that now names another file, is ErrGone.
func TestRestatHeartbeat(t *testing.T) {
	fs, dir := writeTree(t, []fakeProc{workers[0]}, rootfs)
	hb, ok, err := fs.HeartbeatFD(101)
	require.NoError(t, err)
	require.True(t, ok)

	again, err := fs.RestatHeartbeat(101, hb)
	require.NoError(t, err)
	require.Equal(t, hb, again)

	other := hb
	other.Inode++
	_, err = fs.RestatHeartbeat(101, other)
	require.ErrorIs(t, err, ErrGone)

	require.NoError(t, os.Remove(filepath.Join(dir, "proc", "101", "fd", "7")))
	require.NoError(t, os.Remove(filepath.Join(dir, "rootfs", "tmp", "wgunicorn-abcd1234 (deleted)")))
	_, err = fs.RestatHeartbeat(101, hb)
	require.ErrorIs(t, err, ErrGone)
}
