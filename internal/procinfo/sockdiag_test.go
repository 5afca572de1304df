package procinfo

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// listenWithBacklog opens a listening socket with listen(2)'s backlog set
// (net.Listen always passes somaxconn) and returns its fd and inode.
func listenWithBacklog(t *testing.T, domain int, sa unix.Sockaddr, backlog int) (int, uint64) {
	t.Helper()
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Close(fd) })
	require.NoError(t, unix.Bind(fd, sa))
	require.NoError(t, unix.Listen(fd, backlog))
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(fd, &st))
	return fd, st.Ino
}

func dialN(t *testing.T, network, addr string, n int) {
	t.Helper()
	for range n {
		c, err := net.Dial(network, addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
	}
}

// TestListenQueues reads real listeners' accept queues through sock_diag:
// connections completed by the kernel and not accepted, and listen(2)'s
// backlog as the ceiling, for TCP over IPv4 and IPv6 and for a unix socket.
func TestListenQueues(t *testing.T) {
	tcpFD, tcpIno := listenWithBacklog(t, unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}, 4)
	sa, err := unix.Getsockname(tcpFD)
	require.NoError(t, err)
	dialN(t, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port)), 3)

	sock := filepath.Join(t.TempDir(), "app.sock")
	_, unixIno := listenWithBacklog(t, unix.AF_UNIX, &unix.SockaddrUnix{Name: sock}, 7)
	dialN(t, "unix", sock, 2)

	want := map[uint64]ListenQueue{
		tcpIno:  {Inode: tcpIno, Network: "tcp", Queued: 3, Max: 4},
		unixIno: {Inode: unixIno, Network: "unix", Queued: 2, Max: 7},
	}
	if fd6, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0); err == nil {
		_ = unix.Close(fd6)
		fd, ino := listenWithBacklog(t, unix.AF_INET6, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}, 9)
		sa, err := unix.Getsockname(fd)
		require.NoError(t, err)
		dialN(t, "tcp6", net.JoinHostPort("::1", strconv.Itoa(sa.(*unix.SockaddrInet6).Port)), 1)
		want[ino] = ListenQueue{Inode: ino, Network: "tcp", Queued: 1, Max: 9}
	}

	got, err := ListenQueues()
	require.NoError(t, err)
	for ino, w := range want {
		require.Equal(t, w, got[ino], "inode %d", ino)
	}
}

func TestParseListenStats(t *testing.T) {
	const in = `TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPHPHits
TcpExt: 0 17 21 99
IpExt: InNoRoutes InOctets
IpExt: 0 1234
`
	st, err := ParseListenStats([]byte(in))
	require.NoError(t, err)
	require.Equal(t, ListenStats{Overflows: 17, Drops: 21}, st)

	for name, bad := range map[string]string{
		"empty":        "",
		"no values":    "TcpExt: ListenOverflows ListenDrops\n",
		"short values": "TcpExt: ListenOverflows ListenDrops\nTcpExt: 1\n",
		"not a number": "TcpExt: ListenOverflows ListenDrops\nTcpExt: 1 x\n",
		"one missing":  "TcpExt: ListenOverflows Other\nTcpExt: 1 2\n",
	} {
		_, err := ParseListenStats([]byte(bad))
		require.Error(t, err, name)
	}
}

func TestTCPListenStatsLive(t *testing.T) {
	fs, err := NewFS("/proc")
	require.NoError(t, err)
	_, err = fs.TCPListenStats()
	require.NoError(t, err)
}

func BenchmarkListenQueues(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		if _, err := ListenQueues(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTCPListenStats(b *testing.B) {
	fs, err := NewFS("/proc")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		if _, err := fs.TCPListenStats(); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseListenStats(f *testing.F) {
	f.Add([]byte("TcpExt: ListenOverflows ListenDrops\nTcpExt: 1 2\n"))
	f.Add([]byte("TcpExt: A ListenDrops ListenOverflows\nTcpExt: 0 18446744073709551615 3\nIpExt: X\nIpExt: 1\n"))
	f.Add([]byte("TcpExt: ListenOverflows\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseListenStats(b)
		if err != nil && st != (ListenStats{}) {
			t.Fatalf("error %v with a value %+v", err, st)
		}
	})
}
