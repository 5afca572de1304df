package procinfo

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

const netTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4959 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77497 1 00000000c913cdd1 100 0 0 10 0
   8: 0100007F:DA36 0100007F:4A37 01 00000000:00000000 00:00000000 00000000     0        0 79566 1 0000000006a149a3 20 0 0 10 -1
   9: garbage
`

const netTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1
   1: 0000000000000000FFFF00000100007F:1538 0000000000000000FFFF00000200007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1
`

func TestParseNetTCP(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the sample tables are little-endian")
	}
	rows := ParseNetTCP([]byte(netTCP))
	require.Len(t, rows, 2)
	require.Equal(t, TCPConn{Local: net.IPv4(127, 0, 0, 1).To4(), LocalPort: 0x4959, Remote: net.IPv4zero.To4(), State: TCPListen, Inode: 77497}, rows[0])
	require.Equal(t, 0xDA36, rows[1].LocalPort)
	require.Equal(t, 18999, rows[1].RemotePort)
	require.Equal(t, "127.0.0.1", rows[1].Remote.String())
	require.Equal(t, uint64(TCPEstablished), rows[1].State)

	rows = ParseNetTCP([]byte(netTCP6))
	require.Len(t, rows, 2)
	require.Equal(t, "::1", rows[0].Local.String())
	require.Equal(t, 8080, rows[0].LocalPort)
	require.Equal(t, 54321, rows[0].RemotePort)
	// IPv4-mapped addresses read as IPv4.
	require.Equal(t, "127.0.0.1", rows[1].Local.String())
	require.Equal(t, "127.0.0.2", rows[1].Remote.String())
	require.Equal(t, 5432, rows[1].LocalPort)
}

func TestParseNetUnix(t *testing.T) {
	in := `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 15003 /run/app.sock
0000000000000000: 00000003 00000000 00000000 0001 03 15010 /var/run/postgresql/.s.PGSQL.5432
0000000000000000: 00000003 00000000 00000000 0001 03 15011
bad line
`
	rows := ParseNetUnix([]byte(in))
	require.Equal(t, []UnixSocket{
		{Inode: 15003, Flags: unixAcceptCon, Path: "/run/app.sock"},
		{Inode: 15010, Path: "/var/run/postgresql/.s.PGSQL.5432"},
		{Inode: 15011},
	}, rows)
}

func TestSocketInode(t *testing.T) {
	ino, ok := SocketInode("socket:[12345]")
	require.True(t, ok)
	require.Equal(t, uint64(12345), ino)
	_, ok = SocketInode("pipe:[1]")
	require.False(t, ok)
	_, ok = SocketInode("socket:[x]")
	require.False(t, ok)
}

// TestClassify: EACCES and EPERM are both refusals (/proc answers EPERM
// from its ptrace access checks), ENOENT and ESRCH both mean gone.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{&os.PathError{Op: "open", Path: "/proc/1/fd", Err: syscall.EACCES}, ErrPermission},
		{&os.PathError{Op: "read", Path: "/proc/1/syscall", Err: syscall.EPERM}, ErrPermission},
		{&os.PathError{Op: "open", Path: "/proc/9/stat", Err: syscall.ENOENT}, ErrGone},
		{&os.PathError{Op: "read", Path: "/proc/9/stat", Err: syscall.ESRCH}, ErrGone},
	} {
		got := Classify(tc.err)
		require.ErrorIs(t, got, tc.want, "%v", tc.err)
		var pe *os.PathError
		require.True(t, errors.As(got, &pe), "the original stays in the chain")
	}
	other := errors.New("EIO")
	require.Equal(t, other, Classify(other))
	require.NoError(t, Classify(nil))
	require.Equal(t, ErrRefused, Classify(ErrRefused))
}

func TestReadPidfile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "x.pid")
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	pid, err := ReadPidfile(write("4242\n"))
	require.NoError(t, err)
	require.Equal(t, 4242, pid)
	for _, bad := range []string{"", "abc\n", "-5\n", "12 13\n"} {
		_, err := ReadPidfile(write(bad))
		require.Error(t, err, "%q", bad)
	}
	for _, refused := range []string{"0\n", "1\n"} {
		_, err := ReadPidfile(write(refused))
		require.ErrorIs(t, err, ErrRefused, "%q", refused)
	}
	_, err = ReadPidfile(filepath.Join(dir, "missing.pid"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestNormalizeWorkerClass(t *testing.T) {
	for in, want := range map[string]string{
		"":                                      "",
		"sync":                                  "sync",
		" SYNC ":                                "sync",
		"egg:gunicorn#sync":                     "sync",
		"egg:gunicorn#gevent":                   "gevent",
		"gunicorn.workers.sync.SyncWorker":      "sync",
		"gunicorn.workers.gthread.ThreadWorker": "gthread",
		"gunicorn.workers.ggevent.GeventWorker": "gevent",
		"gthread":                               "gthread",
		"uvicorn.workers.UvicornWorker":         "uvicorn.workers.UvicornWorker",
		"egg:meinheld#gunicorn_worker":          "gunicorn_worker",
	} {
		require.Equal(t, want, NormalizeWorkerClass(in), "%q", in)
	}
}

func FuzzParseNetTables(f *testing.F) {
	f.Add([]byte(netTCP))
	f.Add([]byte(netTCP6))
	f.Add([]byte("Num RefCount Protocol Flags Type St Inode Path\n0: 1 0 0 1 1 5 /x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, r := range ParseNetTCP(b) {
			if r.LocalPort < 0 || r.LocalPort > 65535 || r.RemotePort < 0 || r.RemotePort > 65535 {
				t.Fatalf("port out of range: %+v", r)
			}
		}
		ParseNetUnix(b)
	})
}
