package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// BouncerOptions configures StartBouncer. The zero value is valid.
type BouncerOptions struct {
	PoolSize      int    // default_pool_size; default 2
	PoolMode      string // pool_mode; default "session"
	MaxClientConn int    // max_client_conn; default 100
	// AuthType is pgbouncer's auth_type; default "trust". With
	// "scram-sha-256" (or "plain", "md5") the Users passwords are checked.
	AuthType string
	// Users are written to the auth_file (name -> plain password). The
	// cluster superuser and StatsUser are always present.
	Users map[string]string
	// StatsUser may run SHOW commands on the admin console; default
	// "reflex_stats". The superuser is the admin user.
	StatsUser    string
	StartTimeout time.Duration // default 15 s
}

// Bouncer is one PgBouncer process started by StartBouncer. Every database
// name is forwarded to the same-named database of the cluster
// ("* = host=... port=..."), and the server-side user is the client's.
type Bouncer struct {
	Dir     string
	Config  string
	LogFile string
	Host    string
	Port    int
	Opts    BouncerOptions

	cluster *Cluster
	mu      sync.Mutex
	proc    *os.Process
	done    chan struct{}
}

// StartBouncer starts PgBouncer in front of c on a free loopback port and
// registers a cleanup that stops it by pid. A missing pgbouncer binary skips
// the test (fails under REFLEX_REQUIRE_REAL=1).
func StartBouncer(t testing.TB, c *Cluster, opts BouncerOptions) *Bouncer {
	t.Helper()
	bin := findBouncer(t)
	if opts.PoolSize <= 0 {
		opts.PoolSize = 2
	}
	if opts.PoolMode == "" {
		opts.PoolMode = "session"
	}
	if opts.MaxClientConn <= 0 {
		opts.MaxClientConn = 100
	}
	if opts.AuthType == "" {
		opts.AuthType = "trust"
	}
	if opts.StatsUser == "" {
		opts.StatsUser = "reflex_stats"
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 15 * time.Second
	}
	dir, err := ownedTempDir("pgbouncer-", c.cred)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	b := &Bouncer{Dir: dir, Config: filepath.Join(dir, "pgbouncer.ini"), LogFile: filepath.Join(dir, "pgbouncer.log"),
		Host: "127.0.0.1", Opts: opts, cluster: c}
	t.Cleanup(func() {
		b.Stop()
		_ = os.RemoveAll(dir)
	})

	users := map[string]string{Superuser: "", opts.StatsUser: ""}
	for u, p := range opts.Users {
		users[u] = p
	}
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var auth strings.Builder
	for _, u := range names {
		fmt.Fprintf(&auth, "%q %q\n", u, users[u])
	}
	if err := b.writeOwned("userlist.txt", auth.String()); err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	var last error
	for attempt := 0; attempt < 3; attempt++ {
		if b.Port, err = FreePort(); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		ini := fmt.Sprintf(`[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = %s
auth_file = %s
admin_users = %s
stats_users = %s
pool_mode = %s
default_pool_size = %d
max_client_conn = %d
logfile = %s
ignore_startup_parameters = extra_float_digits
server_login_retry = 1
`, c.Host, c.Port, b.Port, opts.AuthType, filepath.Join(dir, "userlist.txt"), Superuser, opts.StatsUser,
			opts.PoolMode, opts.PoolSize, opts.MaxClientConn, b.LogFile)
		if err := b.writeOwned("pgbouncer.ini", ini); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		if last = b.launch(bin); last == nil {
			return b
		}
		if !strings.Contains(last.Error(), "ddress already in use") {
			break
		}
	}
	t.Fatalf("pgtest: pgbouncer: %v", last)
	return nil
}

func findBouncer(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/sbin/pgbouncer"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p
	}
	testenv.Missing(t, "pgbouncer not found in /usr/sbin or PATH (Debian package: pgbouncer)")
	return ""
}

func (b *Bouncer) writeOwned(name, content string) error {
	p := filepath.Join(b.Dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		return err
	}
	if cred := b.cluster.cred; cred != nil {
		return os.Chown(p, int(cred.Uid), int(cred.Gid))
	}
	return nil
}

func (b *Bouncer) launch(bin string) error {
	cmd := exec.Command(bin, b.Config)
	cmd.Dir = b.Dir
	cmd.Env = serverEnv(b.Dir)
	out, err := os.OpenFile(filepath.Join(b.Dir, "stderr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = out.Close() }()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: b.cluster.cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pgbouncer: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	b.mu.Lock()
	b.proc, b.done = cmd.Process, done
	b.mu.Unlock()

	deadline := time.Now().Add(b.Opts.StartTimeout)
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(b.LogFile)
			stderr, _ := os.ReadFile(filepath.Join(b.Dir, "stderr.log"))
			return fmt.Errorf("pgbouncer exited during startup:\n%s%s", log, stderr)
		default:
		}
		if err := b.ping(); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			b.Stop()
			return fmt.Errorf("pgbouncer not ready after %v: %w", b.Opts.StartTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ping runs SHOW VERSION on the admin console.
func (b *Bouncer) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(b.AdminDSN(Superuser))
	if err != nil {
		return err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }()
	_, err = conn.Exec(ctx, "SHOW VERSION")
	return err
}

// PID returns pgbouncer's pid, or 0 when it is not running.
func (b *Bouncer) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == nil {
		return 0
	}
	select {
	case <-b.done:
		return 0
	default:
		return b.proc.Pid
	}
}

// Stop stops pgbouncer by pid: SIGTERM, then SIGKILL after 5 s.
func (b *Bouncer) Stop() {
	b.mu.Lock()
	proc, done := b.proc, b.done
	b.proc = nil
	b.mu.Unlock()
	if proc == nil {
		return
	}
	_ = proc.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = proc.Kill()
		<-done
	}
}

// Addr returns "127.0.0.1:port".
func (b *Bouncer) Addr() string { return net.JoinHostPort(b.Host, strconv.Itoa(b.Port)) }

// DSN returns a connection string through the bouncer to database for user
// (no password: pass one with DSNWithPassword).
func (b *Bouncer) DSN(user, database string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=10", b.Host, b.Port, quoteDSN(user), quoteDSN(database))
}

// AdminDSN returns a connection string to the admin console ("pgbouncer"
// database) for user.
func (b *Bouncer) AdminDSN(user string) string { return b.DSN(user, "pgbouncer") }
