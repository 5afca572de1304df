package workerstate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// oomTree is a synthetic /proc and cgroup tree: a master (100) and its
// worker (101) in the cgroup v1 memory cgroup /app and the cgroup v2 cgroup
// /app.slice.
type oomTree struct {
	t    *testing.T
	dir  string
	fs   procinfo.FS
	now  time.Time
	boot time.Duration // the kernel log clock now
	w    *OOMWatcher
}

const oomMountinfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 22 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
32 22 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
`

func newOOMTree(t *testing.T, opts OOMOptions) *oomTree {
	t.Helper()
	dir := t.TempDir()
	tr := &oomTree{t: t, dir: dir, now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), boot: time.Hour}
	tr.file("proc/stat", "cpu  1 2 3 4\nbtime 1795000000\n")
	tr.file("proc/self/mountinfo", oomMountinfo)
	tr.file("proc/vmstat", "nr_free_pages 1\noom_kill 7\n")
	tr.proc(100, "4:memory:/app\n0::/app.slice\n")
	tr.proc(101, "4:memory:/app\n0::/app.slice\n")
	tr.counter("memory", "/app", 0)
	tr.counter("unified", "/app.slice", 0)
	fs, err := procinfo.NewFS(filepath.Join(dir, "proc"))
	require.NoError(t, err)
	tr.fs = fs
	opts.Now = func() time.Time { return tr.now }
	opts.SinceBoot = func() (time.Duration, error) { return tr.boot, nil }
	opts.HostRoot = filepath.Join(dir, "host")
	if opts.KmsgPath == "" {
		opts.KmsgPath = filepath.Join(dir, "kmsg")
		tr.file("kmsg", "")
	}
	tr.w = NewOOMWatcher(fs, opts)
	return tr
}

func (tr *oomTree) file(p, content string) {
	tr.t.Helper()
	full := filepath.Join(tr.dir, p)
	require.NoError(tr.t, os.MkdirAll(filepath.Dir(full), 0o755))
	require.NoError(tr.t, os.WriteFile(full, []byte(content), 0o644))
}

func (tr *oomTree) proc(pid int, cgroup string) {
	// Fields 3.. of /proc/<pid>/stat; field 22 is the start time.
	rest := []string{"S", "1", strconv.Itoa(pid), strconv.Itoa(pid), "0", "-1", "0"}
	for len(rest) < 19 {
		rest = append(rest, "0")
	}
	rest = append(rest, strconv.Itoa(1000+pid))
	for len(rest) < 50 {
		rest = append(rest, "0")
	}
	tr.file(fmt.Sprintf("proc/%d/stat", pid), fmt.Sprintf("%d (gunicorn) %s\n", pid, strings.Join(rest, " ")))
	tr.file(fmt.Sprintf("proc/%d/cgroup", pid), cgroup)
}

// counter sets the oom_kill counter of a cgroup: hierarchy "memory" (v1)
// or "unified" (v2).
func (tr *oomTree) counter(hierarchy, cg string, n int) {
	if hierarchy == "memory" {
		tr.file(filepath.Join("host/sys/fs/cgroup/memory", cg, "memory.oom_control"), fmt.Sprintf("oom_kill_disable 0\nunder_oom 0\noom_kill %d\n", n))
		return
	}
	tr.file(filepath.Join("host/sys/fs/cgroup/unified", cg, "memory.events"), fmt.Sprintf("low 0\nhigh 0\nmax 3\noom 1\noom_kill %d\noom_group_kill 0\n", n))
}

// kmsg appends a /dev/kmsg record stamped at boot-clock time at.
func (tr *oomTree) kmsg(at time.Duration, msg string) {
	tr.t.Helper()
	f, err := os.OpenFile(filepath.Join(tr.dir, "kmsg"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(tr.t, err)
	defer f.Close()
	_, err = fmt.Fprintf(f, "3,%d,%d,-;%s\n SUBSYSTEM=memory\n", at.Microseconds()/1000, at.Microseconds(), msg)
	require.NoError(tr.t, err)
}

// advance moves both clocks.
func (tr *oomTree) advance(d time.Duration) {
	tr.now = tr.now.Add(d)
	tr.boot += d
}

func TestOOMCounterConfirms(t *testing.T) {
	tr := newOOMTree(t, OOMOptions{})
	tr.w.Observe(100, 101)
	tr.advance(10 * time.Second)
	since := tr.now
	tr.advance(time.Second)
	// The worker is killed by the OOM killer and reaped: gone from /proc.
	tr.counter("memory", "/app", 1)
	tr.counter("unified", "/app.slice", 1)
	require.NoError(t, os.RemoveAll(filepath.Join(tr.dir, "proc/101")))

	ok, ev, err := tr.w.ConfirmOOM(OOMQuery{MasterPID: 100, WorkerPID: 101, Since: since})
	require.NoError(t, err)
	require.True(t, ok, ev)
	require.Contains(t, ev, "memory.oom_control) oom_kill 0→1")
	require.Contains(t, ev, "memory.events) oom_kill 0→1")
	require.Contains(t, ev, `no "Killed process 101"`)

	// Each kill confirms one death only.
	ok, ev, err = tr.w.ConfirmOOM(OOMQuery{MasterPID: 100, WorkerPID: 102, Since: since})
	require.NoError(t, err)
	require.False(t, ok, ev)
	require.Contains(t, ev, "already attributed")

	// A second kill in the cgroup confirms a second death.
	tr.counter("memory", "/app", 2)
	ok, ev, err = tr.w.ConfirmOOM(OOMQuery{MasterPID: 100, WorkerPID: 103, Since: since})
	require.NoError(t, err)
	require.True(t, ok, ev)
	require.Contains(t, ev, "kill #2")
}

func TestOOMKernelLogConfirms(t *testing.T) {
	tr := newOOMTree(t, OOMOptions{})
	tr.w.Observe(100, 101)
	// An old kill of another process that had the same pid.
	tr.kmsg(tr.boot-time.Hour/2, "Out of memory: Killed process 101 (python3) total-vm:1kB")
	tr.advance(10 * time.Second)
	since := tr.now
	ok, ev, err := tr.w.ConfirmOOM(OOMQuery{MasterPID: 100, WorkerPID: 101, Since: since})
	require.NoError(t, err)
	require.False(t, ok, ev)

	tr.advance(time.Second)
	tr.kmsg(tr.boot, "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/app,task=gunicorn: worke,pid=101,uid=0")
	tr.kmsg(tr.boot, "Out of memory: Killed process 101 (gunicorn: worke) total-vm:559960kB, anon-rss:118056kB")
	ok, ev, err = tr.w.ConfirmOOM(OOMQuery{WorkerPID: 101, Since: since})
	require.NoError(t, err)
	require.True(t, ok, ev)
	require.Contains(t, ev, "Killed process 101 (gunicorn: worke)")
	// The host-wide counter alone confirms nothing.
	tr.file("proc/vmstat", "oom_kill 9\n")
	ok, ev, err = tr.w.ConfirmOOM(OOMQuery{MasterPID: 100, WorkerPID: 102, Since: since})
	require.NoError(t, err)
	require.False(t, ok, ev)
	require.Contains(t, ev, "host /proc/vmstat oom_kill 7→9")
}

func TestOOMNoEvidence(t *testing.T) {
	tr := newOOMTree(t, OOMOptions{KmsgPath: "-"})
	// Nothing observed before: no baseline, and no kernel log.
	ok, ev, err := tr.w.ConfirmOOM(OOMQuery{MasterPID: 100, WorkerPID: 101, Since: tr.now})
	require.ErrorIs(t, err, ErrNoOOMEvidence)
	require.False(t, ok)
	require.Contains(t, ev, "no earlier observation")

	// Observed only after the death: still no baseline.
	tr = newOOMTree(t, OOMOptions{KmsgPath: "-"})
	since := tr.now
	tr.advance(time.Second)
	tr.w.Observe(100)
	ok, ev, err = tr.w.ConfirmOOM(OOMQuery{MasterPID: 100, Since: since})
	require.ErrorIs(t, err, ErrNoOOMEvidence)
	require.False(t, ok)
	require.Contains(t, ev, "not observed before")

	// An unreadable kernel log with a usable counter refutes.
	tr2 := newOOMTree(t, OOMOptions{KmsgPath: "/nonexistent/kmsg"})
	tr2.w.Observe(100)
	tr2.advance(time.Second)
	ok, ev, err = tr2.w.ConfirmOOM(OOMQuery{MasterPID: 100, WorkerPID: 101, Since: tr2.now})
	require.NoError(t, err)
	require.False(t, ok)
	require.Contains(t, ev, "kernel log: open /nonexistent/kmsg")
	require.Contains(t, ev, "unchanged since")
}

func TestOOMSyslogFallback(t *testing.T) {
	tr := newOOMTree(t, OOMOptions{KmsgPath: "-"})
	tr.w.kmsgPath, tr.w.syslogFallback = filepath.Join(tr.dir, "missing"), true
	tr.w.klogctl = func(buf []byte) (int, error) {
		return copy(buf, "<6>[ 3600.000001] Memory cgroup out of memory: Killed process 101 (gunicorn) total-vm:1kB\n"), nil
	}
	ok, ev, err := tr.w.ConfirmOOM(OOMQuery{WorkerPID: 101, Since: tr.now.Add(-time.Second)})
	require.NoError(t, err)
	require.True(t, ok, ev)
	require.Contains(t, ev, "syslog(2): Memory cgroup out of memory: Killed process 101")

	tr.w.klogctl = func([]byte) (int, error) { return 0, syscall.EPERM }
	ok, _, err = tr.w.ConfirmOOM(OOMQuery{WorkerPID: 101, Since: tr.now})
	require.False(t, ok)
	require.ErrorIs(t, err, ErrNoOOMEvidence)
	require.ErrorIs(t, err, procinfo.ErrPermission)
}

func TestOOMCgroupQuery(t *testing.T) {
	tr := newOOMTree(t, OOMOptions{KmsgPath: "-"})
	tr.w.Observe(100)
	tr.advance(time.Second)
	since := tr.now
	tr.counter("unified", "/app.slice", 3)
	tr.advance(time.Second)
	// As /proc/<pid>/cgroup shows it, resolved through the mounts.
	ok, ev, err := tr.w.ConfirmOOM(OOMQuery{Cgroup: "/app.slice", Since: since})
	require.NoError(t, err)
	require.True(t, ok, ev)
	// As a directory.
	ok, ev, err = tr.w.ConfirmOOM(OOMQuery{Cgroup: filepath.Join(tr.dir, "host/sys/fs/cgroup/unified/app.slice"), Since: since})
	require.NoError(t, err)
	require.True(t, ok, ev) // kill #2 of the three
	// Unknown cgroup.
	_, ev, err = tr.w.ConfirmOOM(OOMQuery{Cgroup: "/nope", Since: since})
	require.ErrorIs(t, err, ErrNoOOMEvidence)
	require.Contains(t, ev, "no memory.events or memory.oom_control for /nope")
}

func TestOOMBounded(t *testing.T) {
	tr := newOOMTree(t, OOMOptions{MaxTracked: 2})
	for pid := 200; pid < 210; pid++ {
		tr.proc(pid, fmt.Sprintf("4:memory:/app%d\n", pid))
		tr.counter("memory", "/app"+strconv.Itoa(pid), 0)
		tr.w.Observe(pid)
		tr.advance(time.Second)
	}
	tr.w.mu.Lock()
	defer tr.w.mu.Unlock()
	require.LessOrEqual(t, len(tr.w.procs), 2)
	require.LessOrEqual(t, len(tr.w.counters), 2)
	for _, h := range tr.w.counters {
		require.LessOrEqual(t, len(h.segs), oomHistory)
	}
}

func TestCounterHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	h := &counterHist{}
	w := &OOMWatcher{counters: map[string]*counterHist{"f": h}, maxKeep: 10}
	w.record("f", 1, at(0))
	w.record("f", 1, at(10))
	w.record("f", 2, at(20))
	_, _, ok := h.baseline(at(-1))
	require.False(t, ok)
	v, when, ok := h.baseline(at(5))
	require.True(t, ok)
	require.Equal(t, uint64(1), v)
	require.Equal(t, at(5), when) // the value held through t
	v, when, ok = h.baseline(at(15))
	require.True(t, ok)
	require.Equal(t, uint64(1), v)
	require.Equal(t, at(10), when)
	v, _, _ = h.baseline(at(25))
	require.Equal(t, uint64(2), v)
	n, ok := h.claim(1, 3)
	require.True(t, ok)
	require.Equal(t, uint64(2), n)
	n, _ = h.claim(1, 3)
	require.Equal(t, uint64(3), n)
	_, ok = h.claim(1, 3)
	require.False(t, ok)
	for i := range oomHistory + 5 {
		w.record("f", uint64(10+i), at(100+i))
	}
	require.Len(t, h.segs, oomHistory)
}

func TestOOMParsers(t *testing.T) {
	require.Equal(t, []cgroupLine{
		{controllers: []string{"memory"}, path: "/process_api/abc"},
		{controllers: []string{"cpu", "cpuacct"}, path: "/"},
		{controllers: []string{"name=systemd"}, path: "/x"},
		{v2: true, path: "/system.slice/app.service"},
	}, parseProcCgroup([]byte("4:memory:/process_api/abc\n2:cpu,cpuacct:/\n9:name=systemd:/x\n0::/system.slice/app.service\nbogus\n3:pids:relative\n")))

	m := parseCgroupMounts([]byte(oomMountinfo+"40 22 0:30 /kubepods/pod1 /sys/fs/cgroup/my\\040dir rw - cgroup2 cgroup2 rw\nshort line\n"), "/h")
	require.Equal(t, []cgroupMount{{"/", "/h/sys/fs/cgroup/unified"}, {"/kubepods/pod1", "/h/sys/fs/cgroup/my dir"}}, m.v2)
	require.Equal(t, []cgroupMount{{"/", "/h/sys/fs/cgroup/memory"}}, m.memory)

	for _, tc := range []struct {
		p, root, rel string
		ok           bool
	}{
		{"/a/b", "/", "/a/b", true},
		{"/kubepods/pod1/c", "/kubepods/pod1", "/c", true},
		{"/kubepods/pod1", "/kubepods/pod1", "/", true},
		{"/kubepods/pod10", "/kubepods/pod1", "", false},
	} {
		rel, ok := underRoot(tc.p, tc.root)
		require.Equal(t, tc.ok, ok, tc.p)
		if ok {
			require.Equal(t, tc.rel, rel)
		}
	}

	v, ok := oomKillValue([]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"))
	require.True(t, ok)
	require.Equal(t, uint64(3), v)
	_, ok = oomKillValue([]byte("oom 1\n"))
	require.False(t, ok)

	recs := parseKmsg([]byte("6,100,5000000,-;hello\n SUBSYSTEM=x\n4,101,bad,-;no time\nno separator\n"))
	require.Equal(t, []kmsgRecord{{5 * time.Second, "hello"}, {-1, "no time"}}, recs)
	recs = parseSyslog([]byte("<6>[    1.500000] one\nplain\n<4>[bad] two\n"))
	require.Equal(t, []kmsgRecord{{1500 * time.Millisecond, "one"}, {-1, "plain"}, {-1, "two"}}, recs)

	for msg, want := range map[string]int{
		"Out of memory: Killed process 4242 (gunicorn) total-vm:1kB":                          4242,
		"Memory cgroup out of memory: Killed process 7 (python3) total-vm:1kB":                7,
		"Memory cgroup out of memory: Kill process 99 (python) score 1000 or sacrifice child": 99,
		"oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/a,task_memcg=/a,task=x,pid=31,uid=0": 31,
		"oom-kill:constraint=CONSTRAINT_NONE,task=gunicorn: worke,pid=5":                      5,
		"oom_reaper: reaped process 4242 (gunicorn), now anon-rss:0kB":                        0,
		"Killed process 12":    0,
		"audit: pid=12 comm=x": 0,
	} {
		pid, ok := oomKilledPID(msg)
		require.Equal(t, want != 0, ok, msg)
		require.Equal(t, want, pid, msg)
	}
}

func TestReadKmsgFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kmsg")
	require.NoError(t, os.WriteFile(p, []byte(strings.Repeat("6,1,1,-;x\n", 5000)), 0o644))
	b, err := readKmsg(p)
	require.NoError(t, err)
	require.Len(t, parseKmsg(b), 5000)
	_, err = readKmsg(filepath.Join(t.TempDir(), "missing"))
	require.ErrorIs(t, err, procinfo.ErrGone)
	require.True(t, errors.Is(err, os.ErrNotExist))
}

func FuzzOOMParsers(f *testing.F) {
	f.Add([]byte("4:memory:/app\n0::/app.slice\n"))
	f.Add([]byte(oomMountinfo))
	f.Add([]byte("6,100,5000000,-;Out of memory: Killed process 4242 (gunicorn) total-vm:1kB\n SUBSYSTEM=x\n"))
	f.Add([]byte("<6>[    1.500000] oom-kill:constraint=CONSTRAINT_NONE,task=x,pid=5,uid=0\n"))
	f.Add([]byte("oom_kill 3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseProcCgroup(b)
		parseCgroupMounts(b, "")
		oomKillValue(b)
		for _, r := range append(parseKmsg(b), parseSyslog(b)...) {
			if pid, ok := oomKilledPID(r.msg); ok && pid < 0 {
				t.Fatalf("negative pid from %q", r.msg)
			}
		}
	})
}
