package workerstate

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
// Gunicorn 20.1 sync and gthread workers in known states, so the parsing and
// classification are covered on any machine. Regenerate them (as root, on
// amd64, with Debian's gunicorn and python3-setproctitle) with:
//
//	go test ./internal/workerstate/ -run TestCaptureFixtures -capture
//
// Layout of one scenario:
//
//	proc/stat                       the btime line of /proc/stat
//	proc/<pid>/{stat,status,cmdline,comm,wchan,syscall,cgroup}
//	proc/<pid>/environ              only GUNICORN_PID is kept
//	proc/<pid>/{exe,cwd}            symlinks with the original link text
//	proc/<pid>/root                 symlink to ../../rootfs
//	proc/<pid>/task/<tid>/children
//	proc/<pid>/fd/<n>, fdinfo/<n>   fd links (symlinks) and their fdinfo
//	proc/<pid>/net/{tcp,tcp6,unix}  the header and the captured processes' own sockets
//	rootfs/tmp/wgunicorn-* (deleted)  empty stand-ins for the heartbeat files
//	manifest.json                   what the tests compare against: pids by
//	                                role, the heartbeat files' mode, ctime and
//	                                mtime and the capture time (a saved tree
//	                                cannot keep a ctime), the memory the
//	                                sampler read through /proc/<pid>/mem
//	                                (fd_sets), and the loopback peer
var capture = flag.Bool("capture", false, "regenerate testdata/ fixtures from real Gunicorn processes")

// fixtureManifest is testdata/<scenario>/manifest.json.
type fixtureManifest struct {
	Arch    string
	Now     time.Time
	Timeout time.Duration
	Class   string
	Master  int
	// Workers maps a role ("idle", "sleep", "spin", "lock", "recv") to the
	// worker's pid; for scenarios without requests, "w0", "w1", ...
	Workers      map[string]int
	UpgradeChild int `json:",omitempty"`
	// Heartbeats maps a heartbeat file path to its stat at capture.
	Heartbeats map[string]fixtureHeartbeat
	// Mem maps "<pid>:<hex address>" to the hex bytes read there.
	Mem map[string]string
	// PeerPort is the silent server's port; RecvLocalPort the worker's
	// end of that connection.
	PeerPort      int `json:",omitempty"`
	RecvLocalPort int `json:",omitempty"`
}

type fixtureHeartbeat struct {
	Mode         uint32
	Ctime, Mtime time.Time
}

func TestCaptureFixtures(t *testing.T) {
	if !*capture {
		t.Skip("run with -capture to regenerate the fixtures")
	}
	require.Equal(t, "amd64", runtime.GOARCH, "the fixtures' syscall numbers are amd64's")
	t.Run("sync", func(t *testing.T) {
		const timeout = 8 * time.Second
		g, m := realApp(t, gunicorntest.Options{Workers: 5, Timeout: 8, Name: "fixture"})
		port, clients := silentServer(t)
		r := sampler{t: t, s: NewSampler(procFS(t), Options{}), app: "capture", m: m, timeout: timeout, class: "sync"}
		r.until(3*time.Second, func(st AppState) bool { return st.Idle == 5 })
		paths := map[string]string{"sleep": "/sleep?s=7", "spin": "/spin?s=7", "lock": "/lock?s=7", "recv": "/recv?port=" + strconv.Itoa(port)}
		for _, p := range paths {
			g.GetAsync(p)
		}
		local := <-clients
		st := r.until(6*time.Second, func(st AppState) bool { return len(st.Stuck) == 4 })
		roles := map[string]int{}
		for _, s := range st.Stuck {
			roles[map[StuckKind]string{KindSleep: "sleep", KindCPU: "spin", KindFutex: "lock", KindSocketRead: "recv"}[s.Kind]] = s.PID
		}
		for _, w := range st.PerWorker {
			if w.Activity == ActivityIdle {
				roles["idle"] = w.PID
			}
		}
		require.Len(t, roles, 5, describe(st))
		captureScenario(t, "sync", fixtureManifest{
			Timeout: timeout, Class: "sync", Master: m.PID, Workers: roles, PeerPort: port, RecvLocalPort: local,
		})
	})
	t.Run("gthread", func(t *testing.T) {
		_, m := realApp(t, gunicorntest.Options{Workers: 2, ExtraArgs: []string{"-k", "gthread", "--threads", "2"}})
		kids, err := procFS(t).Children(m.PID)
		require.NoError(t, err)
		captureScenario(t, "gthread", fixtureManifest{Timeout: realTimeout, Class: "gthread", Master: m.PID, Workers: numbered(kids)})
	})
	t.Run("usr2", func(t *testing.T) {
		g, m := realApp(t, gunicorntest.Options{Workers: 2})
		old := g.WorkerPIDs()
		require.NoError(t, g.Signal(syscall.SIGUSR2))
		var child int
		require.Eventually(t, func() bool {
			kids, _ := procFS(t).Children(m.PID)
			for _, k := range kids {
				if !slices.Contains(old, k) {
					grand, _ := procFS(t).Children(k)
					if len(grand) == 2 {
						child = k
						return true
					}
				}
			}
			return false
		}, 10*time.Second, 50*time.Millisecond)
		// Wait for the new master's workers to boot, so the tree is stable.
		time.Sleep(time.Second)
		captureScenario(t, "usr2", fixtureManifest{Timeout: realTimeout, Class: "sync", Master: m.PID, Workers: numbered(old), UpgradeChild: child})
	})
}

func numbered(pids []int) map[string]int {
	out := map[string]int{}
	for i, p := range pids {
		out["w"+strconv.Itoa(i)] = p
	}
	return out
}

// captureScenario saves the master, its children and their children.
func captureScenario(t *testing.T, scenario string, man fixtureManifest) {
	t.Helper()
	fs := procFS(t)
	dst := filepath.Join("testdata", scenario)
	require.NoError(t, os.RemoveAll(dst))
	require.NoError(t, os.MkdirAll(filepath.Join(dst, "proc"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dst, "rootfs"), 0o755))

	pids := []int{man.Master}
	kids, err := fs.Children(man.Master)
	require.NoError(t, err)
	pids = append(pids, kids...)
	for _, k := range kids {
		grand, err := fs.Children(k)
		require.NoError(t, err)
		pids = append(pids, grand...)
	}
	man.Arch = runtime.GOARCH
	man.Heartbeats = map[string]fixtureHeartbeat{}
	man.Mem = map[string]string{}

	// First what changes fastest: syscalls with the memory they point at,
	// and the heartbeats.
	s := NewSampler(fs, Options{})
	real := s.readMem
	s.readMem = func(pid int, addr uint64, n int) ([]byte, error) {
		b, err := real(pid, addr, n)
		if err == nil {
			man.Mem[fmt.Sprintf("%d:%x", pid, addr)] = hex.EncodeToString(b)
		}
		return b, err
	}
	syscalls := map[int][]byte{}
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "syscall"))
		require.NoError(t, err)
		syscalls[pid] = b
		s.observe(pid, listenerCache{inodes: map[uint64]bool{}})
		hbs, err := fs.HeartbeatFDs(pid)
		require.NoError(t, err)
		for _, h := range hbs {
			man.Heartbeats[h.Path] = fixtureHeartbeat{Mode: h.Mode, Ctime: h.Ctime, Mtime: h.Mtime}
		}
	}
	man.Now = time.Now()

	btime := grepLine(t, "/proc/stat", "btime ")
	require.NoError(t, os.WriteFile(filepath.Join(dst, "proc", "stat"), []byte(btime+"\n"), 0o644))
	sockets := map[string]bool{}
	for _, pid := range pids {
		capturePid(t, dst, pid, syscalls[pid], sockets)
	}
	for _, pid := range pids {
		captureNet(t, dst, pid, sockets)
	}
	b, err := json.MarshalIndent(man, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dst, "manifest.json"), append(b, '\n'), 0o644))
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

func capturePid(t *testing.T, dst string, pid int, sys []byte, sockets map[string]bool) {
	t.Helper()
	src := filepath.Join("/proc", strconv.Itoa(pid))
	out := filepath.Join(dst, "proc", strconv.Itoa(pid))
	require.NoError(t, os.MkdirAll(out, 0o755))
	for _, f := range []string{"stat", "status", "cmdline", "comm", "wchan", "cgroup"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(out, f), b, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(out, "syscall"), sys, 0o644))
	env, err := os.ReadFile(filepath.Join(src, "environ"))
	require.NoError(t, err)
	var kept []string
	for kv := range strings.SplitSeq(string(env), "\x00") {
		if strings.HasPrefix(kv, "GUNICORN_PID=") {
			kept = append(kept, kv+"\x00")
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(out, "environ"), []byte(strings.Join(kept, "")), 0o644))
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
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(src, "fd", fd.Name()))
		if err != nil {
			continue
		}
		info, err := os.ReadFile(filepath.Join(src, "fdinfo", fd.Name()))
		if err != nil {
			continue
		}
		require.NoError(t, os.Symlink(target, filepath.Join(out, "fd", fd.Name())))
		require.NoError(t, os.WriteFile(filepath.Join(out, "fdinfo", fd.Name()), info, 0o644))
		if ino, ok := procinfo.SocketInode(target); ok {
			sockets[strconv.FormatUint(ino, 10)] = true
			continue
		}
		if procinfo.IsHeartbeatTarget(target) {
			p := filepath.Join(dst, "rootfs", target)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, nil, 0o600))
		}
	}
}

// captureNet saves the header and the captured processes' sockets of
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
