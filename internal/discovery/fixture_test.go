package discovery

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

func byPID(t *testing.T, ms []Master, pid int) Master {
	t.Helper()
	for _, m := range ms {
		if m.Identity.PID == pid {
			return m
		}
	}
	t.Fatalf("no master with pid %d in %v", pid, names(ms))
	return Master{}
}

func names(ms []Master) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name+"("+strconv.Itoa(m.Identity.PID)+")")
	}
	return out
}

func hasNote(m Master, substr string) bool {
	return slices.ContainsFunc(m.Notes, func(n string) bool { return strings.Contains(n, substr) })
}

// requireNoWorkerMaster checks that no reported master is a pid the
// manifest knows as a worker or USR2 child (or its worker).
func requireNoWorkerMaster(t *testing.T, man manifest, ms []Master) {
	t.Helper()
	for _, a := range man.Apps {
		for _, w := range slices.Concat(a.Workers, a.UpgradeKids, []int{a.UpgradeChild}) {
			for _, m := range ms {
				require.NotEqual(t, w, m.Identity.PID, "worker/USR2 child %d reported as a master", w)
			}
		}
	}
}

// TestFixtureApps covers a titled master (with ./gunicorn.conf.py), an
// untitled master, two `python -m gunicorn` masters, a shared name, an
// error log on stderr and an app with no access log, in one /proc.
func TestFixtureApps(t *testing.T) {
	man := loadManifest(t, "apps")
	fs, _ := fixtureFS(t, "apps", false)
	ms, err := Discover(fs)
	require.NoError(t, err)
	require.Len(t, ms, 4, names(ms))
	requireNoWorkerMaster(t, man, ms)
	require.True(t, slices.IsSortedFunc(ms, func(a, b Master) int { return strings.Compare(a.Name, b.Name) }))

	alpha, beta, gamma, delta := man.Apps["alpha"], man.Apps["beta"], man.Apps["gamma"], man.Apps["delta"]

	t.Run("titled master with default config file", func(t *testing.T) {
		m := byPID(t, ms, alpha.Master)
		require.Equal(t, "alpha", m.Name)
		require.Equal(t, SourceProcTitle, m.NameSource)
		require.True(t, m.Setproctitle)
		require.Equal(t, []string{"gunicorn: master [alpha]"}, m.Identity.Cmdline)
		require.Equal(t, man.Harness, m.Identity.PPID)
		require.Equal(t, alpha.ErrorLog, m.ErrorLog) // errorlog = "error.log" in the config, resolved against cwd
		require.Equal(t, alpha.AccessLog, m.AccessLog)
		require.Equal(t, 2*time.Second, m.Timeout) // timeout = 2 in the config
		require.Equal(t, alpha.Pidfile, m.Pidfile)
		require.Equal(t, filepath.Join(alpha.Dir, "gunicorn.conf.py"), m.ConfigFile)
		require.Equal(t, "sync", m.WorkerClass) // "Using worker: sync" in the error log
		require.Equal(t, alpha.Workers, m.Workers)
		require.Zero(t, m.UpgradeChild)
		require.Equal(t, []string{alpha.Addr}, m.Listen)
		require.True(t, hasNote(m, "default config file"), m.Notes)
		require.True(t, hasNote(m, "log paths taken from open files"), m.Notes)
	})

	t.Run("untitled master", func(t *testing.T) {
		m := byPID(t, ms, beta.Master)
		require.Equal(t, "reflexapp:app-"+strconv.Itoa(beta.Port), m.Name)
		require.Equal(t, SourceAppModule, m.NameSource)
		require.False(t, m.Setproctitle)
		require.Equal(t, "gunicorn", m.Identity.Comm)
		require.Equal(t, beta.ErrorLog, m.ErrorLog)
		require.Equal(t, beta.AccessLog, m.AccessLog)
		require.Equal(t, 5*time.Second, m.Timeout)
		require.Equal(t, beta.Pidfile, m.Pidfile)
		require.Empty(t, m.ConfigFile)
		require.Equal(t, "sync", m.WorkerClass)
		require.Equal(t, beta.Workers, m.Workers)
		require.True(t, hasNote(m, `also named "reflexapp:app"`), m.Notes)
	})

	t.Run("python -m with --name and the error log on stderr", func(t *testing.T) {
		m := byPID(t, ms, gamma.Master)
		require.Equal(t, "gamma", m.Name)
		require.Equal(t, SourceNameFlag, m.NameSource)
		require.Equal(t, "python3", m.Identity.Comm)
		require.Equal(t, []string{"-m", "gunicorn"}, m.Identity.Cmdline[1:3])
		require.Equal(t, gamma.ErrorLog, m.ErrorLog) // the harness's stderr capture
		require.Equal(t, filepath.Join(gamma.Dir, "stderr.log"), m.ErrorLog)
		require.Equal(t, gamma.AccessLog, m.AccessLog)
		require.Equal(t, `%(h)s "%(r)s" %(s)s %(L)s`, m.AccessLogFormat)
		require.Equal(t, 2*time.Second, m.Timeout)
		require.Equal(t, gamma.Workers, m.Workers)
		require.True(t, hasNote(m, "error log is stderr"), m.Notes)
	})

	t.Run("python -m, no access log, later flags win", func(t *testing.T) {
		m := byPID(t, ms, delta.Master)
		require.Equal(t, "reflexapp:app-"+strconv.Itoa(delta.Port), m.Name)
		require.Empty(t, m.AccessLog)
		require.True(t, hasNote(m, "no access log"), m.Notes)
		require.Equal(t, 9*time.Second, m.Timeout) // --timeout 2 ... -t 9
		require.Equal(t, "gthread", m.WorkerClass)
		require.Equal(t, delta.Workers, m.Workers)
	})
}

func TestFixtureUSR2(t *testing.T) {
	for _, sc := range []struct {
		scenario, app string
		titled        bool
	}{
		{"usr2-titled", "omega", true},
		{"usr2-untitled", "sigma", false},
	} {
		t.Run(sc.scenario, func(t *testing.T) {
			man := loadManifest(t, sc.scenario)
			a := man.Apps[sc.app]
			require.NotZero(t, a.UpgradeChild)
			fs, _ := fixtureFS(t, sc.scenario, false)
			ms, err := Discover(fs)
			require.NoError(t, err)
			require.Len(t, ms, 1, "the USR2 child is not a separate app: %v", names(ms))
			requireNoWorkerMaster(t, man, ms)
			m := ms[0]
			require.Equal(t, a.Master, m.Identity.PID)
			require.Equal(t, sc.app, m.Name)
			require.Equal(t, sc.titled, m.Setproctitle)
			require.Equal(t, a.UpgradeChild, m.UpgradeChild)
			require.Equal(t, a.Workers, m.Workers, "the USR2 child is not a worker")
			require.Equal(t, a.ErrorLog, m.ErrorLog)
			require.Equal(t, a.AccessLog, m.AccessLog)

			child, err := fs.Identify(a.UpgradeChild)
			require.NoError(t, err)
			require.Equal(t, a.Master, child.PPID)
			if sc.titled {
				require.Equal(t, []string{"gunicorn: master [" + sc.app + ".2]"}, child.Cmdline)
				require.Contains(t, m.TimeoutNote, "timeout not visible")
				require.Equal(t, FromAssumed, m.TimeoutSource)
				require.Equal(t, DefaultTimeout, m.Timeout)
			} else {
				// The re-exec of `python -m gunicorn` runs gunicorn/__main__.py.
				require.True(t, strings.HasSuffix(child.Cmdline[1], "gunicorn/__main__.py"), child.Cmdline)
				require.Equal(t, 2*time.Second, m.Timeout)
				require.Equal(t, a.Pidfile, m.Pidfile)
			}
		})
	}
}

// TestFixtureWorkerNeverMaster removes the masters from a copy of the tree:
// their workers, now orphans, must not be reported.
func TestFixtureWorkerNeverMaster(t *testing.T) {
	man := loadManifest(t, "apps")
	fs, root := fixtureFS(t, "apps", true)
	for _, app := range []string{"alpha", "beta"} { // titled and untitled workers
		require.NoError(t, os.RemoveAll(filepath.Join(root, "proc", strconv.Itoa(man.Apps[app].Master))))
	}
	ms, err := Discover(fs)
	require.NoError(t, err)
	require.Len(t, ms, 2, names(ms))
	requireNoWorkerMaster(t, man, ms)
	byPID(t, ms, man.Apps["gamma"].Master)
	m := byPID(t, ms, man.Apps["delta"].Master)
	require.Equal(t, "reflexapp:app", m.Name, "no longer shared, so no suffix")

	// A single untitled worker holds exactly one heartbeat file.
	for _, w := range man.Apps["beta"].Workers {
		hb, ok, err := fs.HeartbeatFD(w)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 1, hb.Count)
	}
}

// TestFixtureVerify detects a recycled pid, an exec in the same pid, and an
// exited process in a copy of the tree.
func TestFixtureVerify(t *testing.T) {
	man := loadManifest(t, "apps")
	fs, root := fixtureFS(t, "apps", true)
	ms, err := Discover(fs)
	require.NoError(t, err)
	beta := byPID(t, ms, man.Apps["beta"].Master)
	alpha := byPID(t, ms, man.Apps["alpha"].Master)
	require.NoError(t, fs.Verify(beta.Identity))
	require.NoError(t, fs.Verify(alpha.Identity))

	procDir := func(pid int) string { return filepath.Join(root, "proc", strconv.Itoa(pid)) }
	replaceStat := func(pid int, edit func([]string)) {
		p := filepath.Join(procDir(pid), "stat")
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+2:])
		edit(f)
		require.NoError(t, os.WriteFile(p, []byte(s[:i+2]+strings.Join(f, " ")+"\n"), 0o644))
	}

	// Another process got the pid: later start time.
	replaceStat(beta.Identity.PID, func(f []string) {
		f[19] = strconv.FormatUint(beta.Identity.StartTicks+12345, 10) // field 22
	})
	require.ErrorIs(t, fs.Verify(beta.Identity), procinfo.ErrPIDReused)

	// The same process exec'd something else: same start, new argv.
	w := man.Apps["beta"].Workers[0]
	wid, err := fs.Identify(w)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(procDir(w), "cmdline"), []byte("/bin/sh\x00-c\x00true\x00"), 0o644))
	require.ErrorIs(t, fs.Verify(wid), procinfo.ErrPIDReused)

	// A zombie, then no process at all.
	replaceStat(alpha.Identity.PID, func(f []string) { f[0] = "Z" })
	require.ErrorIs(t, fs.Verify(alpha.Identity), procinfo.ErrGone)
	require.NoError(t, os.RemoveAll(procDir(alpha.Identity.PID)))
	require.ErrorIs(t, fs.Verify(alpha.Identity), procinfo.ErrGone)
}

// TestFixtureHeartbeat matches the master's heartbeat files with its
// workers' by inode, as gunicorn.md §4.3 describes.
func TestFixtureHeartbeat(t *testing.T) {
	man := loadManifest(t, "apps")
	fs, _ := fixtureFS(t, "apps", false)
	for _, app := range []string{"alpha", "beta"} {
		a := man.Apps[app]
		all, err := fs.HeartbeatFDs(a.Master)
		require.NoError(t, err)
		require.Len(t, all, len(a.Workers))
		inodes := map[uint64]bool{}
		for _, hb := range all {
			require.Equal(t, len(a.Workers), hb.Count)
			require.True(t, strings.HasPrefix(hb.Path, "/tmp/wgunicorn-"), hb.Path)
			inodes[hb.Inode] = true
		}
		for _, w := range a.Workers {
			hb, ok, err := fs.HeartbeatFD(w)
			require.NoError(t, err)
			require.True(t, ok)
			require.True(t, inodes[hb.Inode], "worker %d's heartbeat inode %d is one of the master's", w, hb.Inode)
		}
	}
}

// TestFixtureUSR2Edges covers the ways a child of a master can look like a
// master without being one, and the fallback when environ is unreadable.
func TestFixtureUSR2Edges(t *testing.T) {
	t.Run("worker just forked still shows the master's title", func(t *testing.T) {
		man := loadManifest(t, "usr2-titled")
		a := man.Apps["omega"]
		fs, root := fixtureFS(t, "usr2-titled", true)
		for _, w := range a.Workers {
			require.NoError(t, os.WriteFile(filepath.Join(root, "proc", strconv.Itoa(w), "cmdline"), []byte("gunicorn: master [omega]\x00\x00\x00"), 0o644))
		}
		for _, w := range a.UpgradeKids {
			require.NoError(t, os.WriteFile(filepath.Join(root, "proc", strconv.Itoa(w), "cmdline"), []byte("gunicorn: master [omega.2]\x00"), 0o644))
		}
		ms, err := Discover(fs)
		require.NoError(t, err)
		require.Len(t, ms, 1, names(ms))
		require.Equal(t, a.Workers, ms[0].Workers)
		require.Equal(t, a.UpgradeChild, ms[0].UpgradeChild)
	})
	t.Run("untitled without a readable GUNICORN_PID", func(t *testing.T) {
		man := loadManifest(t, "usr2-untitled")
		a := man.Apps["sigma"]
		fs, root := fixtureFS(t, "usr2-untitled", true)
		for _, pid := range slices.Concat([]int{a.Master, a.UpgradeChild}, a.Workers, a.UpgradeKids) {
			require.NoError(t, os.Remove(filepath.Join(root, "proc", strconv.Itoa(pid), "environ")))
		}
		ms, err := Discover(fs)
		require.NoError(t, err)
		require.Len(t, ms, 1, names(ms))
		require.Equal(t, a.UpgradeChild, ms[0].UpgradeChild, "found by its own children")
		require.Equal(t, a.Workers, ms[0].Workers)

		// Just re-exec'd: no workers yet, and no heartbeat file.
		for _, k := range a.UpgradeKids {
			require.NoError(t, os.RemoveAll(filepath.Join(root, "proc", strconv.Itoa(k))))
		}
		task := filepath.Join(root, "proc", strconv.Itoa(a.UpgradeChild), "task", strconv.Itoa(a.UpgradeChild), "children")
		require.NoError(t, os.WriteFile(task, nil, 0o644))
		fds, err := os.ReadDir(filepath.Join(root, "proc", strconv.Itoa(a.UpgradeChild), "fd"))
		require.NoError(t, err)
		for _, fd := range fds {
			p := filepath.Join(root, "proc", strconv.Itoa(a.UpgradeChild), "fd", fd.Name())
			if target, _ := os.Readlink(p); procinfo.IsHeartbeatTarget(target) {
				require.NoError(t, os.Remove(p))
			}
		}
		ms, err = Discover(fs)
		require.NoError(t, err)
		require.Len(t, ms, 1, names(ms))
		require.Equal(t, a.UpgradeChild, ms[0].UpgradeChild, "found by having no heartbeat file")
	})
}

// TestFixtureConfigFile gives the untitled beta a -c config file and
// GUNICORN_CMD_ARGS in a copy of the tree: command line > environment >
// config file, as in gunicorn/app/base.py.
func TestFixtureConfigFile(t *testing.T) {
	man := loadManifest(t, "apps")
	beta := man.Apps["beta"]
	fs, root := fixtureFS(t, "apps", true)
	pdir := filepath.Join(root, "proc", strconv.Itoa(beta.Master))
	b, err := os.ReadFile(filepath.Join(pdir, "cmdline"))
	require.NoError(t, err)
	argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	argv = slices.Insert(argv, 2, "-c", "conf/g.py")
	require.NoError(t, os.WriteFile(filepath.Join(pdir, "cmdline"), []byte(strings.Join(argv, "\x00")+"\x00"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(pdir, "environ"),
		[]byte("PWD=/elsewhere\x00GUNICORN_CMD_ARGS=--access-logformat '%(r)s env' --timeout 99\x00"), 0o644))
	conf := filepath.Join(root, "rootfs", beta.Dir, "conf", "g.py")
	require.NoError(t, os.MkdirAll(filepath.Dir(conf), 0o755))
	require.NoError(t, os.WriteFile(conf, []byte(`proc_name = "from-config"
timeout = 60
access_log_format = '%(h)s'
accesslog = "/var/log/other.log"
worker_class = "egg:gunicorn#gevent"
`), 0o644))

	ms, err := Discover(fs)
	require.NoError(t, err)
	m := byPID(t, ms, beta.Master)
	require.Equal(t, filepath.Join(beta.Dir, "conf", "g.py"), m.ConfigFile)
	require.Equal(t, "from-config", m.Name)
	require.Equal(t, SourceConfigFile, m.NameSource)
	require.Equal(t, 5*time.Second, m.Timeout, "--timeout 5 on the command line beats the environment and the file")
	require.Equal(t, "%(r)s env", m.AccessLogFormat, "the environment beats the file")
	require.Equal(t, beta.AccessLog, m.AccessLog)
	require.Equal(t, "gevent", m.WorkerClass)
	require.True(t, hasNote(m, "GUNICORN_CMD_ARGS"), m.Notes)

	// A config module cannot be read: say so.
	argv[3] = "python:myproj.gunicorn_conf"
	require.NoError(t, os.WriteFile(filepath.Join(pdir, "cmdline"), []byte(strings.Join(argv, "\x00")+"\x00"), 0o644))
	ms, err = Discover(fs)
	require.NoError(t, err)
	m = byPID(t, ms, beta.Master)
	require.Empty(t, m.ConfigFile)
	require.True(t, hasNote(m, "Python module"), m.Notes)
	require.Equal(t, "reflexapp:app", strings.SplitN(m.Name, "-", 2)[0])
}

// TestFixtureStderrPipe: with --error-logfile - and stderr a pipe (the
// journal under systemd), the error log is unknown and the note says which
// field to set.
func TestFixtureStderrPipe(t *testing.T) {
	man := loadManifest(t, "apps")
	gamma := man.Apps["gamma"]
	fs, root := fixtureFS(t, "apps", true)
	fd2 := filepath.Join(root, "proc", strconv.Itoa(gamma.Master), "fd", "2")
	require.NoError(t, os.Remove(fd2))
	require.NoError(t, os.Symlink("pipe:[123456]", fd2))
	ms, err := Discover(fs)
	require.NoError(t, err)
	m := byPID(t, ms, gamma.Master)
	require.Empty(t, m.ErrorLog)
	require.Contains(t, m.Notes, "error log goes to stderr (a pipe): set apps[].error_log")
	require.Equal(t, gamma.AccessLog, m.AccessLog)
}
