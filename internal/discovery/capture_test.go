package discovery

import (
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// The fixtures under testdata/<scenario>/ are saved /proc subtrees of real
// Gunicorn processes. Regenerate them (as root, with python3-setproctitle)
// with:
//
//	go test ./internal/discovery/ -run TestCaptureFixtures -capture
//
// Layout of one scenario:
//
//	proc/stat                      the btime line of /proc/stat
//	proc/<pid>/{stat,status,cmdline,comm}
//	proc/<pid>/environ             only PWD, GUNICORN_CMD_ARGS and GUNICORN_PID are kept
//	proc/<pid>/{exe,cwd}           symlinks with the original link text
//	proc/<pid>/root                symlink to ../../rootfs
//	proc/<pid>/task/<tid>/children
//	proc/<pid>/fd/<n>              symlinks with the original link text
//	proc/<pid>/fdinfo/<n>
//	proc/<pid>/net/{tcp,tcp6,unix} masters only, only their own sockets
//	rootfs/<path>                  the regular files the processes hold open
//	                               (the last 16 KiB of logs), the config
//	                               file, and an empty stand-in for each
//	                               unlinked heartbeat file, named with its
//	                               " (deleted)" suffix
//	manifest.json                  pids and paths the tests compare against
//
// procinfo stats an fd through /proc/<pid>/fd/N and, when that link does
// not resolve (as in a saved tree), through /proc/<pid>/root/<target>, so
// the fixture's fds resolve to the rootfs copies. Heartbeat ctime/mtime are
// not meaningful in a fixture; the real tests cover them.
var capture = flag.Bool("capture", false, "regenerate testdata/ fixtures from real Gunicorn processes")

// fixtureBase is where the captured apps run, so paths in the fixtures are
// short and stable.
const fixtureBase = "/tmp/reflex-fixture"

// manifestApp is what a scenario's test knows about one app.
type manifestApp struct {
	Master       int
	Workers      []int
	UpgradeChild int   `json:",omitempty"`
	UpgradeKids  []int `json:",omitempty"`
	Dir          string
	ErrorLog     string
	AccessLog    string
	Pidfile      string
	Addr         string
	Port         int
	Argv         []string
}

type manifest struct {
	Apps    map[string]manifestApp
	Harness int // the test process, parent of the masters
}

func TestCaptureFixtures(t *testing.T) {
	if !*capture {
		t.Skip("run with -capture to regenerate the fixtures")
	}
	require.NoError(t, os.RemoveAll(fixtureBase))
	t.Run("apps", func(t *testing.T) {
		apps := map[string]*gunicorntest.Gunicorn{}
		alphaDir := fixtureDir(t, "alpha")
		// Gunicorn 20+ reads ./gunicorn.conf.py; the values agree with the
		// harness's command line, so the fixture is consistent.
		conf := "# fixture config\nimport os\n\ntimeout = 2\nerrorlog = \"error.log\"\npidfile = 'gunicorn.pid'\nworkers = int(os.environ.get('W', 2))\n"
		require.NoError(t, os.WriteFile(filepath.Join(alphaDir, "gunicorn.conf.py"), []byte(conf), 0o644))
		apps["alpha"] = gunicorntest.Start(t, gunicorntest.Options{Name: "alpha", Dir: alphaDir})
		apps["beta"] = gunicorntest.Start(t, gunicorntest.Options{NoSetproctitle: true, Dir: fixtureDir(t, "beta"), Timeout: 5})
		apps["gamma"] = gunicorntest.Start(t, gunicorntest.Options{
			NoSetproctitle: true, UsePythonM: true, Name: "gamma", ErrorLogToStderr: true,
			AccessLogFormat: `%(h)s "%(r)s" %(s)s %(L)s`, Dir: fixtureDir(t, "gamma"),
		})
		apps["delta"] = gunicorntest.Start(t, gunicorntest.Options{
			NoSetproctitle: true, UsePythonM: true, NoAccessLog: true, Dir: fixtureDir(t, "delta"),
			ExtraArgs: []string{"-t", "9", "-k", "gthread", "--threads=2"},
		})
		for _, name := range []string{"alpha", "beta"} {
			status, _, err := apps[name].Get("/ok")
			require.NoError(t, err)
			require.Equal(t, 200, status)
		}
		waitAccessLogged(t, apps["alpha"], apps["beta"])
		captureScenario(t, "apps", apps)
	})
	for _, sc := range []struct {
		name string
		opts gunicorntest.Options
	}{
		{"usr2-titled", gunicorntest.Options{Name: "omega"}},
		{"usr2-untitled", gunicorntest.Options{NoSetproctitle: true, UsePythonM: true, Name: "sigma"}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			sc.opts.Dir = fixtureDir(t, sc.name)
			g := gunicorntest.Start(t, sc.opts)
			old := g.MasterPID()
			require.NoError(t, g.Signal(syscall.SIGUSR2))
			newMaster := waitUpgradeChild(t, g, old)
			captureScenario(t, sc.name, map[string]*gunicorntest.Gunicorn{sc.opts.Name: g}, newMaster)
		})
	}
}

func fixtureDir(t *testing.T, name string) string {
	t.Helper()
	d := filepath.Join(fixtureBase, name)
	require.NoError(t, os.MkdirAll(d, 0o755))
	return d
}

func waitAccessLogged(t *testing.T, gs ...*gunicorntest.Gunicorn) {
	t.Helper()
	for _, g := range gs {
		require.Eventually(t, func() bool {
			b, _ := os.ReadFile(g.AccessLog)
			return strings.Contains(string(b), "GET /ok")
		}, 5*time.Second, 20*time.Millisecond)
	}
}

// waitUpgradeChild waits until the USR2 master (pidfile.2) has all its
// workers, each with a heartbeat file.
func waitUpgradeChild(t *testing.T, g *gunicorntest.Gunicorn, old int) int {
	t.Helper()
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	var child int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(g.Pidfile + ".2")
		if err != nil {
			return false
		}
		child, err = strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return false
		}
		kids, err := fs.Children(child)
		if err != nil || len(kids) != g.Opts.Workers {
			return false
		}
		for _, k := range kids {
			hb, ok, err := fs.HeartbeatFD(k)
			if err != nil || !ok || hb.Count != 1 {
				return false
			}
		}
		ppid, err := fs.Stat(child)
		return err == nil && ppid.PPID == old
	}, 20*time.Second, 20*time.Millisecond)
	return child
}

// captureScenario saves the processes of apps (masters, their children,
// the given extra pids and their children) and the test process.
func captureScenario(t *testing.T, scenario string, apps map[string]*gunicorntest.Gunicorn, extra ...int) {
	t.Helper()
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	dst := filepath.Join("testdata", scenario)
	require.NoError(t, os.RemoveAll(dst))
	require.NoError(t, os.MkdirAll(filepath.Join(dst, "proc"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dst, "rootfs"), 0o755))

	man := manifest{Apps: map[string]manifestApp{}, Harness: os.Getpid()}
	pids := []int{os.Getpid()}
	masters := map[int]bool{}
	for name, g := range apps {
		m := g.MasterPID()
		a := manifestApp{
			Master: m, Workers: g.WorkerPIDs(), Dir: g.Dir, ErrorLog: g.ErrorLog, AccessLog: g.AccessLog,
			Pidfile: g.Pidfile, Addr: g.Addr, Argv: g.Argv,
		}
		a.Port, _ = strconv.Atoi(g.Addr[strings.LastIndexByte(g.Addr, ':')+1:])
		masters[m] = true
		pids = append(pids, m)
		kids, err := fs.Children(m)
		require.NoError(t, err)
		pids = append(pids, kids...)
		for _, x := range extra {
			if slices.Contains(kids, x) {
				a.UpgradeChild = x
				masters[x] = true
				grand, err := fs.Children(x)
				require.NoError(t, err)
				a.UpgradeKids = grand
				pids = append(pids, grand...)
			}
		}
		man.Apps[name] = a
	}
	slices.Sort(pids)
	pids = slices.Compact(pids)

	btime := grepLine(t, "/proc/stat", "btime ")
	require.NoError(t, os.WriteFile(filepath.Join(dst, "proc", "stat"), []byte(btime+"\n"), 0o644))

	sockets := map[string]bool{}
	for _, pid := range pids {
		capturePid(t, dst, pid, sockets)
	}
	for pid := range masters {
		captureNet(t, dst, pid, sockets)
	}
	b, err := json.MarshalIndent(man, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dst, "manifest.json"), append(b, '\n'), 0o644))
	// The config files the apps' directories hold.
	for _, g := range apps {
		if c, err := os.ReadFile(filepath.Join(g.Dir, "gunicorn.conf.py")); err == nil {
			writeRootfs(t, dst, filepath.Join(g.Dir, "gunicorn.conf.py"), c)
		}
	}
}

func grepLine(t *testing.T, file, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line)
		}
	}
	t.Fatalf("no %q line in %s", prefix, file)
	return ""
}

func writeRootfs(t *testing.T, dst, p string, content []byte) {
	t.Helper()
	out := filepath.Join(dst, "rootfs", p)
	require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
	require.NoError(t, os.WriteFile(out, content, 0o644))
}

func capturePid(t *testing.T, dst string, pid int, sockets map[string]bool) {
	t.Helper()
	src := filepath.Join("/proc", strconv.Itoa(pid))
	out := filepath.Join(dst, "proc", strconv.Itoa(pid))
	require.NoError(t, os.MkdirAll(out, 0o755))
	for _, f := range []string{"stat", "status", "cmdline", "comm"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(out, f), b, 0o644))
	}
	// Keep only what discovery reads from environ: the test's environment
	// is nobody's business.
	env, err := os.ReadFile(filepath.Join(src, "environ"))
	require.NoError(t, err)
	var kept []string
	for kv := range strings.SplitSeq(string(env), "\x00") {
		if strings.HasPrefix(kv, "PWD=") || strings.HasPrefix(kv, "GUNICORN_CMD_ARGS=") || strings.HasPrefix(kv, "GUNICORN_PID=") {
			kept = append(kept, kv)
		}
	}
	envOut := strings.Join(kept, "\x00")
	if envOut != "" {
		envOut += "\x00"
	}
	require.NoError(t, os.WriteFile(filepath.Join(out, "environ"), []byte(envOut), 0o644))
	for _, l := range []string{"exe", "cwd"} {
		target, err := os.Readlink(filepath.Join(src, l))
		require.NoError(t, err)
		require.NoError(t, os.Symlink(target, filepath.Join(out, l)))
	}
	require.NoError(t, os.Symlink("../../rootfs", filepath.Join(out, "root")))

	tasks, err := os.ReadDir(filepath.Join(src, "task"))
	require.NoError(t, err)
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(src, "task", task.Name(), "children"))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(out, "task", task.Name()), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(out, "task", task.Name(), "children"), b, 0o644))
	}

	require.NoError(t, os.MkdirAll(filepath.Join(out, "fd"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(out, "fdinfo"), 0o755))
	fds, err := os.ReadDir(filepath.Join(src, "fd"))
	require.NoError(t, err)
	self := pid == os.Getpid()
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(src, "fd", fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if self && !strings.HasPrefix(target, "/dev/") && !strings.HasPrefix(target, "pipe:") {
			continue // the test binary's own files are noise
		}
		info, err := os.ReadFile(filepath.Join(src, "fdinfo", fd.Name()))
		if err != nil {
			continue
		}
		require.NoError(t, os.Symlink(target, filepath.Join(out, "fd", fd.Name())))
		require.NoError(t, os.WriteFile(filepath.Join(out, "fdinfo", fd.Name()), info, 0o644))
		if strings.HasPrefix(target, "socket:[") {
			sockets[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
			continue
		}
		if self || !strings.HasPrefix(target, "/") {
			continue
		}
		rootfsPath := filepath.Join(dst, "rootfs", target)
		if _, err := os.Lstat(rootfsPath); err == nil {
			continue // another process holds it too
		}
		if strings.HasSuffix(target, " (deleted)") {
			writeRootfs(t, dst, target, nil) // the heartbeat file's stand-in
			continue
		}
		if !strings.HasPrefix(target, fixtureBase+"/") {
			continue
		}
		writeRootfs(t, dst, target, tailOf(t, filepath.Join(src, "fd", fd.Name()), tailBytes))
	}
}

func tailOf(t *testing.T, p string, n int64) []byte {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	off := max(st.Size()-n, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, n))
	require.NoError(t, err)
	if off > 0 {
		// Start at a line boundary, as a log would after rotation.
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}

// captureNet saves the header and the master's own sockets of
// /proc/<pid>/net/{tcp,tcp6,unix}.
func captureNet(t *testing.T, dst string, pid int, sockets map[string]bool) {
	t.Helper()
	out := filepath.Join(dst, "proc", strconv.Itoa(pid), "net")
	require.NoError(t, os.MkdirAll(out, 0o755))
	for _, f := range []string{"tcp", "tcp6", "unix"} {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "net", f))
		if err != nil {
			continue
		}
		var keep strings.Builder
		for i, line := range slices.Collect(strings.Lines(string(b))) {
			fields := strings.Fields(line)
			inode := ""
			switch {
			case f == "unix" && len(fields) >= 7:
				inode = fields[6]
			case f != "unix" && len(fields) >= 10:
				inode = fields[9]
			}
			if i == 0 || sockets[inode] {
				keep.WriteString(line)
			}
		}
		require.NoError(t, os.WriteFile(filepath.Join(out, f), []byte(keep.String()), 0o644))
	}
}

// loadManifest reads testdata/<scenario>/manifest.json.
func loadManifest(t *testing.T, scenario string) manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", scenario, "manifest.json"))
	require.NoError(t, err)
	var m manifest
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// fixtureFS opens testdata/<scenario>/proc, or a copy of it that the test
// may modify.
func fixtureFS(t *testing.T, scenario string, mutable bool) (procinfo.FS, string) {
	t.Helper()
	root := filepath.Join("testdata", scenario)
	if mutable {
		tmp := t.TempDir()
		require.NoError(t, os.CopyFS(tmp, os.DirFS(root)))
		root = tmp
	}
	fs, err := procinfo.NewFS(filepath.Join(root, "proc"))
	require.NoError(t, err)
	return fs, root
}
