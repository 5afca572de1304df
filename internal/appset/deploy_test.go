package appset

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/deploy"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// A discovered master behind a release symlink and a configured marker
// file: each change is one deploy marker in the timeline, the first pass
// none.
func TestCheckDeploysMarksReleaseAndMarkerFile(t *testing.T) {
	dir := t.TempDir()
	for _, r := range []string{"r1", "r2"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "releases", r), 0o755))
	}
	require.NoError(t, os.Symlink("releases/r1", filepath.Join(dir, "current")))
	marker := filepath.Join(dir, "REVISION")
	require.NoError(t, os.WriteFile(marker, []byte("v1\n"), 0o644))

	m, tl := newManager(t)
	m.Apply(parse(t, "apps:\n  - name: web\n    deploy_marker: "+marker+"\n"))
	masters := []discovery.Master{{Name: "web", Identity: procinfo.Identity{PID: 4242}, AppDir: filepath.Join(dir, "current")}}
	deploys := func() []timeline.Event { return tl.Select(timeline.Query{Kinds: []string{timeline.KindDeploy}}) }

	m.checkDeploys(masters, true)
	require.Empty(t, deploys())

	require.NoError(t, os.Remove(filepath.Join(dir, "current")))
	require.NoError(t, os.Symlink("releases/r2", filepath.Join(dir, "current")))
	require.NoError(t, os.WriteFile(marker, []byte("v2\n"), 0o644))
	m.checkDeploys(masters, true)
	evs := deploys()
	require.Len(t, evs, 2)
	require.Equal(t, "web", evs[0].App)
	require.Equal(t, deploy.KindRelease, evs[0].Cause)
	require.Equal(t, filepath.Join(dir, "releases", "r2"), evs[0].Attrs["to"])
	require.Equal(t, deploy.KindMarker, evs[1].Cause)

	// Discovery off: a discovered master that no pidfile names is not
	// watched, the marker file still is.
	m.checkDeploys(masters, false)
	require.Len(t, deploys(), 2)
}
