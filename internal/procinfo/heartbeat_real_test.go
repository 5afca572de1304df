package procinfo_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// These tests run a real Gunicorn through gunicorntest, which itself uses
// procinfo (pidfiles, signals), so they live in the external test package.

// TestRealHeartbeat reads a real worker's heartbeat file: the worker holds
// one, the master one per worker (same inodes), and an idle worker's ctime
// advances every timeout/2.
func TestRealHeartbeat(t *testing.T) {
	t.Parallel()
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 2, Timeout: 2, NoSetproctitle: true})
	master := g.MasterPID()
	ws := g.WorkerPIDs()
	require.Len(t, ws, 2)

	mhb, err := fs.HeartbeatFDs(master)
	require.NoError(t, err)
	require.Len(t, mhb, 2)
	inodes := []uint64{mhb[0].Inode, mhb[1].Inode}
	kids, err := fs.Children(master)
	require.NoError(t, err)
	require.Equal(t, ws, kids)

	first, ok, err := fs.HeartbeatFD(ws[0])
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 1, first.Count)
	require.Contains(t, inodes, first.Inode)
	require.Regexp(t, `wgunicorn-[a-z0-9_]{8}$`, first.Path)
	require.WithinDuration(t, time.Now(), first.Ctime, 3*time.Second)

	require.Eventually(t, func() bool {
		hb, ok, err := fs.HeartbeatFD(ws[0])
		return err == nil && ok && hb.Ctime.After(first.Ctime)
	}, 5*time.Second, 50*time.Millisecond, "an idle worker notifies every timeout/2 = 1 s")

	wid, err := fs.Identify(ws[0])
	require.NoError(t, err)
	mid, err := fs.Identify(master)
	require.NoError(t, err)
	g.Stop()
	require.ErrorIs(t, fs.Verify(mid), procinfo.ErrGone)
	require.ErrorIs(t, fs.Verify(wid), procinfo.ErrGone)
}
