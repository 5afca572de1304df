package procinfo

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeProc describes one process of a synthetic proc tree.
type fakeProc struct {
	pid, ppid int
	state     string
	ticks     uint64
	comm      string
	cmdline   []string
	exe       string
	uid       int
	cwd       string
	// fds maps fd numbers to link text; an absolute target is resolved
	// through root/ (see rootfs).
	fds   map[int]string
	flags map[int]string // fdinfo flags (octal); default 0100001 (O_WRONLY)
	tasks map[int][]int  // tid -> children; default {pid: nil}
	// noChildrenFile leaves out task/*/children (CONFIG_PROC_CHILDREN off).
	noChildrenFile bool
}

const fakeBtime = 1_700_000_000

// writeTree builds <dir>/proc and <dir>/rootfs. rootfs holds the files the
// fds' absolute targets name.
func writeTree(t *testing.T, procs []fakeProc, rootfs map[string]string) (FS, string) {
	t.Helper()
	dir := t.TempDir()
	proc := filepath.Join(dir, "proc")
	require.NoError(t, os.MkdirAll(proc, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(proc, "stat"),
		[]byte("cpu  1 2 3 4 5 6 7 8 9 10\nbtime "+strconv.Itoa(fakeBtime)+"\n"), 0o644))
	for p, content := range rootfs {
		full := filepath.Join(dir, "rootfs", p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
	}
	for _, p := range procs {
		writeProc(t, proc, p)
	}
	fs, err := NewFS(proc)
	require.NoError(t, err)
	return fs, dir
}

func writeProc(t *testing.T, proc string, p fakeProc) {
	t.Helper()
	d := filepath.Join(proc, strconv.Itoa(p.pid))
	require.NoError(t, os.MkdirAll(d, 0o755))
	state := p.state
	if state == "" {
		state = "S"
	}
	// Fields 3.. of /proc/<pid>/stat; field 22 is the start time.
	rest := []string{state, strconv.Itoa(p.ppid), strconv.Itoa(p.pid), strconv.Itoa(p.pid), "0", "-1", "4194304"}
	for len(rest) < 19 {
		rest = append(rest, "0")
	}
	rest = append(rest, strconv.FormatUint(p.ticks, 10))
	for len(rest) < 50 {
		rest = append(rest, "0")
	}
	stat := fmt.Sprintf("%d (%s) %s\n", p.pid, p.comm, strings.Join(rest, " "))
	files := map[string]string{
		"stat":    stat,
		"status":  fmt.Sprintf("Name:\t%s\nUid:\t%d\t%d\t%d\t%d\nGid:\t0\t0\t0\t0\n", p.comm, p.uid, p.uid, p.uid, p.uid),
		"cmdline": strings.Join(p.cmdline, "\x00") + "\x00",
		"environ": "PWD=/\x00",
	}
	if len(p.cmdline) == 0 {
		files["cmdline"] = ""
	}
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(d, name), []byte(content), 0o644))
	}
	if p.exe != "" {
		require.NoError(t, os.Symlink(p.exe, filepath.Join(d, "exe")))
	}
	if p.cwd != "" {
		require.NoError(t, os.Symlink(p.cwd, filepath.Join(d, "cwd")))
	}
	require.NoError(t, os.Symlink("../../rootfs", filepath.Join(d, "root")))
	tasks := p.tasks
	if tasks == nil {
		tasks = map[int][]int{p.pid: nil}
	}
	for tid, kids := range tasks {
		td := filepath.Join(d, "task", strconv.Itoa(tid))
		require.NoError(t, os.MkdirAll(td, 0o755))
		if p.noChildrenFile {
			continue
		}
		var s []string
		for _, k := range kids {
			s = append(s, strconv.Itoa(k)+" ")
		}
		require.NoError(t, os.WriteFile(filepath.Join(td, "children"), []byte(strings.Join(s, "")), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(d, "fd"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(d, "fdinfo"), 0o755))
	for fd, target := range p.fds {
		require.NoError(t, os.Symlink(target, filepath.Join(d, "fd", strconv.Itoa(fd))))
		flags := "0100001"
		if f, ok := p.flags[fd]; ok {
			flags = f
		}
		require.NoError(t, os.WriteFile(filepath.Join(d, "fdinfo", strconv.Itoa(fd)),
			[]byte("pos:\t0\nflags:\t"+flags+"\nmnt_id:\t27\nino:\t1\n"), 0o644))
	}
}

var master = fakeProc{
	pid: 100, ppid: 1, ticks: 5000, comm: "gunicorn", uid: 33, cwd: "/srv/app",
	cmdline: []string{"/usr/bin/python3", "/usr/bin/gunicorn", "-w", "2", "app:app"},
	exe:     "/usr/bin/python3.11",
	fds: map[int]string{
		0: "/dev/null", 1: "pipe:[77]", 2: "/srv/app/stderr.log",
		3: "/srv/app/error.log", 4: "/srv/app/access.log", 5: "socket:[4242]",
		7: "/tmp/wgunicorn-abcd1234 (deleted)", 8: "/tmp/wgunicorn-ef_h5678 (deleted)",
		9: "/srv/app/app.py",
	},
	flags: map[int]string{9: "0100000", 7: "02500002", 8: "02500002"},
	tasks: map[int][]int{100: {101}, 103: {102}},
}

var workers = []fakeProc{
	{pid: 101, ppid: 100, ticks: 5010, comm: "gunicorn", uid: 33, cmdline: master.cmdline, exe: master.exe,
		fds: map[int]string{7: "/tmp/wgunicorn-abcd1234 (deleted)"}},
	{pid: 102, ppid: 100, ticks: 5011, comm: "gunicorn", uid: 33, cmdline: master.cmdline, exe: master.exe,
		fds: map[int]string{8: "/tmp/wgunicorn-ef_h5678 (deleted)"}},
}

var rootfs = map[string]string{
	"/srv/app/stderr.log": "", "/srv/app/error.log": "[2026-01-01 00:00:00 +0000] [100] [INFO] Booting\n",
	"/srv/app/access.log": "", "/srv/app/app.py": "app = None\n",
	"/tmp/wgunicorn-abcd1234 (deleted)": "", "/tmp/wgunicorn-ef_h5678 (deleted)": "",
}

func TestIdentify(t *testing.T) {
	fs, _ := writeTree(t, append([]fakeProc{master}, workers...), rootfs)
	id, err := fs.Identify(100)
	require.NoError(t, err)
	require.Equal(t, Identity{
		PID: 100, PPID: 1, StartTicks: 5000,
		StartTime: time.Unix(fakeBtime+50, 0),
		Exe:       "/usr/bin/python3.11", Cmdline: master.cmdline, Comm: "gunicorn", UID: 33,
	}, id)
	require.Equal(t, time.Unix(fakeBtime, 0), fs.BootTime())

	_, err = fs.Identify(999)
	require.ErrorIs(t, err, ErrGone)
	_, err = fs.Identify(0)
	require.ErrorIs(t, err, ErrRefused)
}

func TestVerify(t *testing.T) {
	zombie := workers[0]
	zombie.state = "Z"
	zombie.cmdline = nil
	titled := fakeProc{pid: 200, ppid: 100, ticks: 7000, comm: "gunicorn: maste", exe: master.exe,
		cmdline: []string{"gunicorn: master [app:app.2]"}}
	for _, tc := range []struct {
		name string
		id   Identity // what the caller knew
		now  *fakeProc
		want error
	}{
		{"same", Identity{PID: 100, StartTicks: 5000, Exe: master.exe, Cmdline: master.cmdline}, &master, nil},
		{"exe replaced on disk is the same process", Identity{PID: 100, StartTicks: 5000, Exe: master.exe + " (deleted)", Cmdline: master.cmdline}, &master, nil},
		{"pid reused", Identity{PID: 100, StartTicks: 4000, Exe: master.exe, Cmdline: master.cmdline}, &master, ErrPIDReused},
		{"exec in the same pid", Identity{PID: 100, StartTicks: 5000, Exe: "/bin/bash", Cmdline: master.cmdline}, &master, ErrPIDReused},
		{"argv changed", Identity{PID: 100, StartTicks: 5000, Exe: master.exe, Cmdline: []string{"/usr/bin/python3", "other"}}, &master, ErrPIDReused},
		{"gunicorn retitled itself", Identity{PID: 200, StartTicks: 7000, Exe: master.exe, Cmdline: []string{"gunicorn: master [app:app]"}}, &titled, nil},
		{"gone", Identity{PID: 300, StartTicks: 1}, nil, ErrGone},
		{"zombie", Identity{PID: 101, StartTicks: 5010, Exe: master.exe, Cmdline: master.cmdline}, &zombie, ErrGone},
		{"pid 1", Identity{PID: 1}, nil, ErrRefused},
		{"pid 0", Identity{}, nil, ErrRefused},
		{"negative", Identity{PID: -100}, nil, ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var procs []fakeProc
			if tc.now != nil {
				procs = append(procs, *tc.now)
			}
			fs, _ := writeTree(t, procs, rootfs)
			err := fs.Verify(tc.id)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			for _, other := range []error{ErrGone, ErrPIDReused, ErrPermission, ErrRefused} {
				if other != tc.want {
					require.NotErrorIs(t, err, other)
				}
			}
		})
	}
}

func TestChildren(t *testing.T) {
	fs, _ := writeTree(t, append([]fakeProc{master}, workers...), rootfs)
	kids, err := fs.Children(100)
	require.NoError(t, err)
	require.Equal(t, []int{101, 102}, kids, "children of every thread")
	kids, err = fs.Children(101)
	require.NoError(t, err)
	require.Empty(t, kids)
	_, err = fs.Children(555)
	require.ErrorIs(t, err, ErrGone)

	// Without CONFIG_PROC_CHILDREN: scan PPid.
	m := master
	m.noChildrenFile = true
	fs, _ = writeTree(t, append([]fakeProc{m}, workers...), rootfs)
	kids, err = fs.Children(100)
	require.NoError(t, err)
	require.Equal(t, []int{101, 102}, kids)
}

func TestOpenFiles(t *testing.T) {
	fs, _ := writeTree(t, []fakeProc{master}, rootfs)
	files, err := fs.OpenFiles(100)
	require.NoError(t, err)
	got := map[int]OpenFile{}
	var order []int
	for _, f := range files {
		got[f.FD] = f
		order = append(order, f.FD)
	}
	require.Equal(t, []int{0, 1, 2, 3, 4, 5, 7, 8, 9}, order)
	require.False(t, got[0].Regular, "/dev/null does not exist in the fixture root")
	require.Equal(t, OpenFile{FD: 1, Target: "pipe:[77]"}, got[1])
	require.True(t, got[3].Regular)
	require.True(t, got[3].Writable)
	require.Equal(t, "/srv/app/error.log", got[3].Path())
	require.Equal(t, OpenFile{FD: 5, Target: "socket:[4242]", Socket: true, Inode: 4242}, got[5])
	require.True(t, got[7].Deleted)
	require.Equal(t, "/tmp/wgunicorn-abcd1234", got[7].Path())
	require.True(t, got[9].Regular)
	require.False(t, got[9].Writable, "opened O_RDONLY")

	tail, err := fs.ReadTail(100, got[3], 10)
	require.NoError(t, err)
	require.Equal(t, "] Booting\n", string(tail))
	_, err = fs.ReadTail(100, got[1], 10)
	require.Error(t, err, "not a regular file")

	cwd, err := fs.Cwd(100)
	require.NoError(t, err)
	require.Equal(t, "/srv/app", cwd)
	_, err = fs.OpenFiles(404)
	require.ErrorIs(t, err, ErrGone)
}

func TestHeartbeatFD(t *testing.T) {
	fs, _ := writeTree(t, append([]fakeProc{master}, workers...), rootfs)
	all, err := fs.HeartbeatFDs(100)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, []int{7, 8}, []int{all[0].FD, all[1].FD})
	require.Equal(t, "/tmp/wgunicorn-ef_h5678", all[1].Path)

	hb, ok, err := fs.HeartbeatFD(100)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 2, hb.Count, "the master holds one per worker")
	require.Equal(t, 7, hb.FD)

	for i, w := range []int{101, 102} {
		hb, ok, err := fs.HeartbeatFD(w)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 1, hb.Count)
		require.Equal(t, all[i].Inode, hb.Inode, "worker %d matches the master's fd by inode", w)
		require.NotZero(t, hb.Inode)
	}

	noHB := fakeProc{pid: 300, ppid: 1, ticks: 1, comm: "sleep", cmdline: []string{"sleep"}, fds: map[int]string{0: "/dev/null"}}
	fs, _ = writeTree(t, []fakeProc{noHB}, rootfs)
	_, ok, err = fs.HeartbeatFD(300)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestIsHeartbeatTarget(t *testing.T) {
	for target, want := range map[string]bool{
		"/tmp/wgunicorn-abcd1234 (deleted)":         true,
		"wgunicorn-a_b_c_d_ (deleted)":              true,
		"/dev/shm/wgunicorn-12345678 (deleted)":     true,
		"/tmp/wgunicorn-abcd1234":                   false,
		"/tmp/wgunicorn-abcd123 (deleted)":          false,
		"/tmp/wgunicorn-ABCD1234 (deleted)":         false,
		"/tmp/xwgunicorn-abcd1234 (deleted)":        false,
		"/tmp/wgunicorn-abcd1234 (deleted) (other)": false,
	} {
		require.Equal(t, want, IsHeartbeatTarget(target), target)
	}
}

func TestListeners(t *testing.T) {
	m := master
	m.fds = map[int]string{5: "socket:[4242]", 6: "socket:[4243]", 7: "socket:[4244]", 8: "socket:[4245]", 9: "socket:[999]"}
	fs, dir := writeTree(t, []fakeProc{m}, nil)
	net := filepath.Join(dir, "proc", "100", "net")
	require.NoError(t, os.MkdirAll(net, 0o755))
	tcp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n" +
		"   1: 0100007F:1F41 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0 100 0 0 10 0\n"
	tcp6 := "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 00000000000000000000000001000000:1F42 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4244 1 0 100 0 0 10 0\n"
	unix := "Num       RefCount Protocol Flags    Type St Inode Path\n" +
		"0000000000000000: 00000002 00000000 00010000 0001 01 4245 /run/app.sock\n"
	for name, content := range map[string]string{"tcp": tcp, "tcp6": tcp6, "unix": unix} {
		require.NoError(t, os.WriteFile(filepath.Join(net, name), []byte(content), 0o644))
	}
	ls, err := fs.Listeners(100)
	require.NoError(t, err)
	require.Equal(t, []Listener{
		{FD: 5, Inode: 4242, Network: "tcp", Addr: "127.0.0.1:8000", Port: 8000},
		{FD: 7, Inode: 4244, Network: "tcp", Addr: "[::1]:8002", Port: 8002},
		{FD: 8, Inode: 4245, Network: "unix", Addr: "/run/app.sock"},
	}, ls, "the established socket 4243 and the unknown 999 are not listeners")
}

func FuzzParseNetTCP(f *testing.F) {
	f.Add("   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0\n")
	f.Add("   0: 00000000000000000000000001000000:1F42 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 4244\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range ParseNetTCP([]byte(s)) {
			require.True(t, len(r.Local) == 4 || len(r.Local) == 16)
		}
	})
}
