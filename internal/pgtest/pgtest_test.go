package pgtest

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestClusterLifecycle(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{MaxConnections: 12, SuperuserReservedConnections: 2})
	pid := c.PID()
	require.NotZero(t, pid)

	conn := c.Connect(t, c.DSN(Superuser))
	var maxConn, reserved string
	require.NoError(t, conn.QueryRow(ctx(t), "SHOW max_connections").Scan(&maxConn))
	require.NoError(t, conn.QueryRow(ctx(t), "SHOW superuser_reserved_connections").Scan(&reserved))
	require.Equal(t, "12", maxConn)
	require.Equal(t, "2", reserved)
	var listen string
	require.NoError(t, conn.QueryRow(ctx(t), "SHOW listen_addresses").Scan(&listen))
	for _, a := range strings.Split(listen, ",") {
		ip := net.ParseIP(strings.TrimSpace(a))
		require.True(t, ip != nil && ip.IsLoopback(), "listen address %q is not loopback", a)
	}
	if c.IPv6 {
		v6 := strings.Replace(c.DSN(Superuser), "host=127.0.0.1", "host=::1", 1)
		c6 := c.Connect(t, v6)
		var addr string
		require.NoError(t, c6.QueryRow(ctx(t), "SELECT host(inet_client_addr())").Scan(&addr))
		require.Equal(t, "::1", addr)
	}

	c.Stop()
	require.Zero(t, c.PID())
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "postmaster %d still exists", pid)
	_, err := net.DialTimeout("tcp", c.Addr(), time.Second)
	require.Error(t, err, "port still open after Stop")

	c.Restart(t)
	require.NotZero(t, c.PID())
	conn2 := c.Connect(t, c.DSN(Superuser))
	require.NoError(t, conn2.Ping(ctx(t)))

	c.Remove()
	_, err = os.Stat(c.Dir)
	require.True(t, errors.Is(err, os.ErrNotExist))
}

func TestCreateRolePassword(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{})
	dsn := c.CreateRole(t, "withpw", Role{Password: "correct horse 'battery'", ReadAllStats: true})
	conn := c.Connect(t, dsn)
	var member bool
	require.NoError(t, conn.QueryRow(ctx(t), "SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')").Scan(&member))
	require.True(t, member)

	bad := strings.Replace(dsn, "battery", "staple", 1)
	_, err := pgx.Connect(ctx(t), bad)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "28P01", pgErr.Code) // invalid_password: scram is enforced

	plain := c.CreateRole(t, "nopw", Role{})
	c.Connect(t, plain) // trusted on loopback
}

func TestBouncerAndPyClient(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{})
	b := StartBouncer(t, c, BouncerOptions{PoolSize: 1})
	pid := b.PID()
	require.NotZero(t, pid)

	conn := c.Connect(t, b.DSN(Superuser, "postgres"))
	var one int
	require.NoError(t, conn.QueryRow(ctx(t), "SELECT 1", pgx.QueryExecModeSimpleProtocol).Scan(&one))
	require.Equal(t, 1, one)

	py := StartPyClient(t, c.DSN(Superuser), "SELECT pg_sleep(30)")
	require.Equal(t, "127.0.0.1", py.LocalAddr)
	c.WaitFor(t, 10*time.Second,
		"SELECT EXISTS (SELECT FROM pg_stat_activity WHERE client_port = $1 AND state = 'active' AND query LIKE '%pg_sleep%')", py.LocalPort)

	b.Stop()
	require.Zero(t, b.PID())
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestBlackhole(t *testing.T) {
	t.Parallel()
	bh := NewBlackhole(t)
	cn, err := net.Dial("tcp", bh.Addr)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return bh.Open() == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, cn.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	_, err = cn.Read(make([]byte, 1))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "blackhole answered")
	require.NoError(t, cn.Close())
	require.Eventually(t, func() bool { return bh.Open() == 0 }, 5*time.Second, 10*time.Millisecond)

}
