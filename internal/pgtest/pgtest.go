// Package pgtest owns real PostgreSQL clusters and PgBouncer instances for
// tests: it finds Debian's server binaries (newest version under
// /usr/lib/postgresql/*/bin first), runs initdb into a fresh temporary
// directory, starts `postgres` as a child process on a free loopback port
// (as the `postgres` user when the test runs as root, because the server
// refuses to run as root), waits until it accepts connections, and stops it
// by pid in a t.Cleanup: SIGINT (fast shutdown), then `pg_ctl stop -m
// immediate`, then SIGKILL of the postmaster and of its children by pid.
//
// It also starts PgBouncer in front of a cluster (StartBouncer), a
// psycopg2 client process (StartPyClient), a TCP listener that accepts and
// never answers (NewBlackhole), and can freeze a whole server with SIGSTOP
// (Cluster.Freeze) to play a server that hangs mid-session.
//
// Clusters listen on 127.0.0.1 (and ::1 when the machine has it) only. The
// superuser is "postgres"; roles created with a password authenticate with
// scram-sha-256 over TCP, every other role is trusted on loopback.
//
// A missing binary is a skip on a developer machine and a failure under
// REFLEX_REQUIRE_REAL=1 (see internal/testenv). The Debian packages the
// harness needs are postgresql (any supported major version), pgbouncer and,
// for the psycopg2 client helper, python3-psycopg2.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
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

// BinDirEnv names an environment variable that, when set, is the directory
// holding initdb, pg_ctl and postgres; it overrides the search.
const BinDirEnv = "REFLEX_PG_BINDIR"

// Superuser is the bootstrap superuser of every cluster.
const Superuser = "postgres"

// passwordGroup is the role whose members must authenticate with
// scram-sha-256 (pg_hba.conf matches "+pgtest_password").
const passwordGroup = "pgtest_password"

// Options configures Start. The zero value is valid.
type Options struct {
	MaxConnections               int               // max_connections; default 100
	SuperuserReservedConnections int               // superuser_reserved_connections; default 3
	Settings                     map[string]string // extra postgresql.conf settings, written verbatim (quote strings yourself)
	NoIPv6                       bool              // listen on 127.0.0.1 only even when ::1 is available
	StartTimeout                 time.Duration     // readiness bound per attempt; default 30 s
	StopTimeout                  time.Duration     // fast-shutdown bound before the fallbacks; default 10 s
}

func (o Options) withDefaults() Options {
	if o.MaxConnections <= 0 {
		o.MaxConnections = 100
	}
	if o.SuperuserReservedConnections <= 0 {
		o.SuperuserReservedConnections = 3
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	return o
}

// Cluster is one PostgreSQL server started by Start.
type Cluster struct {
	Dir     string // temporary directory holding data/, the socket and logs
	DataDir string
	LogFile string // the server's stderr
	BinDir  string
	Host    string // "127.0.0.1"
	Port    int
	IPv6    bool // also listening on [::1]:Port
	Opts    Options

	cred *syscall.Credential // non-nil when the server runs as another user

	mu        sync.Mutex
	passwords map[string]string
	proc      *os.Process
	done      chan struct{}
}

// Start initialises and starts a cluster and registers a cleanup that stops
// it and removes its directory. A missing PostgreSQL installation skips the
// test (fails under REFLEX_REQUIRE_REAL=1); any other failure fails it.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := prepare(t, opts)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(c.Remove)
	if err := c.start(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return c
}

// Shared is a cluster shared by the tests of one test binary. Declare it as
// a package variable and stop it from TestMain:
//
//	var sharedPG = &pgtest.Shared{Opts: pgtest.Options{MaxConnections: 1100}}
//
//	func TestMain(m *testing.M) { code := m.Run(); sharedPG.Stop(); os.Exit(code) }
type Shared struct {
	Opts Options

	once    sync.Once
	c       *Cluster
	err     error
	missing string
}

// Get returns the shared cluster, starting it on first use.
func (s *Shared) Get(t testing.TB) *Cluster {
	t.Helper()
	s.once.Do(func() {
		bin, why := findBinDir()
		if bin == "" {
			s.missing = why
			return
		}
		if _, err := serverCredential(); err != nil {
			s.missing = err.Error()
			return
		}
		var c *Cluster
		c, s.err = newCluster(bin, s.Opts)
		if s.err != nil {
			return
		}
		if s.err = c.start(); s.err != nil {
			c.Remove()
			return
		}
		s.c = c
	})
	if s.missing != "" {
		testenv.Missing(t, s.missing)
	}
	if s.err != nil {
		t.Fatalf("pgtest: shared cluster: %v", s.err)
	}
	return s.c
}

// Stop stops and removes the shared cluster if it was started.
func (s *Shared) Stop() {
	if s.c != nil {
		s.c.Remove()
	}
}

func prepare(t testing.TB, opts Options) (*Cluster, error) {
	t.Helper()
	bin, why := findBinDir()
	if bin == "" {
		testenv.Missing(t, why)
	}
	if _, err := serverCredential(); err != nil {
		testenv.Missing(t, err.Error())
	}
	return newCluster(bin, opts)
}

// findBinDir returns the directory of initdb/pg_ctl/postgres, or "" and the
// reason. Order: $REFLEX_PG_BINDIR, /usr/lib/postgresql/<newest>/bin, then
// PATH.
func findBinDir() (string, string) {
	has := func(dir string) bool {
		for _, n := range []string{"initdb", "pg_ctl", "postgres"} {
			if st, err := os.Stat(filepath.Join(dir, n)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(BinDirEnv); d != "" {
		if has(d) {
			return d, ""
		}
		return "", fmt.Sprintf("%s=%s does not hold initdb, pg_ctl and postgres", BinDirEnv, d)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, ""
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), ""
	}
	return "", "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under /usr/lib/postgresql/*/bin or in PATH (Debian package: postgresql)"
}

// versionOf turns /usr/lib/postgresql/15/bin (or 9.6) into a sortable number.
func versionOf(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

// serverCredential returns the credential to run server processes with: nil
// when not root, the postgres user's ids when root.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a 'postgres' user to run the server as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// ownedTempDir creates a temporary directory the server user can write.
func ownedTempDir(prefix string, cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

func newCluster(bin string, opts Options) (*Cluster, error) {
	opts = opts.withDefaults()
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := ownedTempDir("pgtest-", cred)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Dir: dir, DataDir: filepath.Join(dir, "data"), LogFile: filepath.Join(dir, "postgres.log"),
		BinDir: bin, Host: "127.0.0.1", Opts: opts, cred: cred,
		IPv6:      !opts.NoIPv6 && ipv6Loopback(),
		passwords: map[string]string{},
	}
	out, err := c.run(60*time.Second, filepath.Join(bin, "initdb"), "-D", c.DataDir, "-U", Superuser,
		"-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C", "--no-instructions")
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	hba := fmt.Sprintf(`local all all trust
host all +%[1]s 127.0.0.1/32 scram-sha-256
host all +%[1]s ::1/128 scram-sha-256
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
`, passwordGroup)
	if err := os.WriteFile(filepath.Join(c.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func ipv6Loopback() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeConf writes the harness's settings to postgresql.auto.conf, which
// the server reads after postgresql.conf.
func (c *Cluster) writeConf() error {
	listen := "127.0.0.1"
	if c.IPv6 {
		listen += ",::1"
	}
	settings := map[string]string{
		"listen_addresses":               "'" + listen + "'",
		"port":                           strconv.Itoa(c.Port),
		"unix_socket_directories":        "'" + c.Dir + "'",
		"max_connections":                strconv.Itoa(c.Opts.MaxConnections),
		"superuser_reserved_connections": strconv.Itoa(c.Opts.SuperuserReservedConnections),
		"fsync":                          "off",
		"synchronous_commit":             "off",
		"full_page_writes":               "off",
		"autovacuum":                     "off",
		"logging_collector":              "off",
		"log_min_messages":               "warning",
		"password_encryption":            "'scram-sha-256'",
		"max_wal_senders":                "0",
		"wal_level":                      "minimal",
	}
	if versionOf(c.BinDir) >= 14 {
		// A backend whose client died (a killed test client, a stopped
		// PgBouncer) notices it within 100 ms even inside pg_sleep, so it
		// does not linger into the next test.
		settings["client_connection_check_interval"] = "100"
	}
	for k, v := range c.Opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# written by internal/pgtest\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, settings[k])
	}
	return os.WriteFile(filepath.Join(c.DataDir, "postgresql.auto.conf"), []byte(b.String()), 0o600)
}

// run runs a helper program (initdb, pg_ctl) as the server user.
func (c *Cluster) run(timeout time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.Dir
	cmd.Env = serverEnv(c.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd.CombinedOutput()
}

func serverEnv(home string) []string {
	return []string{"PATH=/usr/bin:/bin", "HOME=" + home, "LC_ALL=C", "LANG=C", "TZ=UTC"}
}

// start picks a port (first start only), launches postgres and waits until
// it accepts connections. A port lost to another process between pick and
// bind is retried with a new port.
func (c *Cluster) start() error {
	fixedPort := c.Port != 0
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		if !fixedPort {
			p, err := FreePort()
			if err != nil {
				return err
			}
			c.Port = p
		}
		if err := c.writeConf(); err != nil {
			return err
		}
		err := c.launch()
		if err == nil {
			return c.ensureGroupRole()
		}
		last = err
		if fixedPort || !strings.Contains(err.Error(), "could not bind") && !strings.Contains(err.Error(), "could not create any TCP/IP sockets") {
			return err
		}
	}
	return last
}

func (c *Cluster) launch() error {
	logf, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = logf.Close() }()
	off, _ := logf.Seek(0, 2)
	cmd := exec.Command(filepath.Join(c.BinDir, "postgres"), "-D", c.DataDir)
	cmd.Dir = c.Dir
	cmd.Env = serverEnv(c.Dir)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.mu.Lock()
	c.proc, c.done = cmd.Process, done
	c.mu.Unlock()

	deadline := time.Now().Add(c.Opts.StartTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("postgres exited during startup:\n%s", c.logSince(off))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.DSN(Superuser))
		if err == nil {
			_ = conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		if time.Now().After(deadline) {
			c.stopProcess()
			return fmt.Errorf("postgres not ready after %v: %w\n%s", c.Opts.StartTimeout, err, c.logSince(off))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) logSince(off int64) string {
	b, err := os.ReadFile(c.LogFile)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return string(b[off:])
}

func (c *Cluster) ensureGroupRole() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(Superuser))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }()
	_, err = conn.Exec(ctx, `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '`+passwordGroup+`') THEN
    CREATE ROLE `+passwordGroup+` NOLOGIN;
  END IF;
END $$`)
	return err
}

// PID returns the postmaster's pid, or 0 when the server is not running.
func (c *Cluster) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	select {
	case <-c.done:
		return 0
	default:
		return c.proc.Pid
	}
}

// Stop stops the server (keeping its data directory, so Restart can start
// it again): SIGINT for a fast shutdown, then `pg_ctl stop -m immediate`,
// then SIGKILL to the server's process group. It is safe to call twice.
func (c *Cluster) Stop() { c.stopProcess() }

func (c *Cluster) stopProcess() {
	c.mu.Lock()
	proc, done := c.proc, c.done
	c.mu.Unlock()
	if proc == nil {
		return
	}
	wait := func(d time.Duration) bool {
		select {
		case <-done:
			return true
		case <-time.After(d):
			return false
		}
	}
	children := c.serverPIDs()
	c.signalAll(syscall.SIGCONT) // in case a test froze it
	_ = proc.Signal(syscall.SIGINT)
	if !wait(c.Opts.StopTimeout) {
		_, _ = c.run(10*time.Second, filepath.Join(c.BinDir, "pg_ctl"), "stop", "-D", c.DataDir, "-m", "immediate", "-w", "-t", "5")
		if !wait(5 * time.Second) {
			_ = proc.Kill()
			wait(10 * time.Second)
			// Backends of a SIGKILLed postmaster may be left; they are
			// children of the process we started, killed by pid.
			for _, p := range children[min(1, len(children)):] {
				if alive(p) {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			}
		}
	}
	c.mu.Lock()
	c.proc = nil
	c.mu.Unlock()
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// Freeze stops the postmaster and every backend and auxiliary process
// with SIGSTOP: the kernel still completes TCP handshakes into the listen
// backlog, but nothing ever answers, like a hung server. Thaw resumes it;
// Stop and the test's cleanup thaw too.
func (c *Cluster) Freeze(t testing.TB) {
	t.Helper()
	c.signalAll(syscall.SIGSTOP)
	t.Cleanup(func() { c.signalAll(syscall.SIGCONT) })
}

// Thaw resumes a frozen server.
func (c *Cluster) Thaw(t testing.TB) {
	t.Helper()
	c.signalAll(syscall.SIGCONT)
}

// serverPIDs returns the postmaster and its children. Every child of the
// postmaster calls setsid(), so they are not in its process group.
func (c *Cluster) serverPIDs() []int {
	pid := c.PID()
	if pid == 0 {
		return nil
	}
	pids := []int{pid}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
		return pids
	}
	// Kernels without CONFIG_PROC_CHILDREN: scan /proc for ppid == pid.
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(st), ')'); i > 0 {
			if f := strings.Fields(string(st)[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// signalAll sends sig to the postmaster and its children.
func (c *Cluster) signalAll(sig syscall.Signal) {
	for _, p := range c.serverPIDs() {
		_ = syscall.Kill(p, sig)
	}
}

// Restart starts a stopped cluster again on the same port and data.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.stopProcess()
	if err := c.start(); err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
}

// Remove stops the server and deletes its directory.
func (c *Cluster) Remove() {
	c.stopProcess()
	_ = os.RemoveAll(c.Dir)
}

// Addr returns "127.0.0.1:port".
func (c *Cluster) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// DSN returns a keyword/value connection string for role on database
// "postgres" over TCP on 127.0.0.1, including the password CreateRole set.
func (c *Cluster) DSN(role string) string { return c.DSNFor(role, "postgres") }

// DSNFor is DSN for another database.
func (c *Cluster) DSNFor(role, database string) string {
	c.mu.Lock()
	pw := c.passwords[role]
	c.mu.Unlock()
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=10", c.Host, c.Port, quoteDSN(role), quoteDSN(database))
	if pw != "" {
		dsn += " password=" + quoteDSN(pw)
	}
	return dsn
}

// quoteDSN quotes a keyword/value connection string value.
func quoteDSN(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Role describes a role for CreateRole.
type Role struct {
	Password     string // non-empty: the role must authenticate with scram-sha-256
	Superuser    bool
	ReadAllStats bool // GRANT pg_read_all_stats
	ConnLimit    int  // CONNECTION LIMIT; 0 = unlimited
}

// CreateRole creates a login role, or resets an existing one to r (a
// shared cluster outlives one run of a test under -count), and returns its
// DSN.
func (c *Cluster) CreateRole(t testing.TB, name string, r Role) string {
	t.Helper()
	attrs := "LOGIN NOSUPERUSER CONNECTION LIMIT -1"
	if r.Superuser {
		attrs = "LOGIN SUPERUSER CONNECTION LIMIT -1"
	}
	if r.ConnLimit > 0 {
		attrs = strings.Replace(attrs, "LIMIT -1", "LIMIT "+strconv.Itoa(r.ConnLimit), 1)
	}
	ident := pgx.Identifier{name}.Sanitize()
	lit := quoteLiteral(name)
	stmts := []string{
		`DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ` + lit + `) THEN
    CREATE ROLE ` + ident + `;
  END IF;
END $$`,
		"ALTER ROLE " + ident + " " + attrs,
	}
	if r.Password != "" {
		stmts = append(stmts,
			"ALTER ROLE "+ident+" PASSWORD "+quoteLiteral(r.Password),
			"GRANT "+passwordGroup+" TO "+ident)
	} else {
		stmts = append(stmts, "ALTER ROLE "+ident+" PASSWORD NULL", "REVOKE "+passwordGroup+" FROM "+ident)
	}
	if r.ReadAllStats {
		stmts = append(stmts, "GRANT pg_read_all_stats TO "+ident)
	} else {
		stmts = append(stmts, "REVOKE pg_read_all_stats FROM "+ident)
	}
	for _, s := range stmts {
		c.Exec(t, s)
	}
	c.mu.Lock()
	c.passwords[name] = r.Password
	c.mu.Unlock()
	return c.DSN(name)
}

// CreateDatabase creates a database owned by the superuser unless it
// exists.
func (c *Cluster) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(Superuser))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Fatalf("pgtest: create database %s: %v", name, err)
		}
	}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Exec runs statements as the superuser on database "postgres" on a
// short-lived connection and fails the test on error.
func (c *Cluster) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(Superuser))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// Connect opens a pgx connection closed in t.Cleanup.
func (c *Cluster) Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	})
	return conn
}

// ErrTimeout is returned by WaitFor when the condition did not hold in time.
var ErrTimeout = errors.New("pgtest: condition not met in time")

// WaitFor polls the single boolean result of query (run as the superuser)
// every 20 ms until it is true or timeout passes.
func (c *Cluster) WaitFor(t testing.TB, timeout time.Duration, query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(Superuser))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, query, args...).Scan(&ok); err != nil {
			t.Fatalf("pgtest: %s: %v", query, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: %s", ErrTimeout, query)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
