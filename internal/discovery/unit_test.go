package discovery

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCgroupUnit(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, cgroup, want string }{
		{"v2 service", "0::/system.slice/shop.service\n", "shop.service"},
		{"v2 sub-cgroup of a service", "0::/system.slice/shop.service/payload\n", "shop.service"},
		{"v2 instance", "0::/system.slice/system-web.slice/web@blue.service\n", "web@blue.service"},
		{"hybrid: v2 at the root, name=systemd has it", "9:name=systemd:/system.slice/shop.service\n4:memory:/x\n0::/\n", "shop.service"},
		{"user unit: files are in the user's home", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/shop.service\n", ""},
		{"login session scope", "0::/user.slice/user-1000.slice/session-3.scope\n", ""},
		{"container root", "0::/\n", ""},
		{"garbage", "\x00\x01\nno colons\n", ""},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, cgroupUnit([]byte(tc.cgroup)), tc.name)
	}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
}

// TestReadUnit checks systemd's merge rules for the settings read: the
// first directory's fragment wins, drop-ins apply in name order with an
// earlier directory masking the same name, an empty ExecStart= resets,
// templates and specifiers, Environment= and EnvironmentFile=.
func TestReadUnit(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	etc, lib := filepath.Join(root, "etc"), filepath.Join(root, "lib")
	dirs := []string{etc, lib}

	writeFile(t, filepath.Join(lib, "shop.service"), "[Unit]\nDescription=x\nExecStart=/wrong\n[Service]\nExecStart=/usr/bin/gunicorn --timeout 9 app:app\n")
	writeFile(t, filepath.Join(etc, "shop.service"), "[Service]\n# a comment\nWorkingDirectory=/srv/shop\nExecStart=-/usr/bin/gunicorn \\\n  --timeout 7 \\\n  --name 'my shop' app:app\nEnvironment=\"GUNICORN_CMD_ARGS=--workers 3\" OTHER=1\n")
	u, ok := readUnit(dirs, "shop.service")
	require.True(t, ok)
	require.Equal(t, filepath.Join(etc, "shop.service"), u.Fragment)
	require.Equal(t, []string{"/usr/bin/gunicorn", "--timeout", "7", "--name", "my shop", "app:app"}, u.ExecStart)
	require.Equal(t, "--workers 3", u.Env["GUNICORN_CMD_ARGS"])
	require.Equal(t, "/srv/shop", u.WorkingDir)

	// Drop-ins: 10-a in etc masks 10-a in lib; 20-b resets and replaces.
	writeFile(t, filepath.Join(lib, "shop.service.d", "10-a.conf"), "[Service]\nExecStart=\nExecStart=/usr/bin/gunicorn --timeout 1 app:app\n")
	writeFile(t, filepath.Join(etc, "shop.service.d", "10-a.conf"), "[Service]\nEnvironmentFile=-"+filepath.Join(root, "env")+"\n")
	writeFile(t, filepath.Join(lib, "shop.service.d", "20-b.conf"), "[Service]\nExecStart=\nExecStart=/usr/bin/gunicorn --timeout 3 app:app\n")
	writeFile(t, filepath.Join(root, "env"), "# env file\nGUNICORN_CMD_ARGS=\"--timeout 4 --workers 5\"\n")
	u, ok = readUnit(dirs, "shop.service")
	require.True(t, ok)
	require.Equal(t, []string{filepath.Join(etc, "shop.service.d", "10-a.conf"), filepath.Join(lib, "shop.service.d", "20-b.conf")}, u.DropIns)
	require.Equal(t, []string{"/usr/bin/gunicorn", "--timeout", "3", "app:app"}, u.ExecStart)
	require.Equal(t, "--timeout 4 --workers 5", u.Env["GUNICORN_CMD_ARGS"])

	// A template instance, with specifiers.
	writeFile(t, filepath.Join(lib, "web@.service"), "[Service]\nExecStart=/usr/bin/gunicorn --name %p-%i --pid /run/%I.pid --timeout 100%% app:app\n")
	u, ok = readUnit(dirs, "web@blue-green.service")
	require.True(t, ok)
	require.Equal(t, []string{"/usr/bin/gunicorn", "--name", "web-blue-green", "--pid", "/run/blue/green.pid", "--timeout", "100%", "app:app"}, u.ExecStart)

	_, ok = readUnit(dirs, "absent.service")
	require.False(t, ok)
	writeFile(t, filepath.Join(lib, "noexec.service"), "[Service]\nType=simple\n")
	u, ok = readUnit(dirs, "noexec.service")
	require.False(t, ok)
	require.NotEmpty(t, u.Fragment)
}

// TestParseConfigDump reads the dump of a real Debian 20.1 master at
// --log-level debug (it ran with --max-requests 3 and timeout 30).
func TestParseConfigDump(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/debug-dump-20.1.log")
	require.NoError(t, err)
	vals, ok := parseConfigDump(b, 23032)
	require.True(t, ok)
	require.Equal(t, []string{"30"}, vals["timeout"])
	require.Equal(t, []string{"3"}, vals["max_requests"])
	require.Equal(t, []string{"sync"}, vals["worker_class"])
	require.Equal(t, []string{"/srv/run/C/g.pid"}, vals["pidfile"])
	require.Equal(t, []string{`%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`}, vals["access_log_format"])
	require.NotContains(t, vals, "errorlog", "log paths are not taken from the log itself")

	_, ok = parseConfigDump(b, 23033)
	require.False(t, ok, "a worker's pid wrote no dump")

	// The last dump wins (a HUP logs it again); None unsets.
	two := string(b) + "[2026-11-24 17:59:00 +0000] [23032] [DEBUG] Current configuration:\n  timeout: 5\n  pidfile: None\n[2026-11-24 17:59:00 +0000] [23032] [INFO] Hang up: Master\n"
	vals, ok = parseConfigDump([]byte(two), 23032)
	require.True(t, ok)
	require.Equal(t, []string{"5"}, vals["timeout"])
	require.Contains(t, vals, "pidfile")
	require.Nil(t, vals["pidfile"])
	d, good := parseSeconds(vals["timeout"][0])
	require.True(t, good)
	require.Equal(t, 5*time.Second, d)
}

func FuzzParseConfigDump(f *testing.F) {
	f.Add([]byte("[x] [1] [DEBUG] Current configuration:\n  timeout: 3\n"), 1)
	f.Add([]byte("[x] [1] [DEBUG] Current configuration:\n  timeout: None\n  : \n"), 1)
	f.Fuzz(func(_ *testing.T, b []byte, pid int) {
		_, _ = parseConfigDump(b, pid)
	})
}

func FuzzReadUnitLines(f *testing.F) {
	f.Add([]byte("[Service]\nExecStart=/usr/bin/gunicorn \\\n -t 3 app\nEnvironment=A=1 'B=2 3'\n"))
	f.Fuzz(func(_ *testing.T, b []byte) {
		var u unitInfo
		u.Env = map[string]string{}
		u.apply(b, specifiers{unit: "a@b.service", prefix: "a", instance: "b"})
		_ = cgroupUnit(b)
	})
}
