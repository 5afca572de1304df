package discovery

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
)

// AppDir keeps the release symlink of --chdir that the kernel's cwd has
// resolved, when the master's arguments are readable; titled (setproctitle)
// it falls back to the resolved cwd.
func TestDiscoverRealAppDir(t *testing.T) {
	base := t.TempDir()
	release := filepath.Join(base, "releases", "r1")
	require.NoError(t, os.MkdirAll(release, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(release, "reflexapp.py"), gunicorntest.AppSource, 0o644))
	current := filepath.Join(base, "current")
	require.NoError(t, os.Symlink("releases/r1", current))
	resolved, err := filepath.EvalSymlinks(release)
	require.NoError(t, err)
	fs := realFS(t)

	g := gunicorntest.Start(t, gunicorntest.Options{NoSetproctitle: true, ExtraArgs: []string{"--chdir", current}})
	m, _ := findMaster(t, fs, g.MasterPID())
	require.Equal(t, current, m.AppDir, "--chdir as given, through the release link")

	requireSetproctitle(t)
	g2 := gunicorntest.Start(t, gunicorntest.Options{ExtraArgs: []string{"--chdir", current}})
	m2, _ := findMaster(t, fs, g2.MasterPID())
	require.True(t, m2.Setproctitle)
	require.Equal(t, resolved, m2.AppDir, "titled: the resolved cwd")
}
