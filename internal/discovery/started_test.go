package discovery

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// keptNote is the note of a titled master whose settings come from an
// earlier pass's reading of its command line.
const keptNote = "argv overwritten by setproctitle after an earlier pass read it: settings kept from that command line"

// retitle makes pid look as setproctitle leaves a master: its command line
// is the title and its environment area is overwritten.
func retitle(t *testing.T, root string, pid int, title string) {
	t.Helper()
	dir := filepath.Join(root, "proc", strconv.Itoa(pid))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cmdline"), []byte("gunicorn: master ["+title+"]\x00"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "environ"), nil, 0o644))
}

// restart gives pid another start time: another process now has the pid.
func restart(t *testing.T, root string, pid int) {
	t.Helper()
	p := filepath.Join(root, "proc", strconv.Itoa(pid), "stat")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+2:])
	ticks, err := strconv.ParseUint(f[19], 10, 64) // field 22
	require.NoError(t, err)
	f[19] = strconv.FormatUint(ticks+100, 10)
	require.NoError(t, os.WriteFile(p, []byte(s[:i+2]+strings.Join(f, " ")+"\n"), 0o644))
}

// TestDiscovererKeepsArgvOfRetitledMaster runs two passes of one
// Discoverer over the untitled master beta (--timeout 5 on its command
// line), changing its /proc files in between as setproctitle, a pid reuse
// or an exit would.
func TestDiscovererKeepsArgvOfRetitledMaster(t *testing.T) {
	const title = "reflexapp:app"
	for _, tc := range []struct {
		name    string
		between func(t *testing.T, d *Discoverer, fs procinfo.FS, root string, pid int)
		kept    bool // the second pass has the first pass's settings
	}{
		{"still untitled", func(*testing.T, *Discoverer, procinfo.FS, string, int) {}, true},
		{"retitled, same master: argv kept", func(t *testing.T, _ *Discoverer, _ procinfo.FS, root string, pid int) {
			retitle(t, root, pid, title)
		}, true},
		{"retitled, pid reused by a new master: not kept", func(t *testing.T, _ *Discoverer, _ procinfo.FS, root string, pid int) {
			restart(t, root, pid)
			retitle(t, root, pid, title)
		}, false},
		{"gone for a pass: forgotten", func(t *testing.T, d *Discoverer, fs procinfo.FS, root string, pid int) {
			dir := filepath.Join(root, "proc", strconv.Itoa(pid))
			away := filepath.Join(root, "away")
			require.NoError(t, os.Rename(dir, away))
			ms, err := d.Discover(fs)
			require.NoError(t, err)
			for _, m := range ms {
				require.NotEqual(t, pid, m.Identity.PID)
			}
			for k := range d.started {
				require.NotEqual(t, pid, k.pid, "the exited master's entry is dropped")
			}
			require.NoError(t, os.Rename(away, dir))
			retitle(t, root, pid, title)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := loadManifest(t, "apps").Apps["beta"].Master
			fs, root := fixtureFS(t, "apps", true)
			d := &Discoverer{}

			ms, err := d.Discover(fs)
			require.NoError(t, err)
			first := byPID(t, ms, pid)
			require.False(t, first.Setproctitle)
			require.Equal(t, 5*time.Second, first.Timeout)
			require.Equal(t, FromArgv, first.TimeoutSource)
			require.Empty(t, first.TimeoutNote)

			tc.between(t, d, fs, root, pid)
			ms, err = d.Discover(fs)
			require.NoError(t, err)
			second := byPID(t, ms, pid)
			if !tc.kept {
				require.Equal(t, DefaultTimeout, second.Timeout)
				require.Equal(t, FromAssumed, second.TimeoutSource)
				require.Contains(t, second.TimeoutNote, "timeout not visible")
				require.NotContains(t, second.Notes, keptNote)
				return
			}
			require.Equal(t, first.Timeout, second.Timeout)
			require.Equal(t, first.TimeoutSource, second.TimeoutSource)
			require.Empty(t, second.TimeoutNote)
			for _, f := range []func(Master) any{
				func(m Master) any { return m.Name },
				func(m Master) any { return m.NameSource },
				func(m Master) any { return m.ErrorLog },
				func(m Master) any { return m.AccessLog },
				func(m Master) any { return m.AccessLogFormat },
				func(m Master) any { return m.Pidfile },
				func(m Master) any { return m.WorkerClass },
				func(m Master) any { return m.ConfiguredWorkers },
			} {
				require.Equal(t, f(first), f(second))
			}
			wantNotes := first.Notes
			if second.Setproctitle {
				wantNotes = append(wantNotes, keptNote)
			}
			require.ElementsMatch(t, wantNotes, second.Notes, "the first pass's notes, and why they still hold")
		})
	}
}

// holdConfig is a Gunicorn config file whose on_starting hook waits until
// the file release exists. Gunicorn calls on_starting in Arbiter.start,
// before run retitles the master, so until then the master's command line
// is the one it was exec'd with.
const holdConfig = `import os, time

def on_starting(server):
    while not os.path.exists(%q):
        time.sleep(0.01)
`

// TestDiscovererRealRetitle holds a real setproctitle master before its
// retitle while a pass reads its command line (--timeout 2), then lets it
// retitle: the same Discoverer keeps the timeout and its source, while a
// Discover that remembers nothing assumes Gunicorn's default.
func TestDiscovererRealRetitle(t *testing.T) {
	t.Parallel()
	requireSetproctitle(t)
	fs := realFS(t)
	dir := t.TempDir()
	release, conf := filepath.Join(dir, "release"), filepath.Join(dir, "hold.py")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(holdConfig, release)), 0o644))

	// Start returns only once the workers booted, after the hook: the pass
	// that sees the held master runs beside it and releases it.
	d := &Discoverer{}
	held := make(chan Master, 1)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			ms, _ := d.Discover(fs)
			for _, m := range ms {
				if slices.Contains(m.Identity.Cmdline, conf) {
					held <- m
					_ = os.WriteFile(release, nil, 0o644)
					return
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 1, ExtraArgs: []string{"-c", conf}})
	first := <-held
	require.Equal(t, g.MasterPID(), first.Identity.PID)
	require.False(t, first.Setproctitle)
	require.Equal(t, 2*time.Second, first.Timeout)
	require.Equal(t, FromArgv, first.TimeoutSource)

	ms, err := d.Discover(fs)
	require.NoError(t, err)
	m := byPID(t, ms, first.Identity.PID)
	require.True(t, m.Setproctitle, "retitled: %q", m.Identity.Cmdline)
	require.Equal(t, 2*time.Second, m.Timeout)
	require.Equal(t, FromArgv, m.TimeoutSource)
	require.Empty(t, m.TimeoutNote)
	require.Equal(t, first.Name, m.Name)
	require.Equal(t, g.ErrorLog, m.ErrorLog)
	require.Contains(t, m.Notes, keptNote)

	fresh, _ := findMaster(t, fs, first.Identity.PID)
	require.Equal(t, DefaultTimeout, fresh.Timeout)
	require.Equal(t, FromAssumed, fresh.TimeoutSource)
}
