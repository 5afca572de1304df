package procinfo

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestChildRole checks ChildRole rule by rule (see its doc), on a synthetic
// tree: master 100 holds heartbeat files 7 and 8; child 150 varies.
func TestChildRole(t *testing.T) {
	untitled := master.cmdline
	titledMaster := []string{"gunicorn: master [app]"}
	own := "/tmp/wgunicorn-zzzz0000 (deleted)"
	type tc struct {
		name         string
		parentCmd    []string
		child        fakeProc
		env          string // environ content; "-" removes the file
		hbErr        bool   // the caller could not read the child's heartbeats
		parentHBLost bool   // the caller could not read the master's
		want         Role
	}
	child := func(cmd []string, fds map[int]string) fakeProc {
		return fakeProc{pid: 150, ppid: 100, ticks: 6000, comm: "gunicorn", cmdline: cmd, exe: master.exe, fds: fds}
	}
	shared := map[int]string{7: "/tmp/wgunicorn-abcd1234 (deleted)"}
	for _, c := range []tc{
		{name: "1 titled worker", parentCmd: titledMaster, child: child([]string{"gunicorn: worker [app]"}, nil), want: RoleWorker},
		{name: "2 titled NAME.2 master", parentCmd: titledMaster, child: child([]string{"gunicorn: master [app.2]"}, map[int]string{3: own}), want: RoleUpgradeChild},
		{name: "2 titled with the parent's title: just forked", parentCmd: titledMaster, child: child(titledMaster, shared), want: RoleWorker},
		{name: "3 another title", parentCmd: titledMaster, child: child([]string{"gunicorn: arbiter"}, nil), want: RoleUnknown},
		{name: "4 no command line: exiting (its argv released) or inside execve", parentCmd: untitled, child: child(nil, nil), env: "-", want: RoleUnknown},
		{name: "5 shares a heartbeat file", parentCmd: untitled, child: child(untitled, shared), want: RoleWorker},
		{name: "5 holds only its own workers' files", parentCmd: untitled, child: child(untitled, map[int]string{3: own}), want: RoleUpgradeChild},
		{name: "6 master unknown, one file", parentCmd: untitled, child: child(untitled, map[int]string{3: own}), parentHBLost: true, want: RoleWorker},
		{name: "6 master unknown, several files", parentCmd: untitled, child: child(untitled, map[int]string{3: own, 7: shared[7]}), parentHBLost: true, want: RoleUpgradeChild},
		{name: "7 GUNICORN_PID is the parent", parentCmd: untitled, child: child(untitled, nil), env: "GUNICORN_PID=100\x00", want: RoleUpgradeChild},
		{name: "7 GUNICORN_PID of another master", parentCmd: untitled, child: child(untitled, nil), env: "GUNICORN_PID=7\x00", want: RoleUnknown},
		{name: "9 heartbeats unreadable", parentCmd: untitled, child: child(untitled, nil), hbErr: true, want: RoleWorker},
		{name: "10 no heartbeat, environ unreadable", parentCmd: untitled, child: child(untitled, nil), env: "-", want: RoleUpgradeChild},
		{name: "11 no heartbeat, environ says nothing", parentCmd: untitled, child: child(untitled, nil), want: RoleUnknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := master
			m.cmdline = c.parentCmd
			rfs := map[string]string{own: ""}
			for k, v := range rootfs {
				rfs[k] = v
			}
			fs, dir := writeTree(t, []fakeProc{m, c.child}, rfs)
			envPath := filepath.Join(dir, "proc", "150", "environ")
			switch c.env {
			case "":
			case "-":
				require.NoError(t, os.Remove(envPath))
			default:
				require.NoError(t, os.WriteFile(envPath, []byte(c.env), 0o644))
			}
			in := Child{PID: 150, ParentPID: 100, Cmdline: c.child.cmdline, ParentCmdline: m.cmdline}
			in.Heartbeats, in.HeartbeatsErr = fs.HeartbeatFDs(150)
			require.NoError(t, in.HeartbeatsErr)
			if c.hbErr {
				in.Heartbeats, in.HeartbeatsErr = nil, errors.New("permission denied")
			}
			phb, err := fs.HeartbeatFDs(100)
			require.NoError(t, err)
			if !c.parentHBLost {
				in.ParentHeartbeats, in.ParentHeartbeatsKnown = phb, true
			}
			require.Equal(t, c.want, fs.ChildRole(in))
		})
	}

	t.Run("7 children of its own", func(t *testing.T) {
		k := child(untitled, nil)
		k.tasks = map[int][]int{150: {151}}
		grandchild := fakeProc{pid: 151, ppid: 150, ticks: 6001, comm: "gunicorn", cmdline: untitled, fds: map[int]string{3: own}}
		fs, _ := writeTree(t, []fakeProc{master, k, grandchild}, map[string]string{own: ""})
		in := Child{PID: 150, ParentPID: 100, Cmdline: untitled, ParentCmdline: untitled, ParentHeartbeatsKnown: true}
		require.Equal(t, RoleUpgradeChild, fs.ChildRole(in))
		require.Equal(t, "upgrade_child", fs.ChildRole(in).String())
	})
}

func TestParseTitle(t *testing.T) {
	for _, c := range []struct {
		cmd  []string
		want Title
		ok   bool
	}{
		{[]string{"gunicorn: master [app]"}, Title{"master", "app"}, true},
		{[]string{"gunicorn: worker [my app.2]"}, Title{"worker", "my app.2"}, true},
		{[]string{"gunicorn: master"}, Title{Role: "master"}, true},
		{[]string{"gunicorn: master [app]", "x"}, Title{}, false},
		{[]string{"/usr/bin/gunicorn"}, Title{}, false},
		{nil, Title{}, false},
	} {
		got, ok := ParseTitle(c.cmd)
		require.Equal(t, c.ok, ok, "%q", c.cmd)
		require.Equal(t, c.want, got, "%q", c.cmd)
	}
}
