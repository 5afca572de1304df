package workerstate

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

func TestParseSyscall(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscallState
		err  bool
	}{
		{in: "running\n", want: syscallState{Running: true}},
		{in: "-1 0x7ffd1 0x7f00\n", want: syscallState{NotInSyscall: true, Nr: -1}},
		{
			in:   "270 0x8 0x7fff7ff53bf0 0x0 0x0 0x7fff7ff53b30 0x0 0x7fff7ff53b20 0x7f1cc8846954\n",
			want: syscallState{Nr: 270, Args: [6]uint64{8, 0x7fff7ff53bf0, 0, 0, 0x7fff7ff53b30, 0}},
		},
		{
			in:   "45 0xb 0x14287500 0x10000 0x0 0x0 0x0 0x7fff7ff5fc68 0x7f1cc8852929",
			want: syscallState{Nr: 45, Args: [6]uint64{0xb, 0x14287500, 0x10000, 0, 0, 0}},
		},
		{in: "", err: true},
		{in: "abc", err: true},
		{in: "270 0x8", err: true},
		{in: "270 0x8 zz 0x0 0x0 0x0 0x0 0x1 0x2", err: true},
	} {
		got, err := parseSyscall(tc.in)
		if tc.err {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestLookupSyscall(t *testing.T) {
	e, ok := lookupSyscall("amd64", 270)
	require.True(t, ok)
	require.Equal(t, sysEntry{"pselect6", sysSelect}, e)
	e, ok = lookupSyscall("arm64", 72)
	require.True(t, ok)
	require.Equal(t, sysEntry{"pselect6", sysSelect}, e)
	_, ok = lookupSyscall("amd64", 9999)
	require.False(t, ok)
	_, ok = lookupSyscall("mips", 0)
	require.False(t, ok)
}

// The /proc/net parsers are procinfo's (procinfo/parse_test.go); these are
// the peers this package makes of their rows.
func TestPeers(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the sample table is little-endian")
	}
	rows := procinfo.ParseNetTCP([]byte(netTCP6))
	require.Len(t, rows, 2)
	require.Equal(t, "127.0.0.2:40000", tcpPeer(rows[1]).addr)
	require.True(t, unixPeer("/var/run/postgresql/.s.PGSQL.5432").postgres)
	require.False(t, unixPeer("/run/app.sock").postgres)
	require.Equal(t, "unix", unixPeer("").addr)
}

const netTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1
   1: 0000000000000000FFFF00000100007F:1538 0000000000000000FFFF00000200007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1
`

func TestParseEpollFdinfo(t *testing.T) {
	in := `pos:	0
flags:	02000002
mnt_id:	15
ino:	1057
tfd:        5 events:       19 data:                5  pos:0 ino:12ec9 sdev:8
tfd:        9 events:       19 data:                9  pos:0 ino:3f2 sdev:c
tfd:      bad
`
	require.Equal(t, []epollTarget{{5, 0x12ec9}, {9, 0x3f2}}, parseEpollFdinfo([]byte(in)))
}

func TestFDSets(t *testing.T) {
	set := make([]byte, 16)
	binary.NativeEndian.PutUint64(set, 1<<5|1<<7)
	binary.NativeEndian.PutUint64(set[8:], 1<<2) // fd 66
	require.Equal(t, []int{5, 7, 66}, decodeFDSet(set, 128))
	require.Equal(t, []int{5}, decodeFDSet(set, 6), "bits at or above nfds are not waited on")
	require.Empty(t, decodeFDSet(set, 0))
	require.Equal(t, []int{5, 7}, decodeFDSet(set[:8], 128), "a short read stops early")
	require.Equal(t, 8, fdSetBytes(8))
	require.Equal(t, 16, fdSetBytes(65))
	require.Equal(t, 128, fdSetBytes(1<<40))

	var pfds []byte
	for _, fd := range []int32{7, -1, 12} {
		b := make([]byte, pollfdSize)
		binary.NativeEndian.PutUint32(b, uint32(fd))
		pfds = append(pfds, b...)
	}
	require.Equal(t, []int{7, 12}, decodePollFDs(pfds))
	require.Empty(t, decodePollFDs(pfds[:5]))
}

func TestStatState(t *testing.T) {
	require.Equal(t, byte('R'), statState("1702 (gunicorn: worke) R 1697 1697"))
	require.Equal(t, byte('S'), statState("1 (a) (b)) S 0"))
	require.Zero(t, statState("garbage"))
}

func TestAcceptedOn(t *testing.T) {
	l := procinfo.Listener{Network: "tcp", Addr: "127.0.0.1:8000", Port: 8000}
	c := procinfo.TCPConn{Local: net.IPv4(127, 0, 0, 1), LocalPort: 8000, State: procinfo.TCPEstablished}
	require.True(t, acceptedOn(c, l))
	c.LocalPort = 8001
	require.False(t, acceptedOn(c, l))
	c.LocalPort, c.Local = 8000, net.IPv4(10, 0, 0, 1)
	require.False(t, acceptedOn(c, l))
	require.True(t, acceptedOn(c, procinfo.Listener{Network: "tcp", Addr: "0.0.0.0:8000", Port: 8000}))
	require.True(t, acceptedOn(c, procinfo.Listener{Network: "tcp", Addr: "[::]:8000", Port: 8000}))
}

func FuzzParseSyscall(f *testing.F) {
	for _, s := range []string{
		"running", "-1 0x1 0x2", "270 0x8 0x7fff7ff53bf0 0x0 0x0 0x7fff7ff53b30 0x0 0x7fff7ff53b20 0x7f1cc8846954",
		"202 0x14237670 0x189 0x0 0x0 0x0 0xffffffff 0x7fff7ff5fc50 0x7f1cc87cdf16", "", "0 0x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseSyscall(s)
		if err != nil {
			return
		}
		o := observation{SysOK: true, Sys: st, State: 'S'}
		if e, ok := lookupSyscall("amd64", st.Nr); ok {
			o.SysName, o.Class = e.name, e.class
		}
		decideActivity(o)
		classifyStuck(o)
	})
}

func FuzzParseNetTables(f *testing.F) {
	f.Add([]byte(netTCP6))
	f.Add([]byte("Num RefCount Protocol Flags Type St Inode Path\n0: 1 0 0 1 1 5 /x\n"))
	f.Add([]byte("tfd: 5 events: 19 data: 5 pos:0 ino:12ec9 sdev:8\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, r := range procinfo.ParseNetTCP(b) {
			if r.LocalPort < 0 || r.LocalPort > 65535 || r.RemotePort < 0 || r.RemotePort > 65535 {
				t.Fatalf("port out of range: %+v", r)
			}
			_ = tcpPeer(r)
		}
		parseEpollFdinfo(b)
		decodeFDSet(b, uint64(len(b))*8)
		decodePollFDs(b)
	})
}
