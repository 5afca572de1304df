package workerstate

import (
	"errors"
	"fmt"
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
)

func TestRealSIGKILLIsNotOOM(t *testing.T) {
	t.Parallel()
	g, m := realApp(t, gunicorntest.Options{Workers: 2})
	fs := procFS(t)
	w := NewOOMWatcher(fs, OOMOptions{})
	r := sampler{t: t, s: NewSampler(fs, Options{OOM: w}), app: "kill", m: m, timeout: realTimeout, class: "sync"}
	r.until(3*time.Second, func(st AppState) bool { return st.Idle == 2 })

	victim := g.WorkerPIDs()[0]
	since := time.Now()
	require.NoError(t, g.SignalWorker(victim, syscall.SIGKILL))
	// Gunicorn 20.1: "Worker with pid N was terminated due to signal 9";
	// 21+: "Worker (pid:N) was sent SIGKILL!".
	require.Eventually(t, func() bool {
		log := g.ErrorLogText()
		return strings.Contains(log, fmt.Sprintf("pid %d was terminated due to signal 9", victim)) ||
			strings.Contains(log, fmt.Sprintf("(pid:%d) was sent SIGKILL", victim))
	}, 10*time.Second, 20*time.Millisecond)

	confirmed, evidence, err := w.ConfirmOOM(OOMQuery{MasterPID: m.PID, WorkerPID: victim, Since: since})
	t.Log(evidence)
	require.NoError(t, err)
	require.False(t, confirmed, evidence)
	// The worker's cgroup was remembered from the samples before it died.
	require.Contains(t, evidence, "unchanged since")
	if _, kerr := readKmsg(DefaultKmsgPath); kerr == nil {
		require.Contains(t, evidence, fmt.Sprintf(`no "Killed process %d"`, victim))
	}
}

// testCgroup is a memory cgroup the test created and removes.
type testCgroup struct {
	dir    string // the cgroup directory
	v2     bool
	parent string // where to move leftover processes back
}

func (c testCgroup) add(pid int) error {
	return os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
}

// makeMemoryCgroup creates a child memory cgroup limited to limit bytes
// without swap: under a cgroup v2 hierarchy whose root delegates the memory
// controller, else under this process's cgroup v1 memory hierarchy. It
// returns a reason instead when the machine does not allow it.
func makeMemoryCgroup(t *testing.T, limit int64) (testCgroup, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return testCgroup{}, "creating a cgroup needs root"
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return testCgroup{}, err.Error()
	}
	mounts := parseCgroupMounts(mi, "")
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return testCgroup{}, err.Error()
	}
	name := fmt.Sprintf("reflex-workerstate-%d-%d", os.Getpid(), time.Now().UnixNano())
	var reasons []string
	for _, mnt := range mounts.v2 {
		ctl, err := os.ReadFile(filepath.Join(mnt.point, "cgroup.subtree_control"))
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("cgroup v2 at %s: %v", mnt.point, err))
			continue
		}
		if !slices.Contains(strings.Fields(string(ctl)), "memory") {
			// The root cgroup may enable it for its children (it is exempt
			// from the no-internal-processes rule).
			if mnt.root != "/" || os.WriteFile(filepath.Join(mnt.point, "cgroup.subtree_control"), []byte("+memory"), 0o644) != nil {
				reasons = append(reasons, fmt.Sprintf("cgroup v2 at %s does not delegate the memory controller", mnt.point))
				continue
			}
		}
		dir := filepath.Join(mnt.point, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			reasons = append(reasons, fmt.Sprintf("cgroup v2: %v", err))
			continue
		}
		c := testCgroup{dir: dir, v2: true, parent: mnt.point}
		t.Cleanup(func() { removeCgroup(t, c) })
		if err := writeAll(dir, [][2]string{{"memory.max", strconv.FormatInt(limit, 10)}, {"memory.swap.max", "0"}}); err != nil {
			reasons = append(reasons, fmt.Sprintf("cgroup v2: %v", err))
			continue
		}
		return c, ""
	}
	for _, l := range parseProcCgroup(own) {
		if !slices.Contains(l.controllers, "memory") {
			continue
		}
		for _, mnt := range mounts.memory {
			rel, ok := underRoot(l.path, mnt.root)
			if !ok {
				continue
			}
			parent := filepath.Join(mnt.point, rel)
			dir := filepath.Join(parent, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				reasons = append(reasons, fmt.Sprintf("cgroup v1 memory: %v", err))
				continue
			}
			c := testCgroup{dir: dir, parent: parent}
			t.Cleanup(func() { removeCgroup(t, c) })
			settings := [][2]string{{"memory.limit_in_bytes", strconv.FormatInt(limit, 10)}}
			if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil {
				settings = append(settings, [2]string{"memory.memsw.limit_in_bytes", strconv.FormatInt(limit, 10)})
			}
			if err := writeAll(dir, settings); err != nil {
				reasons = append(reasons, fmt.Sprintf("cgroup v1 memory: %v", err))
				continue
			}
			return c, ""
		}
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no cgroup v2 hierarchy with the memory controller and no cgroup v1 memory hierarchy is mounted")
	}
	return testCgroup{}, strings.Join(reasons, "; ")
}

func writeAll(dir string, kv [][2]string) error {
	for _, s := range kv {
		if err := os.WriteFile(filepath.Join(dir, s[0]), []byte(s[1]), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// removeCgroup moves any process left in c back to its parent and removes
// it.
func removeCgroup(t *testing.T, c testCgroup) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			_ = os.WriteFile(filepath.Join(c.parent, "cgroup.procs"), []byte(f), 0o644)
		}
		err := os.Remove(c.dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("remove test cgroup %s: %v", c.dir, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRealCgroupOOM(t *testing.T) {
	t.Parallel()
	cg, reason := makeMemoryCgroup(t, 96<<20)
	if reason != "" {
		// Deliberately a skip even under REFLEX_REQUIRE_REAL=1: whether a
		// test may create a memory cgroup depends on the kernel and on how
		// the CI container delegates cgroups, not on installed packages.
		t.Skipf("cannot create a memory-limited cgroup here (this test may skip even under REFLEX_REQUIRE_REAL=1): %s", reason)
	}
	t.Logf("memory cgroup %s (cgroup v2: %v)", cg.dir, cg.v2)
	g, m := realApp(t, gunicorntest.Options{Workers: 1, Timeout: 30})
	fs := procFS(t)
	w := NewOOMWatcher(fs, OOMOptions{})
	r := sampler{t: t, s: NewSampler(fs, Options{OOM: w}), app: "oom", m: m, timeout: 30 * time.Second, class: "sync"}
	victim := g.WorkerPIDs()[0]
	require.NoError(t, cg.add(victim))
	// Observe the worker in its new cgroup (the counter's baseline).
	r.until(3*time.Second, func(st AppState) bool { return st.Idle == 1 })

	since := time.Now()
	status, body, err := g.Get("/alloc?mb=512")
	require.False(t, err == nil && status == 200, "the allocation succeeded: %d %s", status, body)
	require.Eventually(t, func() bool {
		log := g.ErrorLogText()
		return strings.Contains(log, fmt.Sprintf("pid %d was terminated due to signal 9", victim)) ||
			strings.Contains(log, fmt.Sprintf("(pid:%d) was sent SIGKILL", victim))
	}, 10*time.Second, 20*time.Millisecond, "the worker was not SIGKILLed")

	confirmed, evidence, err := w.ConfirmOOM(OOMQuery{MasterPID: m.PID, WorkerPID: victim, Since: since})
	t.Log(evidence)
	require.NoError(t, err)
	require.True(t, confirmed, evidence)
	require.Contains(t, evidence, cg.dir)
	require.Regexp(t, `oom_kill 0→1`, evidence)
	if _, kerr := readKmsg(DefaultKmsgPath); kerr == nil {
		require.Contains(t, evidence, fmt.Sprintf("Killed process %d ", victim))
	}
	// The same kill does not confirm a second death.
	again, evidence, err := w.ConfirmOOM(OOMQuery{MasterPID: m.PID, Cgroup: cg.dir, Since: since})
	require.NoError(t, err)
	require.False(t, again, evidence)
}
