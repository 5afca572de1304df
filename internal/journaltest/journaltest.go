// Package journaltest owns a real, private systemd-journald for tests, on a
// machine where systemd is not PID 1: journald runs in its own mount
// namespace, where /run/systemd/journal (its sockets) and /run/log/journal
// (its runtime journal files) are bind mounts of temporary directories, so
// the host's journal, if any, is neither read nor written. Writers enter
// that namespace to reach the sockets (systemd-cat connects to the fixed
// path /run/systemd/journal/stdout); readers run the real journalctl with
// --directory on the temporary journal directory. A unit is simulated the
// way journald sees one: the writer is put in the cgroup
// system.slice/<unit> of the cgroup v2 hierarchy, from which journald
// derives _SYSTEMD_UNIT.
//
// It needs root (unshare, mount, cgroups), unshare, nsenter, systemd-cat and
// journald from Debian's util-linux and systemd packages; without them the
// test is skipped (or fails under REFLEX_REQUIRE_REAL=1).
package journaltest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// Journald is the path of Debian's systemd-journald.
const Journald = "/lib/systemd/systemd-journald"

// Journal is one private journald.
type Journal struct {
	// Dir is the journal directory to pass to journalctl --directory (it
	// holds <machine-id>/system.journal and, after rotations, archives).
	Dir string
	// SockDir holds journald's sockets (stdout, socket, dev-log).
	SockDir string

	t       testing.TB
	root    string
	cgroup2 string
	proc    *os.Process
	done    chan struct{}
	cgroups []string
}

var seq atomic.Int64

// Start starts a private journald and registers its stop.
func Start(t testing.TB) *Journal {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "a private journald needs root (mount namespace, cgroups)")
	}
	for _, p := range []string{"unshare", "nsenter", "systemd-cat", "journalctl"} {
		testenv.LookPath(t, p)
	}
	if _, err := os.Stat(Journald); err != nil {
		testenv.Missing(t, "systemd-journald not installed: "+err.Error())
	}
	cg2 := cgroup2Root()
	if cg2 == "" {
		testenv.Missing(t, "no cgroup v2 hierarchy mounted: journald could not tell the unit")
	}
	root := t.TempDir()
	j := &Journal{t: t, root: root, Dir: filepath.Join(root, "journal"), SockDir: filepath.Join(root, "sock"), cgroup2: cg2}
	for _, d := range []string{j.Dir, j.SockDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	j.start()
	t.Cleanup(j.cleanup)
	return j
}

// start runs journald in a new mount namespace and waits for its stdout
// socket.
func (j *Journal) start() {
	t := j.t
	_ = os.Remove(filepath.Join(j.SockDir, "stdout"))
	script := `set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run/systemd 2>/dev/null || { mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd; }
mkdir -p /run/systemd/journal
# A tmpfs over /run/log (when it exists) keeps the journal's mount point
# off the host's /run.
if [ -d /run/log ]; then mount -t tmpfs tmpfs /run/log; fi
mkdir -p /run/log/journal
mount --bind "$1" /run/systemd/journal
mount --bind "$2" /run/log/journal
exec ` + Journald
	unshare, _ := exec.LookPath("unshare")
	out, err := os.Create(filepath.Join(j.root, "journald.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	proc, err := os.StartProcess(unshare, []string{"unshare", "--mount", "--", "sh", "-c", script, "sh", j.SockDir, j.Dir}, &os.ProcAttr{
		Files: []*os.File{nil, out, out},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		t.Fatalf("journaltest: start journald: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_, _ = proc.Wait()
		close(done)
	}()
	j.proc, j.done = proc, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(j.SockDir, "stdout")); err == nil {
			if entries, _ := filepath.Glob(filepath.Join(j.Dir, "*", "system.journal")); len(entries) > 0 {
				return
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("journaltest: journald exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("journaltest: journald did not open its sockets and journal in 10s:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID is journald's pid (the process whose mount namespace writers enter).
func (j *Journal) PID() int { return j.proc.Pid }

// Stop stops journald (SIGTERM, then SIGKILL) and waits for it.
func (j *Journal) Stop() {
	if j.proc == nil {
		return
	}
	_ = j.proc.Signal(syscall.SIGTERM)
	select {
	case <-j.done:
	case <-time.After(10 * time.Second):
		_ = j.proc.Kill()
		<-j.done
	}
	j.proc = nil
}

// Restart stops journald and starts a new one on the same directories, as
// `systemctl restart systemd-journald` does.
func (j *Journal) Restart() {
	j.Stop()
	j.start()
}

// Ctl runs journalctl inside journald's namespace (so it reaches journald
// itself, for --rotate, --vacuum-*, --sync) and returns its output.
func (j *Journal) Ctl(args ...string) string {
	j.t.Helper()
	argv := append([]string{"-t", strconv.Itoa(j.PID()), "-m", "--", "journalctl"}, args...)
	out, err := exec.Command("nsenter", argv...).CombinedOutput()
	if err != nil {
		j.t.Fatalf("journaltest: journalctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// Unit creates a fresh cgroup for a simulated unit and returns the unit's
// name ("reflex-<pid>-<n>-<base>.service").
func (j *Journal) Unit(base string) string {
	j.t.Helper()
	name := fmt.Sprintf("reflex-%d-%d-%s.service", os.Getpid(), seq.Add(1), base)
	dir := filepath.Join(j.cgroup2, "system.slice", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		j.t.Fatalf("journaltest: cgroup: %v", err)
	}
	j.cgroups = append(j.cgroups, dir)
	return name
}

// Wrap returns an argv prefix that runs a command as the main process of
// unit with stdout and stderr connected to the journal, the way systemd
// starts a service with StandardOutput=journal: the shell moves itself into
// the unit's cgroup, enters journald's namespace, and systemd-cat connects
// the streams and execs the command, which keeps the shell's pid.
func (j *Journal) Wrap(unit, identifier string) []string {
	procs := filepath.Join(j.cgroup2, "system.slice", unit, "cgroup.procs")
	return []string{"/bin/sh", "-c", `p=$1 id=$2; shift 2; echo $$ > "$0" && exec nsenter -t "$p" -m -- systemd-cat --identifier="$id" --level-prefix=false -- "$@"`,
		procs, strconv.Itoa(j.PID()), identifier}
}

// Cat writes lines to the journal as unit's stdout, through the real
// systemd-cat, and returns once journald has stored the last one under the
// unit. The writer stays alive until then: journald reads a writer's
// metadata (_SYSTEMD_UNIT among them) from /proc when the line arrives, and
// a writer that has already exited leaves the entry without a unit.
func (j *Journal) Cat(unit string, lines ...string) {
	j.t.Helper()
	argv := append(j.Wrap(unit, "reflextest"), "cat")
	cmd := exec.Command(argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		j.t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		j.t.Fatalf("journaltest: systemd-cat: %v", err)
	}
	_, werr := io.WriteString(stdin, strings.Join(lines, "\n")+"\n")
	last := lines[len(lines)-1]
	deadline := time.Now().Add(10 * time.Second)
	for werr == nil && !j.has(unit, last) {
		if time.Now().After(deadline) {
			werr = fmt.Errorf("line %q not in the journal under %s after 10s", last, unit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil || werr != nil {
		j.t.Fatalf("journaltest: systemd-cat: %v %v\n%s", err, werr, out.String())
	}
}

// has reports whether the journal holds message under unit.
func (j *Journal) has(unit, message string) bool {
	out, err := exec.Command("journalctl", "--directory="+j.Dir, "--output=cat", "--no-pager",
		"_SYSTEMD_UNIT="+unit, "MESSAGE="+message).Output()
	return err == nil && strings.Contains(string(out), message)
}

func (j *Journal) cleanup() {
	j.Stop()
	for _, dir := range j.cgroups {
		// The unit's processes have exited (their harness stopped them
		// first); an empty cgroup is removed with rmdir.
		for i := 0; i < 100; i++ {
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// cgroup2Root returns where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup
// on a unified host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Root() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		_, after, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(after, "cgroup2 ") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) > 4 {
			return fields[4]
		}
	}
	return ""
}
