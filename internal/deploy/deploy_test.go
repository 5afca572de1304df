package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
)

// tree writes files (path -> content) under a fresh root; a content
// starting with "->" makes a symbolic link to the rest.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		write(t, root, p, content)
	}
	return root
}

func write(t *testing.T, root, p, content string) { writeB(t, root, p, content) }

func writeB(t testing.TB, root, p, content string) {
	t.Helper()
	full := filepath.Join(root, p)
	require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
	if target, ok := strings.CutPrefix(content, "->"); ok {
		_ = os.Remove(full)
		require.NoError(t, os.Symlink(target, full))
		return
	}
	if strings.HasSuffix(p, "/") {
		require.NoError(t, os.MkdirAll(full, 0o755))
		return
	}
	require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
}

func TestObserve(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		dir   string
		check func(t *testing.T, st State)
	}{
		{
			name:  "relative release symlink",
			files: map[string]string{"srv/app/releases/r1/app.py": "", "srv/app/current": "->releases/r1"},
			dir:   "/srv/app/current",
			check: func(t *testing.T, st State) {
				require.Equal(t, "/srv/app/releases/r1", st.Release)
				require.Equal(t, "/srv/app/current", st.ReleaseLink)
				require.True(t, st.PyMtime.IsZero(), "no py scan when a release applies")
			},
		},
		{
			name:  "absolute release symlink in a parent, inside the root",
			files: map[string]string{"srv/app/releases/r2/web/app.py": "", "srv/app/current": "->/srv/app/releases/r2"},
			dir:   "/srv/app/current/web",
			check: func(t *testing.T, st State) { require.Equal(t, "/srv/app/releases/r2/web", st.Release) },
		},
		{
			name:  "git HEAD on a loose ref",
			files: map[string]string{"app/.git/HEAD": "ref: refs/heads/main\n", "app/.git/refs/heads/main": sha1 + "\n", "app/app.py": ""},
			dir:   "/app",
			check: func(t *testing.T, st State) {
				require.Equal(t, sha1, st.GitHead)
				require.Equal(t, "refs/heads/main", st.GitRef)
				require.True(t, st.PyMtime.IsZero())
			},
		},
		{
			name: "git HEAD in packed-refs, from a subdirectory",
			files: map[string]string{"repo/.git/HEAD": "ref: refs/heads/prod\n",
				"repo/.git/packed-refs": "# pack-refs with: peeled fully-peeled sorted\n" + sha2 + " refs/heads/prod\n^" + sha1 + "\n",
				"repo/src/app.py":       ""},
			dir:   "/repo/src",
			check: func(t *testing.T, st State) { require.Equal(t, sha2, st.GitHead) },
		},
		{
			name:  "detached HEAD",
			files: map[string]string{"app/.git/HEAD": sha2 + "\n"},
			dir:   "/app",
			check: func(t *testing.T, st State) {
				require.Equal(t, sha2, st.GitHead)
				require.Empty(t, st.GitRef)
			},
		},
		{
			name: "a .git file of a linked worktree",
			files: map[string]string{"wt/.git": "gitdir: /main/.git/worktrees/wt\n",
				"main/.git/worktrees/wt/HEAD": "ref: refs/heads/feature\n", "main/.git/worktrees/wt/commondir": "../..\n",
				"main/.git/refs/heads/feature": sha1 + "\n"},
			dir:   "/wt",
			check: func(t *testing.T, st State) { require.Equal(t, sha1, st.GitHead) },
		},
		{
			name: "py scan skips virtualenvs and caches",
			files: map[string]string{"app/app.py": "", "app/pkg/mod.py": "", "app/venv/lib/x.py": "", "app/__pycache__/app.py": "",
				"app/notes.txt": ""},
			dir: "/app",
			check: func(t *testing.T, st State) {
				require.Equal(t, 2, st.PyFiles)
				require.False(t, st.PyTruncated)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tree(t, tc.files)
			st, err := Observe(Options{Root: root}, Target{Dir: tc.dir})
			require.NoError(t, err)
			tc.check(t, st)
		})
	}
}

func TestObserveIsBounded(t *testing.T) {
	files := map[string]string{}
	for i := 0; i < 30; i++ {
		files[filepath.Join("app", "m"+strings.Repeat("x", i%5), string(rune('a'+i%26))+".py")] = ""
	}
	files["app/a/b/c/d/e/deep.py"] = ""
	root := tree(t, files)
	st, err := Observe(Options{Root: root, MaxFiles: 10}, Target{Dir: "/app"})
	require.NoError(t, err)
	require.Equal(t, 10, st.PyFiles)
	require.True(t, st.PyTruncated)

	st, err = Observe(Options{Root: root, MaxDepth: 2}, Target{Dir: "/app"})
	require.NoError(t, err)
	require.NotEqual(t, "/app/a/b/c/d/e/deep.py", st.PyNewest)
}

func TestObserveBadInput(t *testing.T) {
	root := tree(t, map[string]string{
		"loop/a": "->b", "loop/b": "->a",
		"bad/.git/HEAD":  "ref: ../../etc/passwd\n",
		"junk/.git/HEAD": "hello\n",
		"gitfile/.git":   "not a gitdir line\n",
	})
	for _, tc := range []struct{ dir, want string }{
		{"relative/dir", "not absolute"},
		{"/loop/a", "too many symbolic links"},
		{"/missing", "no such file"},
		{"/bad", "not a ref"},
		{"/junk", "neither a ref nor a commit"},
		{"/gitfile", "neither a directory nor a gitdir file"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			st, err := Observe(Options{Root: root}, Target{Dir: tc.dir})
			require.ErrorContains(t, err, tc.want)
			require.Empty(t, st.GitHead)
			require.Empty(t, st.Release)
		})
	}
	_, err := Observe(Options{Root: root}, Target{MarkerFile: "rel/marker"})
	require.ErrorContains(t, err, "not absolute")
	_, err = Observe(Options{Root: root}, Target{MarkerFile: "/loop/"})
	require.ErrorContains(t, err, "not a regular file")
}

func TestCompare(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		prev, next State
		kinds      []string
		detail     string
	}{
		{"nothing changed", State{Release: "/r1", GitHead: sha1}, State{Release: "/r1", GitHead: sha1}, nil, ""},
		{"release", State{Release: "/srv/releases/r1"}, State{Release: "/srv/releases/r2", ReleaseLink: "/srv/current", ReleaseTime: t0},
			[]string{KindRelease}, "release symlink /srv/current now points to /srv/releases/r2 (was /srv/releases/r1)"},
		{"git", State{GitHead: sha1}, State{GitHead: sha2, GitRef: "refs/heads/main"}, []string{KindGitHead},
			"git HEAD (refs/heads/main) is now 222222222222 (was 111111111111)"},
		{"py mtime newer", State{PyMtime: t0}, State{PyMtime: t0.Add(time.Second), PyNewest: "/app/views.py"}, []string{KindPyMtime}, "/app/views.py"},
		{"py mtime older is not a deploy (a file removed)", State{PyMtime: t0}, State{PyMtime: t0.Add(-time.Second)}, nil, ""},
		{"marker text", State{Marker: "v1", MarkerSeen: true}, State{Marker: "v2", MarkerSeen: true}, []string{KindMarker}, `says "v2" (was "v1")`},
		{"empty marker touched", State{MarkerSeen: true, MarkerTime: t0}, State{MarkerSeen: true, MarkerTime: t0.Add(time.Minute)}, []string{KindMarker}, ""},
		{"unread parts are no change", State{Release: "/r1", GitHead: sha1, Marker: "v1", MarkerSeen: true}, State{}, nil, ""},
		{"release and git at once", State{Release: "/r1", GitHead: sha1}, State{Release: "/r2", GitHead: sha2}, []string{KindRelease, KindGitHead}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(tc.prev, tc.next)
			var kinds []string
			for _, c := range got {
				kinds = append(kinds, c.Kind)
			}
			require.Equal(t, tc.kinds, kinds)
			if tc.detail != "" {
				require.Contains(t, got[0].Detail, tc.detail)
			}
		})
	}
}

// TestDetectorReleaseSwitch is the Capistrano flow: current -> r1, then
// current -> r2 made by renaming a new link over it.
func TestDetectorReleaseSwitch(t *testing.T) {
	root := tree(t, map[string]string{"srv/app/releases/r1/app.py": "", "srv/app/releases/r2/app.py": "", "srv/app/current": "->releases/r1"})
	tl := timeline.New(16, 0)
	d := NewDetector(tl, Options{Root: root})
	now := time.Now().Add(-time.Minute)
	target := Target{Dir: "/srv/app/current"}
	evs, err := d.Check("web", target, now)
	require.NoError(t, err)
	require.Empty(t, evs, "the first observation is a baseline")

	evs, err = d.Check("web", target, now.Add(time.Second))
	require.NoError(t, err)
	require.Empty(t, evs)

	tmp := filepath.Join(root, "srv/app/current.tmp")
	require.NoError(t, os.Symlink("releases/r2", tmp))
	require.NoError(t, os.Rename(tmp, filepath.Join(root, "srv/app/current")))
	evs, err = d.Check("web", target, now.Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, evs, 1)
	ev := evs[0]
	require.Equal(t, timeline.SourceDeploy, ev.Source)
	require.Equal(t, timeline.KindDeploy, ev.Kind)
	require.Equal(t, KindRelease, ev.Cause)
	require.Equal(t, "/srv/app/releases/r2", ev.Attrs["to"])
	require.Equal(t, "/srv/app/releases/r1", ev.Attrs["from"])
	// Dated by the link's mtime (just now), not by when it was noticed.
	require.False(t, ev.Time.After(time.Now()), "event time %v", ev.Time)
	require.False(t, ev.Time.Before(now.Add(time.Second)), "never before the previous observation")
	require.Len(t, tl.Select(timeline.Query{Kinds: []string{timeline.KindDeploy}}), 1)

	evs, err = d.Check("web", target, now.Add(2*time.Hour))
	require.NoError(t, err)
	require.Empty(t, evs, "one change, one marker")
}

func TestDetectorGitCommitAndMarker(t *testing.T) {
	root := tree(t, map[string]string{"app/.git/HEAD": "ref: refs/heads/main\n", "app/.git/refs/heads/main": sha1 + "\n",
		"etc/version": "v1.0\n"})
	d := NewDetector(nil, Options{Root: root})
	target := Target{Dir: "/app", MarkerFile: "/etc/version"}
	now := time.Now()
	_, err := d.Check("web", target, now)
	require.NoError(t, err)

	write(t, root, "app/.git/refs/heads/main", sha2+"\n")
	write(t, root, "etc/version", "v1.1\n")
	evs, err := d.Check("web", target, now.Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, KindGitHead, evs[0].Cause)
	require.Equal(t, sha2, evs[0].Attrs["to"])
	require.Equal(t, KindMarker, evs[1].Cause)
	require.Equal(t, "v1.1", evs[1].Attrs["to"])

	// A ref that cannot be read for a moment (a push rewriting it) is no
	// deploy, and neither is its return.
	require.NoError(t, os.Remove(filepath.Join(root, "app/.git/refs/heads/main")))
	evs, err = d.Check("web", target, now.Add(2*time.Minute))
	require.NoError(t, err, "a missing loose ref without packed-refs is an unborn branch")
	require.Empty(t, evs)
	write(t, root, "app/.git/refs/heads/main", sha2+"\n")
	evs, _ = d.Check("web", target, now.Add(3*time.Minute))
	require.Empty(t, evs)
}

func TestDetectorPyMtimeAndNewTarget(t *testing.T) {
	root := tree(t, map[string]string{"app/app.py": "", "other/app.py": ""})
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(root, "app/app.py"), old, old))
	d := NewDetector(nil, Options{Root: root})
	now := time.Now()
	_, err := d.Check("web", Target{Dir: "/app"}, now)
	require.NoError(t, err)
	write(t, root, "app/views.py", "")
	evs, err := d.Check("web", Target{Dir: "/app"}, now.Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, KindPyMtime, evs[0].Cause)
	require.Contains(t, evs[0].Detail, "/app/views.py")

	evs, err = d.Check("web", Target{Dir: "/other"}, now.Add(2*time.Minute))
	require.NoError(t, err)
	require.Empty(t, evs, "another directory is a new baseline")
}

func TestDetectorIsBounded(t *testing.T) {
	d := NewDetector(nil, Options{Root: t.TempDir()})
	now := time.Now()
	for i := 0; i < MaxApps+10; i++ {
		_, _ = d.Check(strings.Repeat("a", 1+i%7)+string(rune('A'+i%26))+time.Duration(i).String(), Target{}, now.Add(time.Duration(i)))
	}
	require.LessOrEqual(t, len(d.last), MaxApps)
}

// A master's cwd is already resolved (releases/r1): the release link is
// found next to the releases directory.
func TestObserveReleaseFromResolvedCwd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"current", map[string]string{"srv/app/releases/r1/": "", "srv/app/releases/r2/": "", "srv/app/current": "->releases/r2"}, "/srv/app/releases/r2"},
		{"current wins over previous", map[string]string{"srv/app/releases/r1/": "", "srv/app/releases/r2/": "",
			"srv/app/current": "->releases/r2", "srv/app/previous": "->releases/r1"}, "/srv/app/releases/r2"},
		{"the link at the directory", map[string]string{"srv/app/releases/r1/": "", "srv/app/releases/r0/": "",
			"srv/app/live": "->releases/r1", "srv/app/old": "->releases/r0"}, "/srv/app/releases/r1"},
		{"two other links: no answer", map[string]string{"srv/app/releases/r1/": "", "srv/app/releases/r2/": "", "srv/app/releases/r3/": "",
			"srv/app/a": "->releases/r2", "srv/app/b": "->releases/r3"}, ""},
		{"links elsewhere do not count", map[string]string{"srv/app/releases/r1/": "", "srv/app/logs": "->/var/log"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tree(t, tc.files)
			st, err := Observe(Options{Root: root}, Target{Dir: "/srv/app/releases/r1"})
			require.NoError(t, err)
			require.Equal(t, tc.want, st.Release)
		})
	}
}
