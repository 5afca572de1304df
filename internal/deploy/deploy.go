// Package deploy detects that an app's code changed on a bare host, without
// the app's help, and turns each change into a deploy marker for the event
// timeline. It reads only files; where they are is injected (Options.Root,
// a master's /proc/<pid>/root or a test directory), and comparing two
// observations is a pure function.
//
// What is read, in this order, for the app directory (the master's --chdir,
// else the directory it started in):
//
//  1. A release symlink: when a component of the app directory is a
//     symbolic link (Capistrano's and Ansible's `current -> releases/...`),
//     the directory it resolves to is the release; a new target is a deploy.
//     When the directory was reached without a link (the kernel's resolved
//     cwd of a master whose --chdir setproctitle hid), a link next to its
//     releases directory that points into it is the release link.
//  2. The git HEAD of the app directory (or of the nearest parent holding
//     .git, at most MaxGitUp levels up): .git/HEAD and the ref it names,
//     loose or in packed-refs, read as files (no git binary). A new commit is
//     a deploy. A .git file ("gitdir: ...", worktrees and submodules) is
//     followed.
//  3. Only when neither applies: the newest modification time of the app's
//     *.py files, from a bounded scan (MaxFiles files, MaxDepth levels,
//     skipping .git, __pycache__, virtualenvs and node_modules). A newer
//     time is a deploy.
//
// And, when the config names one (apps[].deploy_marker), a marker file:
// its first line (a version, a commit) or, when empty, its mtime. A change
// is a deploy.
//
// The first observation of an app is a baseline and never a deploy: an
// exporter that starts after a release must not report one. A file that
// cannot be read is not a change either (the fingerprint keeps its last
// value), so a permission problem or a half-written ref never looks like a
// deploy.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// How a deploy was detected: the closed set of Change.Kind values (and the
// Cause of the timeline's deploy events, with KindAPI for POST
// /api/v1/deploys).
const (
	KindRelease = "release_symlink"
	KindGitHead = "git_head"
	KindPyMtime = "py_mtime"
	KindMarker  = "marker_file"
	KindAPI     = "api"
)

// Defaults of Options.
const (
	DefaultMaxFiles       = 2000
	DefaultMaxDepth       = 4
	DefaultMaxMarkerBytes = 256
	MaxGitUp              = 3
	// maxRefBytes bounds a read of .git/HEAD or a loose ref.
	maxRefBytes = 4096
	// maxPackedRefsBytes bounds a read of packed-refs (a repository with
	// many tags can have a large one).
	maxPackedRefsBytes = 4 << 20
)

// Options configure observation. Zero values select the defaults.
type Options struct {
	// Root is prepended to every path read: "" or "/" for this host's
	// files, "/proc/<pid>/root" for the files as a master in another mount
	// namespace sees them, a temporary directory in tests.
	Root string
	// MaxFiles bounds how many *.py files one scan looks at (default 2000);
	// MaxDepth how many directory levels below the app directory it
	// enters (default 4).
	MaxFiles, MaxDepth int
	// MaxMarkerBytes bounds how much of the marker file's first line is
	// kept (default 256).
	MaxMarkerBytes int
}

func (o Options) withDefaults() Options {
	if o.MaxFiles <= 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxMarkerBytes <= 0 {
		o.MaxMarkerBytes = DefaultMaxMarkerBytes
	}
	return o
}

// Target is what is observed of one app.
type Target struct {
	// Dir is the app directory as the master was told it (--chdir, or
	// the PWD it started in): absolute, possibly through a release
	// symlink. Empty: only the marker file is read.
	Dir string
	// MarkerFile is apps[].deploy_marker, absolute; empty for none.
	MarkerFile string
}

// State is one observation: the fingerprint of an app's code.
type State struct {
	// Release is the directory Dir resolves to when a component of it is
	// a symbolic link, "" otherwise. ReleaseTime is the link's mtime:
	// when it was made to point there.
	Release     string
	ReleaseLink string // the symlink itself (e.g. /srv/app/current)
	ReleaseTime time.Time

	// GitHead is the commit HEAD points to, GitRef the ref it names
	// ("refs/heads/main"; "" for a detached HEAD). GitTime is the mtime
	// of the file that said so (the loose ref, packed-refs or HEAD).
	GitHead, GitRef string
	GitTime         time.Time

	// PyMtime is the newest mtime of the scanned *.py files, PyNewest the
	// file, PyFiles how many were scanned, PyTruncated whether the scan
	// stopped at MaxFiles. Only filled when there is no release and no
	// git HEAD.
	PyMtime     time.Time
	PyNewest    string
	PyFiles     int
	PyTruncated bool

	// Marker is the marker file's first line, MarkerTime its mtime;
	// MarkerSeen says the file was read.
	Marker     string
	MarkerTime time.Time
	MarkerSeen bool
}

// Change is one deploy found by comparing two observations.
type Change struct {
	Kind     string    // a Kind* constant
	From, To string    // the old and new release, commit, mtime or marker
	Time     time.Time // when the change happened, from the files' mtimes; zero when unknown
	// Detail is a sentence for people: "release symlink /srv/app/current
	// now points to /srv/app/releases/r2 (was /srv/app/releases/r1)".
	Detail string
}

// Observe reads the fingerprint of t. Parts that cannot be read stay
// empty; err joins what went wrong, for logging, and never stops the
// other parts.
func Observe(opts Options, t Target) (State, error) {
	opts = opts.withDefaults()
	var st State
	var errs []error
	if t.Dir != "" {
		if !path.IsAbs(t.Dir) {
			errs = append(errs, fmt.Errorf("app directory %q is not absolute", t.Dir))
		} else {
			dir := path.Clean(t.Dir)
			if err := st.readRelease(opts.Root, dir); err != nil {
				errs = append(errs, err)
			}
			real := dir
			if st.Release != "" {
				real = st.Release
			}
			if err := st.readGit(opts.Root, real); err != nil {
				errs = append(errs, err)
			}
			if st.Release == "" && st.GitHead == "" {
				if err := st.scanPy(opts, real); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if t.MarkerFile != "" {
		if err := st.readMarker(opts, t.MarkerFile); err != nil {
			errs = append(errs, err)
		}
	}
	return st, errors.Join(errs...)
}

// host maps an absolute path as the master sees it to this process's view.
func host(root, p string) string {
	if root == "" || root == "/" {
		return filepath.FromSlash(p)
	}
	return filepath.Join(root, filepath.FromSlash(p))
}

// maxLinks bounds symlink resolution, like the kernel's ELOOP limit.
const maxLinks = 40

// readRelease resolves dir component by component inside root; the last
// symbolic link met is the release link.
func (st *State) readRelease(root, dir string) error {
	resolved := "/"
	rest := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	links := 0
	var link string
	var linkTime time.Time
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, c)
		fi, err := os.Lstat(host(root, next))
		if err != nil {
			return fmt.Errorf("app directory %s: %w", dir, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		if links > maxLinks {
			return fmt.Errorf("app directory %s: too many symbolic links", dir)
		}
		target, err := os.Readlink(host(root, next))
		if err != nil {
			return fmt.Errorf("app directory %s: %w", dir, err)
		}
		link, linkTime = next, fi.ModTime()
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
	}
	if link != "" {
		st.Release, st.ReleaseLink, st.ReleaseTime = resolved, link, linkTime
		return nil
	}
	return st.readReleaseSibling(root, resolved)
}

// maxSiblings bounds how many entries of a releases directory's parent
// are looked at for the release link.
const maxSiblings = 64

// readReleaseSibling finds the release link of a directory that was
// reached without one: the kernel has already resolved a master's cwd
// (setproctitle hides its --chdir, and its PWD), so /srv/app/releases/r1
// is all there is. The link is then a symbolic link in the releases
// directory's parent (/srv/app/current) that points into that releases
// directory: the one named "current" if there is one, else the one
// pointing at dir itself, else the only one (more than one is no answer).
func (st *State) readReleaseSibling(root, dir string) error {
	releases := path.Dir(dir)
	if releases == "/" || releases == "." {
		return nil
	}
	parent := path.Dir(releases)
	entries, err := os.ReadDir(host(root, parent))
	if err != nil {
		return nil // nothing to read is no release, not a fault
	}
	var current, atDir, only *State
	n := 0
	for i, e := range entries {
		if i >= maxSiblings {
			break
		}
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		cand := &State{}
		link := path.Join(parent, e.Name())
		if err := cand.readRelease(root, link); err != nil || cand.ReleaseLink != link || path.Dir(cand.Release) != releases {
			continue
		}
		n++
		switch {
		case e.Name() == "current":
			current = cand
		case cand.Release == dir && atDir == nil:
			atDir = cand
		default:
			only = cand
		}
	}
	pick := current
	if pick == nil {
		pick = atDir
	}
	if pick == nil && n == 1 {
		pick = only
	}
	if pick != nil {
		st.Release, st.ReleaseLink, st.ReleaseTime = pick.Release, pick.ReleaseLink, pick.ReleaseTime
	}
	return nil
}

// readGit finds .git in dir or up to MaxGitUp parents and reads HEAD.
func (st *State) readGit(root, dir string) error {
	d := dir
	for i := 0; i <= MaxGitUp; i++ {
		gitDir, ok, err := findGitDir(root, d)
		if err != nil {
			return err
		}
		if ok {
			return st.readHead(root, gitDir)
		}
		if d == "/" {
			break
		}
		d = path.Dir(d)
	}
	return nil
}

// findGitDir returns the git directory of a work tree at d: d/.git, or
// the directory a .git file names.
func findGitDir(root, d string) (string, bool, error) {
	p := path.Join(d, ".git")
	fi, err := os.Stat(host(root, p))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("git: %w", err)
	}
	if fi.IsDir() {
		return p, true, nil
	}
	b, _, err := readSmall(host(root, p), maxRefBytes)
	if err != nil {
		return "", false, fmt.Errorf("git: %w", err)
	}
	target, ok := strings.CutPrefix(firstLine(b), "gitdir: ")
	if !ok || target == "" {
		return "", false, fmt.Errorf("git: %s is neither a directory nor a gitdir file", p)
	}
	if !path.IsAbs(target) {
		target = path.Join(d, target)
	}
	return path.Clean(target), true, nil
}

func (st *State) readHead(root, gitDir string) error {
	b, mt, err := readSmall(host(root, path.Join(gitDir, "HEAD")), maxRefBytes)
	if err != nil {
		return fmt.Errorf("git HEAD: %w", err)
	}
	head := firstLine(b)
	ref, symbolic := strings.CutPrefix(head, "ref: ")
	if !symbolic {
		if !isHex(head) {
			return fmt.Errorf("git HEAD of %s: %q is neither a ref nor a commit", gitDir, head)
		}
		st.GitHead, st.GitTime = head, mt
		return nil
	}
	ref = strings.TrimSpace(ref)
	if !strings.HasPrefix(ref, "refs/") || strings.Contains(ref, "..") {
		return fmt.Errorf("git HEAD of %s names %q, not a ref", gitDir, ref)
	}
	// A linked worktree keeps HEAD in its own directory and refs in the
	// common one.
	common := gitDir
	if c, _, err := readSmall(host(root, path.Join(gitDir, "commondir")), maxRefBytes); err == nil {
		if cd := firstLine(c); cd != "" {
			if !path.IsAbs(cd) {
				cd = path.Join(gitDir, cd)
			}
			common = path.Clean(cd)
		}
	}
	for _, d := range uniq(gitDir, common) {
		b, mt, err := readSmall(host(root, path.Join(d, ref)), maxRefBytes)
		if err == nil && isHex(firstLine(b)) {
			st.GitHead, st.GitRef, st.GitTime = firstLine(b), ref, mt
			return nil
		}
	}
	commit, mt, err := packedRef(host(root, path.Join(common, "packed-refs")), ref)
	if err != nil {
		return fmt.Errorf("git ref %s of %s: %w", ref, gitDir, err)
	}
	if commit == "" {
		// An unborn branch (a fresh repository): nothing to compare yet.
		return nil
	}
	st.GitHead, st.GitRef, st.GitTime = commit, ref, mt
	return nil
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// packedRef finds ref in a packed-refs file ("<sha> <ref>" lines; "^<sha>"
// lines peel the tag above and are skipped).
func packedRef(file, ref string) (string, time.Time, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", time.Time{}, err
	}
	sc := bufio.NewScanner(io.LimitReader(f, maxPackedRefsBytes))
	sc.Buffer(make([]byte, 0, 512), 4096)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '^' {
			continue
		}
		sha, name, ok := strings.Cut(line, " ")
		if ok && name == ref && isHex(sha) {
			return sha, fi.ModTime(), nil
		}
	}
	return "", time.Time{}, sc.Err()
}

// skipDirs are never entered by the *.py scan: not the app's code, or
// too large to matter.
var skipDirs = map[string]bool{
	".git": true, "__pycache__": true, "node_modules": true, ".venv": true, "venv": true,
	"env": true, ".tox": true, "site-packages": true, "dist-packages": true, ".mypy_cache": true,
}

// scanPy walks dir breadth first up to MaxDepth levels and MaxFiles files.
func (st *State) scanPy(opts Options, dir string) error {
	type level struct {
		dir   string
		depth int
	}
	queue := []level{{dir, 0}}
	var firstErr error
	for len(queue) > 0 && st.PyFiles < opts.MaxFiles {
		cur := queue[0]
		queue = queue[1:]
		entries, err := os.ReadDir(host(opts.Root, cur.dir))
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("scan %s: %w", cur.dir, err)
			}
			continue
		}
		for _, e := range entries {
			p := path.Join(cur.dir, e.Name())
			switch {
			case e.IsDir():
				if cur.depth+1 < opts.MaxDepth && !skipDirs[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
					queue = append(queue, level{p, cur.depth + 1})
				}
			case e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".py"):
				if st.PyFiles >= opts.MaxFiles {
					st.PyTruncated = true
					return firstErr
				}
				fi, err := e.Info()
				if err != nil {
					continue // removed since ReadDir
				}
				st.PyFiles++
				if fi.ModTime().After(st.PyMtime) {
					st.PyMtime, st.PyNewest = fi.ModTime(), p
				}
			}
		}
	}
	if len(queue) > 0 {
		st.PyTruncated = true
	}
	return firstErr
}

func (st *State) readMarker(opts Options, file string) error {
	if !path.IsAbs(file) {
		return fmt.Errorf("deploy marker %q is not absolute", file)
	}
	b, mt, err := readSmall(host(opts.Root, file), int64(opts.MaxMarkerBytes))
	if err != nil {
		return fmt.Errorf("deploy marker: %w", err)
	}
	st.Marker, st.MarkerTime, st.MarkerSeen = strings.ToValidUTF8(firstLine(b), "?"), mt, true
	return nil
}

// readSmall reads at most n bytes of a regular file and its mtime.
func readSmall(file string, n int64) ([]byte, time.Time, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	if !fi.Mode().IsRegular() {
		return nil, time.Time{}, fmt.Errorf("%s is not a regular file", file)
	}
	b, err := io.ReadAll(io.LimitReader(f, n))
	return b, fi.ModTime(), err
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// isHex reports whether s looks like a commit id (SHA-1 or SHA-256).
func isHex(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Compare returns the deploys between two observations of one app, in the
// package doc's order. A part that is empty in either observation is not
// compared: it could not be read, or it did not apply.
func Compare(prev, next State) []Change {
	var out []Change
	if prev.Release != "" && next.Release != "" && prev.Release != next.Release {
		out = append(out, Change{Kind: KindRelease, From: prev.Release, To: next.Release, Time: next.ReleaseTime,
			Detail: fmt.Sprintf("release symlink %s now points to %s (was %s)", next.ReleaseLink, next.Release, prev.Release)})
	}
	if prev.GitHead != "" && next.GitHead != "" && prev.GitHead != next.GitHead {
		ref := next.GitRef
		if ref == "" {
			ref = "detached HEAD"
		}
		out = append(out, Change{Kind: KindGitHead, From: prev.GitHead, To: next.GitHead, Time: next.GitTime,
			Detail: fmt.Sprintf("git HEAD (%s) is now %s (was %s)", ref, short(next.GitHead), short(prev.GitHead))})
	}
	if !prev.PyMtime.IsZero() && next.PyMtime.After(prev.PyMtime) {
		out = append(out, Change{Kind: KindPyMtime, From: stamp(prev.PyMtime), To: stamp(next.PyMtime), Time: next.PyMtime,
			Detail: fmt.Sprintf("Python code changed: %s modified at %s (newest before: %s)", next.PyNewest, stamp(next.PyMtime), stamp(prev.PyMtime))})
	}
	if prev.MarkerSeen && next.MarkerSeen && (prev.Marker != next.Marker || (next.Marker == "" && !next.MarkerTime.Equal(prev.MarkerTime))) {
		from, to := prev.Marker, next.Marker
		if to == "" {
			from, to = stamp(prev.MarkerTime), stamp(next.MarkerTime)
		}
		out = append(out, Change{Kind: KindMarker, From: from, To: to, Time: next.MarkerTime,
			Detail: fmt.Sprintf("deploy marker file says %q (was %q)", to, from)})
	}
	return out
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
