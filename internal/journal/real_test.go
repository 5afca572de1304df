package journal_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/journal"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/journaltest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// collected gathers the lines a Reader delivers, polling it as a pipeline
// does.
type collected struct {
	mu    sync.Mutex
	lines []string
}

func (c *collected) add(line []byte) {
	c.mu.Lock()
	c.lines = append(c.lines, string(line))
	c.mu.Unlock()
}

func (c *collected) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// waitLines polls r until c holds n lines, then checks no more arrive
// within a few more polls of a child that has caught up (journalctl
// --sync first makes sure journald wrote everything out).
func waitLines(t *testing.T, r *journal.Reader, c *collected, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(c.get()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d lines, want %d: %q; stats %+v", len(c.get()), n, c.get(), r.Stats())
		}
		r.Poll()
		time.Sleep(20 * time.Millisecond)
	}
	return c.get()
}

func newReader(t *testing.T, j *journaltest.Journal, unit string, c *collected) *journal.Reader {
	t.Helper()
	r, err := journal.New(journal.Options{
		Unit:       unit,
		Command:    []string{testenv.LookPath(t, "journalctl"), "--directory=" + j.Dir},
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond,
	}, c.add)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

// Lines written by systemd-cat as a unit's stdout before the reader
// starts are not read; lines after it are, once each, in order, and only
// the unit's own.
func TestReaderFollowsUnitFromStart(t *testing.T) {
	j := journaltest.Start(t)
	unit, other := j.Unit("app"), j.Unit("other")
	j.Cat(unit, "before-1", "before-2")
	j.Ctl("--sync")
	var c collected
	r := newReader(t, j, unit, &c)
	j.Cat(unit, "[2026-12-01 10:00:00 +0000] [41] [INFO] Booting worker with pid: 42", "after-2")
	j.Cat(other, "not-mine")
	j.Cat(unit, "after-3")
	got := waitLines(t, r, &c, 3)
	require.Equal(t, []string{"[2026-12-01 10:00:00 +0000] [41] [INFO] Booting worker with pid: 42", "after-2", "after-3"}, got)
	st := r.Stats()
	require.Equal(t, uint64(3), st.Lines)
	require.True(t, st.Running)
	require.False(t, st.PermissionDenied)
	require.NotZero(t, st.PID)
}

// A journalctl child that dies is restarted and resumes after the last
// entry read: lines written while no child ran are read, none twice.
func TestReaderResumesAfterChildDies(t *testing.T) {
	j := journaltest.Start(t)
	unit := j.Unit("app")
	var c collected
	r := newReader(t, j, unit, &c)
	j.Cat(unit, "one", "two")
	waitLines(t, r, &c, 2)
	killChild(t, r)
	j.Cat(unit, "three")
	got := waitLines(t, r, &c, 3)
	require.Equal(t, []string{"one", "two", "three"}, got)
	require.GreaterOrEqual(t, r.Stats().Restarts, uint64(1))
}

// journald restarting, rotating its files and vacuuming the archives loses
// and repeats nothing.
func TestReaderSurvivesJournaldRestartRotationVacuum(t *testing.T) {
	j := journaltest.Start(t)
	unit := j.Unit("app")
	var c collected
	r := newReader(t, j, unit, &c)
	want := []string{}
	write := func(s string) {
		j.Cat(unit, s)
		want = append(want, s)
	}
	write("first")
	waitLines(t, r, &c, len(want))
	j.Restart()
	write("after-journald-restart")
	waitLines(t, r, &c, len(want))
	j.Ctl("--rotate")
	write("after-rotate")
	waitLines(t, r, &c, len(want))
	j.Ctl("--rotate")
	j.Ctl("--vacuum-files=1")
	write("after-vacuum")
	got := waitLines(t, r, &c, len(want))
	// A straggler would show up within a few more polls.
	for i := 0; i < 10; i++ {
		r.Poll()
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, want, c.get(), "got %q", got)
	archives, _ := filepath.Glob(filepath.Join(j.Dir, "*", "system@*.journal"))
	t.Logf("archived journal files after vacuum: %d", len(archives))
}

// A journal the exporter's user may not read is reported, not silent.
func TestReaderReportsPermissionDenied(t *testing.T) {
	setpriv := testenv.LookPath(t, "setpriv")
	j := journaltest.Start(t)
	unit := j.Unit("app")
	j.Cat(unit, "x")
	j.Ctl("--sync")
	files, _ := filepath.Glob(filepath.Join(j.Dir, "*", "*.journal"))
	require.NotEmpty(t, files)
	// The directories are searchable and the files root:root 0640, as on a
	// host where the exporter's user is not in the systemd-journal group.
	for d := filepath.Dir(files[0]); strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	for _, f := range files {
		require.NoError(t, os.Chmod(f, 0o640))
	}
	var c collected
	r, err := journal.New(journal.Options{
		Unit:       unit,
		Command:    []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", testenv.LookPath(t, "journalctl"), "--directory=" + j.Dir},
		MinBackoff: 50 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
	}, c.add)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	deadline := time.Now().Add(10 * time.Second)
	for !r.Stats().PermissionDenied {
		if time.Now().After(deadline) {
			t.Fatalf("no permission problem reported: %+v", r.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("journalctl said: %s", r.Stats().LastError)
}

// killChild kills the reader's journalctl (found as the test process's
// child running journalctl) and waits until it is gone.
func killChild(t *testing.T, r *journal.Reader) {
	t.Helper()
	pid := childJournalctl(t)
	require.NoError(t, exec.Command("kill", "-9", fmt.Sprint(pid)).Run())
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/cmdline", pid)); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("journalctl %d still there", pid)
		}
		r.Poll()
		time.Sleep(10 * time.Millisecond)
	}
}

func childJournalctl(t *testing.T) int {
	t.Helper()
	self := os.Getpid()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", self, self))
	require.NoError(t, err)
	// Children of every thread: os/exec may start from any of them.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", self))
	var all []string
	for _, tk := range tasks {
		cb, _ := os.ReadFile(tk)
		all = append(all, strings.Fields(string(cb))...)
	}
	all = append(all, strings.Fields(string(b))...)
	for _, p := range all {
		comm, _ := os.ReadFile("/proc/" + p + "/comm")
		if strings.TrimSpace(string(comm)) == "journalctl" {
			var pid int
			_, _ = fmt.Sscan(p, &pid)
			return pid
		}
	}
	t.Fatalf("no journalctl child of %d among %v", self, all)
	return 0
}

// A child restarted after the file holding its cursor's entry was archived
// and vacuumed away resumes at the entries after it: none lost, none twice.
func TestReaderResumesAfterCursorVacuumed(t *testing.T) {
	j := journaltest.Start(t)
	unit := j.Unit("app")
	var c collected
	r, err := journal.New(journal.Options{
		Unit:    unit,
		Command: []string{testenv.LookPath(t, "journalctl"), "--directory=" + j.Dir},
		// Long enough for the rotation and vacuum below to happen while no
		// child runs.
		MinBackoff: 5 * time.Second,
	}, c.add)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	j.Cat(unit, "one")
	waitLines(t, r, &c, 1)
	killChild(t, r)
	j.Ctl("--rotate")
	j.Ctl("--vacuum-files=1")
	j.Cat(unit, "two")
	if r.Stats().Restarts > 0 || r.Stats().Running {
		t.Skip("the machine was too slow: the child restarted before the vacuum")
	}
	archives, _ := filepath.Glob(filepath.Join(j.Dir, "*", "system@*.journal"))
	require.Empty(t, archives, "the file holding the cursor's entry was vacuumed")
	got := waitLines(t, r, &c, 2)
	for i := 0; i < 10; i++ {
		r.Poll()
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, []string{"one", "two"}, c.get(), "got %q", got)
}
