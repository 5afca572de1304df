package procinfo

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// blankArgvHelperEnv makes the test binary, re-run, zero its own argument
// area and so show /proc/<pid>/cmdline empty, as a process does between
// exec_mmap and create_elf_tables inside execve: alive, not a kernel
// thread, exe already set, no command line. It answers "blank" once
// blanked; a line "restore" on stdin puts the arguments back ("restored").
const blankArgvHelperEnv = "PROCINFO_BLANK_ARGV_HELPER"

// runBlankArgvHelper is the helper's body, called from TestMain.
func runBlankArgvHelper() {
	fail := func(err error) { fmt.Println("error:", err); os.Exit(2) }
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		fail(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Fields 48 and 49 (arg_start, arg_end); f[0] is field 3.
	if len(f) < 47 {
		fail(errors.New("short stat"))
	}
	start, err1 := strconv.ParseInt(f[48-3], 10, 64)
	end, err2 := strconv.ParseInt(f[49-3], 10, 64)
	if err1 != nil || err2 != nil || end <= start {
		fail(fmt.Errorf("arg area %q..%q", f[48-3], f[49-3]))
	}
	mem, err := os.OpenFile("/proc/self/mem", os.O_RDWR, 0)
	if err != nil {
		fail(err)
	}
	orig := make([]byte, end-start)
	if _, err := mem.ReadAt(orig, start); err != nil {
		fail(err)
	}
	if _, err := mem.WriteAt(make([]byte, end-start), start); err != nil {
		fail(err)
	}
	fmt.Println("blank")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "restore" {
			if _, err := mem.WriteAt(orig, start); err != nil {
				fail(err)
			}
			fmt.Println("restored")
		}
	}
	os.Exit(0)
}

// blankArgvChild starts the helper and waits until its command line is
// blank. restore puts it back and returns once the helper says so.
func blankArgvChild(t *testing.T) (pid int, argv []string, restore func()) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	argv = []string{exe, "-test.run=^$", "blank-argv-helper"}
	cmd := exec.Command(exe, argv[1:]...)
	cmd.Env = append(os.Environ(), blankArgvHelperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "blank\n", line)
	restore = func() {
		_, err := io.WriteString(stdin, "restore\n")
		require.NoError(t, err)
		line, err := out.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "restored\n", line)
	}
	return cmd.Process.Pid, argv, restore
}

// TestIdentifyRefusesProcessWithoutCommandLine: a live user process whose
// command line reads empty (the state of a process inside execve) gives no
// identity: Identify reads it again, then returns ErrStarting. Before the
// fix it returned an Identity with an empty Cmdline, which Verify then
// called a reused pid once the exec completed.
func TestIdentifyRefusesProcessWithoutCommandLine(t *testing.T) {
	t.Parallel()
	fs := realFS(t)
	pid, _, _ := blankArgvChild(t)
	cmd, err := fs.Cmdline(pid)
	require.NoError(t, err)
	require.Empty(t, cmd, "the helper's command line reads empty")

	waits := 0
	fs.settle = func(int) { waits++ }
	id, err := fs.Identify(pid)
	require.ErrorIs(t, err, ErrStarting, "identity %+v", id)
	require.Equal(t, identifyAttempts-1, waits)
	require.ErrorIs(t, fs.Verify(Identity{PID: pid, StartTicks: 1}), ErrStarting)
}

// TestIdentifyWaitsForExecToFinish: a process whose command line appears
// while Identify waits is identified with its full command line.
func TestIdentifyWaitsForExecToFinish(t *testing.T) {
	t.Parallel()
	fs := realFS(t)
	pid, argv, restore := blankArgvChild(t)
	var waits []int
	fs.settle = func(attempt int) {
		waits = append(waits, attempt)
		if attempt == 2 {
			restore()
		}
	}
	id, err := fs.Identify(pid)
	require.NoError(t, err)
	require.Equal(t, argv, id.Cmdline)
	require.Equal(t, []int{1, 2}, waits)
	require.NoError(t, fs.Verify(id))
}

// TestIdentifyKernelThread: a kernel thread has no command line either, but
// is not starting: it is identified at once.
func TestIdentifyKernelThread(t *testing.T) {
	t.Parallel()
	fs := realFS(t)
	st, err := fs.Stat(2)
	if err != nil || st.Comm != "kthreadd" {
		t.Skip("no kthreadd at pid 2 (a pid namespace)")
	}
	fs.settle = func(int) { t.Fatal("a kernel thread is not read again") }
	id, err := fs.Identify(2)
	require.NoError(t, err)
	require.Empty(t, id.Cmdline)
}

// TestIdentifyBetweenForkAndExec: a process stopped between fork and exec
// is the copy of its parent it is (as a Gunicorn worker, which never execs,
// stays); once it execs, that identity is no longer the process.
func TestIdentifyBetweenForkAndExec(t *testing.T) {
	t.Parallel()
	fs := realFS(t)
	python := testenv.LookPath(t, "python3")
	sleep := testenv.LookPath(t, "sleep")
	script := "import os, signal, sys; os.kill(os.getpid(), signal.SIGSTOP); os.execv(sys.argv[1], [sys.argv[1], '30'])"
	cmd := exec.Command(python, "-c", script, sleep)
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool {
		st, err := fs.Stat(pid)
		return err == nil && st.State == 'T'
	}, 10*time.Second, 5*time.Millisecond, "python stops itself before exec")

	id, err := fs.Identify(pid)
	require.NoError(t, err)
	require.Len(t, id.Cmdline, 4, "python's own command line (a pyenv shim may have exec'd another python first)")
	require.Equal(t, []string{"-c", script, sleep}, id.Cmdline[1:])
	require.NoError(t, cmd.Process.Signal(syscall.SIGCONT))
	require.Eventually(t, func() bool {
		c, err := fs.Cmdline(pid)
		return err == nil && len(c) == 2 && c[0] == sleep
	}, 10*time.Second, 5*time.Millisecond, "it execs sleep")
	require.ErrorIs(t, fs.Verify(id), ErrPIDReused)
	now, err := fs.Identify(pid)
	require.NoError(t, err)
	require.Equal(t, []string{sleep, "30"}, now.Cmdline)
	require.Equal(t, id.StartTicks, now.StartTicks, "exec keeps the start time")
}
