package main_test

// Root-cause scenarios through the running binary: a real Gunicorn with a
// real fault, gunicorn-reflex following it, and the verdict read from GET
// /api/v1/incidents. Each scenario must yield exactly one incident with the
// right cause and the evidence that decided it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgtest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// apiIncident is the part of GET /api/v1/incidents the scenarios check.
type apiIncident struct {
	ID         string  `json:"id"`
	App        string  `json:"app"`
	State      string  `json:"state"`
	Cause      string  `json:"cause"`
	Confidence float64 `json:"confidence"`
	Summary    string  `json:"summary"`
	Advice     string  `json:"advice"`
	Trigger    string  `json:"trigger"`
	Evidence   []struct {
		Source   string            `json:"source"`
		Kind     string            `json:"kind"`
		Detail   string            `json:"detail"`
		Decisive bool              `json:"decisive"`
		Attrs    map[string]string `json:"attrs"`
	} `json:"evidence"`
	Decisions []struct {
		Kind    string `json:"kind"`
		Action  string `json:"action"`
		Outcome string `json:"outcome"`
		Refusal string `json:"refusal"`
	} `json:"decisions"`
}

// decisive lists the decisive evidence as "source/kind: detail" lines.
func (i apiIncident) decisive() string {
	var out []string
	for _, e := range i.Evidence {
		if e.Decisive {
			out = append(out, e.Source+"/"+e.Kind+": "+e.Detail)
		}
	}
	return strings.Join(out, "\n")
}

// scenario is one Gunicorn app "shop" followed by gunicorn-reflex.
type scenario struct {
	g   *gunicorntest.Gunicorn
	exp *reflextest.Exporter
}

// scenarioToken is the receiver's bearer token in scenarios that ask it.
const scenarioToken = "scenario-token-8e21"

func startScenario(t *testing.T, opts gunicorntest.Options) *scenario {
	t.Helper()
	return startScenarioWith(t, opts, "")
}

// receiverSection enables the receiver for shop (scale_up within 2..4
// workers); the CPU guard is off, as in the receiver's own tests, so only
// the verdict can refuse.
func receiverSection(t *testing.T, dir string) string {
	t.Helper()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(scenarioToken+"\n"), 0o600))
	return fmt.Sprintf(`receiver:
  enabled: true
  bearer_token_file: %s
  state_file: %s
  audit_log: %s
  identity: [web-1]
  guard:
    cpu_busy_above: 1.01
  apps:
    - name: shop
      min_workers: 2
      max_workers: 4
      allow: [scale_up]
`, tokenFile, filepath.Join(dir, "state.json"), filepath.Join(dir, "audit.jsonl"))
}

func startScenarioWith(t *testing.T, opts gunicorntest.Options, extra string) *scenario {
	t.Helper()
	opts.Name = "shop"
	g := gunicorntest.Start(t, opts)
	// setproctitle hides the master's --timeout: the config says it, as a
	// person would.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`apps:
  - name: shop
    error_log: %s
    access_log: %s
    pidfile: %s
    timeout: %ds
logs:
  poll_interval: 50ms
discovery:
  interval: 1s
%s`, g.ErrorLog, g.AccessLog, g.Pidfile, g.Opts.Timeout, extra)), 0o600))
	s := &scenario{g: g, exp: reflextest.Start(t, "--config.file="+cfg)}
	s.exp.WaitValue(t, 20*time.Second, 1, "reflex_proc_up", "app", "shop")
	t.Cleanup(func() {
		if t.Failed() {
			_, ev, _ := s.exp.Get("/api/v1/events?app=shop&limit=60")
			t.Logf("timeline:\n%s\ngunicorn-reflex log (tail):\n%s\ngunicorn error log:\n%s", ev, s.exp.Stderr.Tail(40), g.ErrorLogText())
		}
	})
	return s
}

func (s *scenario) incidents(t *testing.T) []apiIncident {
	t.Helper()
	code, body, err := s.exp.Get("/api/v1/incidents?app=shop")
	require.NoError(t, err)
	require.Equal(t, 200, code, body)
	var got struct {
		Incidents []apiIncident `json:"incidents"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &got), body)
	return got.Incidents
}

// waitVerdict polls the API until the app's incident has cause (the
// verdict is recomputed as evidence arrives), then checks that it is the
// only incident.
func (s *scenario) waitVerdict(t *testing.T, cause string, timeout time.Duration) apiIncident {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		incs := s.incidents(t)
		for _, inc := range incs {
			if inc.Cause == cause {
				require.Len(t, incs, 1, "exactly one incident: %+v", incs)
				return inc
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s incident after %s; incidents: %+v", cause, timeout, incs)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// A worker blocked reading from a loopback server that accepts and never
// answers: external_call, naming the peer.
func TestScenarioExternalCall(t *testing.T) {
	port := blackhole(t)
	s := startScenario(t, gunicorntest.Options{Workers: 2, Timeout: 5})
	s.g.Hold(t, 2, fmt.Sprintf("/recv?port=%d", port))
	inc := s.waitVerdict(t, "external_call", 60*time.Second)
	require.Contains(t, inc.Summary+inc.decisive(), fmt.Sprintf("127.0.0.1:%d", port), "the peer is named")
}

// blackhole is a loopback server that accepts and never answers, until
// cleanup; it returns its port.
func blackhole(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns sync.WaitGroup
	held := make(chan net.Conn, 64)
	conns.Add(1)
	go func() {
		defer conns.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c // never answered
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		conns.Wait()
		close(held)
		for c := range held {
			_ = c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// A pure-Python busy loop: cpu_bound.
func TestScenarioCPUSpin(t *testing.T) {
	s := startScenario(t, gunicorntest.Options{Workers: 2, Timeout: 5})
	s.g.Hold(t, 1, "/spin?s=30")
	inc := s.waitVerdict(t, "cpu_bound", 60*time.Second)
	require.NotEmpty(t, inc.decisive())
	require.Contains(t, inc.Summary, "CPU")
}

// The request thread waits on a lock another thread holds past the
// timeout: deadlock (futex, no I/O, no CPU).
func TestScenarioDeadlock(t *testing.T) {
	s := startScenario(t, gunicorntest.Options{Workers: 2, Timeout: 5})
	s.g.Hold(t, 1, "/lock?s=60")
	inc := s.waitVerdict(t, "deadlock", 60*time.Second)
	require.NotEmpty(t, inc.decisive())
}

// More concurrent 1 s requests than workers with a 3 s timeout: no
// timeout at all, every worker busy and clients queued in the listen
// backlog: capacity.
func TestScenarioCapacity(t *testing.T) {
	s := startScenarioWith(t, gunicorntest.Options{Workers: 2, Timeout: 3}, receiverSection(t, t.TempDir()))
	s.g.Hold(t, 8, "/sleep?s=1")
	inc := s.waitVerdict(t, "capacity", 60*time.Second)
	require.NotEmpty(t, inc.decisive())
	require.Zero(t, s.g.LogCount("WORKER TIMEOUT"), "capacity has no timeout")

	// More workers help here: the verdict lets the scale-up through.
	s.askScaleUp(t)
	waitFor(t, 30*time.Second, "a third worker", func() bool { return len(s.g.WorkerPIDs()) == 3 })
	for _, inc := range s.incidents(t) {
		for _, d := range inc.Decisions {
			require.Empty(t, d.Refusal, "no refusal for capacity: %+v", inc.Decisions)
		}
	}
}

// A release switch to a slow version, then a HUP: the new workers run the
// new code and time out; the release symlink is the marker and the
// verdict deploy_regression names it.
func TestScenarioBadDeploy(t *testing.T) {
	base := t.TempDir()
	for _, r := range []string{"r1", "r2"} {
		require.NoError(t, os.MkdirAll(filepath.Join(base, "releases", r), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(base, "releases", "r1", "reflexapp.py"), gunicorntest.AppSource, 0o644))
	// r2's /ok sleeps past any timeout: the regression.
	slow := strings.Replace(string(gunicorntest.AppSource), "def ok(query):\n    return \"ok\"",
		"def ok(query):\n    time.sleep(60)\n    return \"ok\"", 1)
	require.NotEqual(t, string(gunicorntest.AppSource), slow, "the slow version differs")
	require.NoError(t, os.WriteFile(filepath.Join(base, "releases", "r2", "reflexapp.py"), []byte(slow), 0o644))
	current := filepath.Join(base, "current")
	require.NoError(t, os.Symlink("releases/r1", current))

	s := startScenarioWith(t, gunicorntest.Options{Workers: 2, Timeout: 3, ExtraArgs: []string{"--chdir", current}},
		receiverSection(t, t.TempDir()))
	code, body, err := s.g.Get("/ok")
	require.NoError(t, err)
	require.Equal(t, 200, code, body)

	// Capistrano's switch: a new link renamed over the old one.
	tmp := current + ".new"
	require.NoError(t, os.Symlink("releases/r2", tmp))
	require.NoError(t, os.Rename(tmp, current))
	waitFor(t, 20*time.Second, "the release-symlink deploy marker", func() bool {
		_, ev, err := s.exp.Get("/api/v1/events?app=shop&kind=deploy")
		return err == nil && strings.Contains(ev, "release_symlink")
	})
	require.NoError(t, s.g.Signal(syscall.SIGHUP))
	require.NoError(t, s.g.WaitLog("Hang up: Master", 1, 10*time.Second))
	s.g.Hold(t, 2, "/ok")
	inc := s.waitVerdict(t, "deploy_regression", 60*time.Second)
	require.Contains(t, inc.Summary+inc.decisive(), filepath.Join(base, "releases", "r2"), "the marker names the new release")

	// More workers would run more of the slow release: the receiver
	// refuses the scale-up and names the verdict.
	s.askScaleUp(t)
	s.waitRefusal(t, "verdict_deploy_regression")
	s.requireNoTTIN(t)
}

// waitRefusal waits until the incident's decisions hold the refusal.
func (s *scenario) waitRefusal(t *testing.T, refusal string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the receiver's refusal "+refusal+" in the incident", func() bool {
		for _, inc := range s.incidents(t) {
			for _, d := range inc.Decisions {
				if d.Refusal == refusal {
					return true
				}
			}
		}
		return false
	})
}

// requireNoTTIN checks that no worker was added: the master's log has no
// "Handling signal: ttin". Counting the workers instead is wrong here: the
// stuck workers time out and are replaced, so at any moment one of them
// may be between death and replacement.
func (s *scenario) requireNoTTIN(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(s.g.ErrorLog)
	require.NoError(t, err)
	require.NotContains(t, strings.ToLower(string(b)), "handling signal: ttin", "no worker added")
}

// askScaleUp posts a firing scale_up alert for shop to the receiver's
// webhook, as Alertmanager would.
func (s *scenario) askScaleUp(t *testing.T) {
	t.Helper()
	s.askScaleUpAt(t, time.Now().Add(-time.Minute))
}

// askScaleUpAt posts the scale_up alert with startsAt, which is part of
// its idempotency key: another startsAt is another alert.
func (s *scenario) askScaleUpAt(t *testing.T, startsAt time.Time) {
	t.Helper()
	labels := map[string]string{"alertname": "GunicornWorkerTimeouts", "app": "shop", "instance": "web-1:9615",
		"reflex_action": "scale_up", "severity": "warning"}
	body, err := json.Marshal(map[string]any{
		"version": "4", "status": "firing", "receiver": "reflex", "groupKey": "{}:{app=\"shop\"}",
		"groupLabels": map[string]string{"app": "shop"}, "commonLabels": labels, "commonAnnotations": map[string]string{},
		"externalURL": "http://127.0.0.1:9093", "truncatedAlerts": 0,
		"alerts": []map[string]any{{"status": "firing", "labels": labels, "annotations": map[string]string{},
			"startsAt": startsAt.UTC().Format(time.RFC3339), "endsAt": "0001-01-01T00:00:00Z",
			"generatorURL": "", "fingerprint": "5c0ffee5c0ffee01"}},
	})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.exp.URL+"/api/v1/alerts", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+scenarioToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "%s", msg)
}

// dbScenario is shop on a throwaway PostgreSQL (through PgBouncer when
// bouncer is set), watched by gunicorn-reflex's PostgreSQL (and PgBouncer)
// collectors.
// receiver is the config's receiver section ("" none).
func startDBScenario(t *testing.T, c *pgtest.Cluster, b *pgtest.Bouncer, opts gunicorntest.Options, receiver string) *scenario {
	t.Helper()
	dir := t.TempDir()
	pgDSN := filepath.Join(dir, "pg.dsn")
	require.NoError(t, os.WriteFile(pgDSN, []byte(c.DSN(pgtest.Superuser)), 0o600))
	extra := fmt.Sprintf("postgres:\n  - name: main\n    dsn_file: %s\n    age_thresholds: [1s]\n", pgDSN)
	appDSN := c.DSN(pgtest.Superuser)
	if b != nil {
		bDSN := filepath.Join(dir, "bouncer.dsn")
		require.NoError(t, os.WriteFile(bDSN, []byte(b.AdminDSN(pgtest.Superuser)), 0o600))
		extra += fmt.Sprintf("pgbouncer:\n  - name: pool\n    dsn_file: %s\n", bDSN)
		appDSN = b.DSN(pgtest.Superuser, "postgres")
	}
	extra += receiver
	opts.Env = append(opts.Env, gunicorntest.PgDSNEnv+"="+appDSN)
	s := startScenarioWith(t, opts, extra)
	s.exp.WaitValue(t, 15*time.Second, 1, "reflex_pg_up", "target", "main")
	return s
}

// A view over pg_sleep: the stuck workers' backends run one long query:
// database_slow_query.
func TestScenarioSlowQuery(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	c.Exec(t, "CREATE VIEW reflex_slow AS SELECT 1 AS one FROM pg_sleep(30)")
	s := startDBScenario(t, c, nil, gunicorntest.Options{Workers: 2, Timeout: 5}, receiverSection(t, t.TempDir()))
	s.g.Hold(t, 2, "/dbview")
	inc := s.waitVerdict(t, "database_slow_query", 60*time.Second)
	require.NotEmpty(t, inc.decisive())
	require.Contains(t, strings.ToLower(inc.Advice), "statement_timeout")

	// More workers would run more of the slow query: refused.
	s.askScaleUp(t)
	s.waitRefusal(t, "verdict_database_slow_query")
	s.requireNoTTIN(t)
}

// A row lock held by a session left idle in transaction: the workers'
// UPDATEs wait on it: database_lock, naming the blocker.
func TestScenarioLockWait(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	c.Exec(t, "CREATE TABLE reflex_items (id int PRIMARY KEY, n int NOT NULL)")
	c.Exec(t, "INSERT INTO reflex_items VALUES (1, 0)")
	holder := c.Connect(t, c.DSN(pgtest.Superuser))
	ctx := context.Background()
	var blocker int
	require.NoError(t, holder.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&blocker))
	_, err := holder.Exec(ctx, "BEGIN")
	require.NoError(t, err)
	_, err = holder.Exec(ctx, "SELECT * FROM reflex_items WHERE id = 1 FOR UPDATE")
	require.NoError(t, err)
	c.WaitFor(t, 10*time.Second, "SELECT count(*) = 1 FROM pg_stat_activity WHERE state = 'idle in transaction'")
	s := startDBScenario(t, c, nil, gunicorntest.Options{Workers: 2, Timeout: 5}, "")
	s.g.Hold(t, 2, "/dbrow?id=1")
	inc := s.waitVerdict(t, "database_lock", 60*time.Second)
	require.Contains(t, inc.Summary+inc.Advice+inc.decisive(), "idle in transaction")
	require.Contains(t, inc.Summary+inc.Advice+inc.decisive(), strconv.Itoa(blocker), "the blocker is named")
}

// PgBouncer with pool_size 1 and concurrent requests: one holds the only
// server connection, the others wait in the pool: database_pool_exhausted.
func TestScenarioPoolExhausted(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	b := pgtest.StartBouncer(t, c, pgtest.BouncerOptions{PoolSize: 1})
	s := startDBScenario(t, c, b, gunicorntest.Options{Workers: 3, Timeout: 5}, "")
	s.g.Hold(t, 3, "/db?s=30")
	inc := s.waitVerdict(t, "database_pool_exhausted", 60*time.Second)
	require.NotEmpty(t, inc.decisive())
}

// memoryCgroupV1 makes a child of this process's cgroup v1 memory cgroup
// limited to limit bytes (swap included where the kernel accounts it),
// removed at cleanup; it returns why not when the machine does not allow
// it (not root, no v1 memory hierarchy: cgroup v2 hosts often do not
// delegate the memory controller to a test).
func memoryCgroupV1(t *testing.T, limit int64) (string, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return "", "creating a cgroup needs root"
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err.Error()
	}
	rel := ""
	found := false
	for _, l := range strings.Split(string(own), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && strings.Contains(","+parts[1]+",", ",memory,") {
			rel, found = parts[2], true
		}
	}
	const mount = "/sys/fs/cgroup/memory"
	if !found {
		return "", "no cgroup v1 memory hierarchy for this process"
	}
	if _, err := os.Stat(filepath.Join(mount, "memory.limit_in_bytes")); err != nil {
		return "", "no cgroup v1 memory hierarchy mounted at " + mount
	}
	parent := filepath.Join(mount, rel)
	dir := filepath.Join(parent, fmt.Sprintf("reflex-scenario-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err.Error()
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				_ = os.WriteFile(filepath.Join(parent, "cgroup.procs"), []byte(f), 0o644)
			}
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) || time.Now().After(deadline) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	settings := []string{"memory.limit_in_bytes"}
	if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil {
		settings = append(settings, "memory.memsw.limit_in_bytes")
	}
	for _, f := range settings {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
			return "", err.Error()
		}
	}
	return dir, ""
}

// A worker in a memory-limited cgroup allocating past the limit: the
// kernel's OOM killer takes it (SIGKILL, no WORKER TIMEOUT), the cgroup's
// oom_kill counter confirms it: memory_oom.
func TestScenarioMemoryOOM(t *testing.T) {
	cg, reason := memoryCgroupV1(t, 96<<20)
	if reason != "" {
		// A skip even under REFLEX_REQUIRE_REAL=1, on purpose: whether a
		// test may create a memory cgroup depends on the kernel and on how
		// the container delegates cgroups, not on installed packages.
		t.Skipf("cannot create a memory-limited cgroup here (this scenario may skip even under REFLEX_REQUIRE_REAL=1): %s", reason)
	}
	s := startScenarioWith(t, gunicorntest.Options{Workers: 1, Timeout: 30}, receiverSection(t, t.TempDir()))
	victim := s.g.WorkerPIDs()[0]
	require.NoError(t, os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(victim)), 0o644))
	// Two /proc passes, so the OOM watcher knows the worker's new cgroup
	// (and its oom_kill baseline) before the kill.
	time.Sleep(5 * time.Second)
	status, body, err := s.g.Get("/alloc?mb=512")
	require.False(t, err == nil && status == 200, "the allocation succeeded: %d %s", status, body)
	inc := s.waitVerdict(t, "memory_oom", 60*time.Second)
	require.Contains(t, inc.decisive(), "oom_confirmed")

	s.askScaleUp(t)
	s.waitRefusal(t, "verdict_memory_oom")
}
