package actuator_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/actuator"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/verify"
)

// realDeadline bounds a verification on a real Gunicorn: far above a
// worker's boot time, so only a real failure reaches it.
const realDeadline = 30 * time.Second

type rig struct {
	t   *testing.T
	g   *gunicorntest.Gunicorn
	fs  procinfo.FS
	act *actuator.Actuator
	id  procinfo.Identity
}

func newRig(t *testing.T, workers int, opts actuator.Options) *rig {
	t.Helper()
	return newRigWith(t, gunicorntest.Options{Workers: workers, Name: "rx"}, opts)
}

func newRigWith(t *testing.T, gopts gunicorntest.Options, opts actuator.Options) *rig {
	t.Helper()
	workers := gopts.Workers
	g := gunicorntest.Start(t, gopts)
	require.NoError(t, g.WaitWorkers(workers, realDeadline))
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	opts.FS = fs
	act, err := actuator.New(opts)
	require.NoError(t, err)
	t.Cleanup(act.Close)
	id, err := act.MasterFromPidfile(g.Pidfile)
	require.NoError(t, err)
	return &rig{t: t, g: g, fs: fs, act: act, id: id}
}

func (r *rig) target() actuator.Target { return actuator.Target{App: "rx", Master: r.id} }

func (r *rig) probe() verify.Probe { return verify.ProcProbe(r.fs, verify.Fixed(r.id)) }

// sample reads the app once, as a verification's first probe does.
func (r *rig) sample() verify.Sample {
	r.t.Helper()
	s, err := r.probe()(context.Background())
	require.NoError(r.t, err)
	return s
}

// step performs one scale action and verifies the count it must reach.
func (r *rig) step(act intent.Action, want int) {
	r.t.Helper()
	ctx := context.Background()
	res, err := r.act.Perform(ctx, act, r.target())
	require.NoError(r.t, err)
	require.False(r.t, res.DryRun || res.KillSwitch)
	v, err := verify.WorkerCount(ctx, r.probe(), want, verify.Options{Deadline: realDeadline})
	require.NoError(r.t, err)
	require.True(r.t, v.Verified(), v.Evidence)
	require.Len(r.t, r.g.WorkerPIDs(), want, "the harness's own view of /proc agrees")
}

// stepTo is what the engine does to re-apply a desired count: one signal,
// one verification, until the count is reached.
func (r *rig) stepTo(desired int) {
	r.t.Helper()
	for n := r.sample().Workers; n != desired; {
		if n < desired {
			n++
			r.step(intent.ScaleUp, n)
		} else {
			n--
			r.step(intent.ScaleDown, n)
		}
	}
}

// TestScaleUpReloadReapplyDownOnRealGunicorn: 2 → 4 one verified TTIN at
// a time; a HUP resets the count to the configured 2 (verified as a new
// generation of booted workers); the desired 4 is re-applied; then down to
// the minimum of 2, each step verified from /proc.
func TestScaleUpReloadReapplyDownOnRealGunicorn(t *testing.T) {
	r := newRig(t, 2, actuator.Options{})
	r.step(intent.ScaleUp, 3)
	r.step(intent.ScaleUp, 4)

	before := r.sample()
	require.Equal(t, 4, before.Workers)
	res, err := r.act.Perform(context.Background(), intent.Reload, r.target())
	require.NoError(t, err)
	require.Equal(t, "HUP", res.Signal)
	v, err := verify.NewGeneration(context.Background(), r.probe(), before, verify.Options{Deadline: realDeadline})
	require.NoError(t, err)
	require.True(t, v.Verified(), v.Evidence)
	require.Equal(t, 2, v.Last.Workers, "a HUP resets the count to the configured workers: %s", v.Evidence)

	r.stepTo(4)
	require.Equal(t, 4, r.sample().Workers)
	r.stepTo(2)
	require.Equal(t, 2, r.sample().Workers)
	require.Equal(t, 4, r.g.LogCount("Handling signal: ttin"), "one TTIN per step, none coalesced or repeated")
	require.Equal(t, 2, r.g.LogCount("Handling signal: ttou"))
}

// TestPidReusedByAnotherProcessRefused (D7): the pidfile names a dead
// master whose pid now belongs to another process. The identity taken from
// the old master no longer verifies, and the pidfile alone does not name a
// Gunicorn master: both are refused and the other process gets no signal.
func TestPidReusedByAnotherProcessRefused(t *testing.T) {
	r := newRig(t, 1, actuator.Options{})
	old := r.id
	pidfile := r.g.Pidfile
	r.g.Stop()

	other := startSleeper(t)
	// Reuse the old pid number is not something a test can force; what
	// the actuator sees is the same: an identity whose pid now names a
	// process started at another time.
	reused := old
	reused.PID = other.Process.Pid
	_, err := r.act.Perform(context.Background(), intent.ScaleUp, actuator.Target{App: "rx", Master: reused})
	require.ErrorIs(t, err, actuator.ErrNotMaster)
	require.ErrorIs(t, err, procinfo.ErrPIDReused)
	out, ref := actuator.Outcome(err)
	require.Equal(t, intent.OutcomeRefused, out)
	require.Equal(t, intent.RefuseMasterUnverified, ref)

	// The stale pidfile now holds the other process's pid.
	require.NoError(t, os.WriteFile(pidfile, []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o600))
	_, err = r.act.MasterFromPidfile(pidfile)
	require.ErrorIs(t, err, actuator.ErrNotMaster)

	// The old identity itself: the master is gone.
	_, err = r.act.Perform(context.Background(), intent.ScaleUp, actuator.Target{App: "rx", Master: old})
	require.ErrorIs(t, err, actuator.ErrNotMaster)

	st, err := r.fs.Stat(other.Process.Pid)
	require.NoError(t, err)
	require.NotEqual(t, byte('T'), st.State, "a TTIN would have stopped the sleeper")
}

// startSleeper starts a process that is not Gunicorn and stops it at the
// end of the test.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// TestGarbagePidfilesRefused (D8): nothing but a pidfile naming a live
// Gunicorn master yields an identity to signal.
func TestGarbagePidfilesRefused(t *testing.T) {
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	act, err := actuator.New(actuator.Options{FS: fs})
	require.NoError(t, err)
	dir := t.TempDir()
	self := strconv.Itoa(os.Getpid())
	for name, content := range map[string]string{
		"empty":                          "",
		"word":                           "gunicorn\n",
		"zero":                           "0\n",
		"init":                           "1\n",
		"negative":                       "-42\n",
		"trailing":                       "123abc\n",
		"two pids":                       "123 456\n",
		"huge":                           "99999999999999999999\n",
		"no process":                     "4194303\n", // above the default pid_max: never a live pid
		"binary":                         "\x00\x01\x02",
		"not gunicorn (the test itself)": self + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, "pid")
			require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
			_, err := act.MasterFromPidfile(p)
			require.ErrorIs(t, err, actuator.ErrNotMaster)
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := act.MasterFromPidfile(filepath.Join(dir, "absent"))
		require.ErrorIs(t, err, actuator.ErrNotMaster)
	})
	t.Run("a directory", func(t *testing.T) {
		_, err := act.MasterFromPidfile(dir)
		require.ErrorIs(t, err, actuator.ErrNotMaster)
	})
	t.Run("identity of pid 1", func(t *testing.T) {
		id, err := fs.Identify(1)
		if err != nil {
			id = procinfo.Identity{PID: 1}
		}
		_, err = act.Perform(context.Background(), intent.Reload, actuator.Target{App: "x", Master: id})
		require.ErrorIs(t, err, actuator.ErrNotMaster)
	})
	t.Run("no identity", func(t *testing.T) {
		_, err := act.Perform(context.Background(), intent.ScaleUp, actuator.Target{App: "x"})
		require.ErrorIs(t, err, actuator.ErrNotMaster)
	})
}

// TestWorkerPidRefused (D9): a worker's pid, through a pidfile or as the
// target's identity, is refused, and the worker count does not change.
// Untitled (no setproctitle), a worker's command line is its master's:
// only its parent tells them apart.
func TestWorkerPidRefused(t *testing.T) {
	for _, untitled := range []bool{false, true} {
		t.Run(fmt.Sprintf("untitled=%v", untitled), func(t *testing.T) {
			r := newRigWith(t, gunicorntest.Options{Workers: 2, Name: "rx", NoSetproctitle: untitled}, actuator.Options{})
			workers := r.g.WorkerPIDs()
			require.Len(t, workers, 2)
			wid, err := r.fs.Identify(workers[0])
			require.NoError(t, err)
			_, titled := procinfo.ParseTitle(wid.Cmdline)
			require.Equal(t, !untitled, titled, "%q", wid.Cmdline)

			pidfile := filepath.Join(t.TempDir(), "worker.pid")
			require.NoError(t, os.WriteFile(pidfile, []byte(strconv.Itoa(workers[0])+"\n"), 0o600))
			_, err = r.act.MasterFromPidfile(pidfile)
			require.ErrorIs(t, err, actuator.ErrNotMaster)
			require.ErrorContains(t, err, "worker")

			for _, a := range []intent.Action{intent.ScaleUp, intent.ScaleDown, intent.Reload} {
				_, err := r.act.Perform(context.Background(), a, actuator.Target{App: "rx", Master: wid})
				require.ErrorIs(t, err, actuator.ErrNotMaster, a)
			}
			require.Equal(t, workers, r.g.WorkerPIDs(), "no worker was signalled or replaced")
			require.Zero(t, r.g.LogCount("Handling signal"))
		})
	}
}

// TestDryRunAndKillSwitchDoNothing (D11): under dry-run, and while the
// kill-switch file exists, Perform says so and sends nothing; removing
// the file lets the next action through. Gunicorn logs every signal it
// handles, in order, so the log proves how many TTINs arrived.
func TestDryRunAndKillSwitchDoNothing(t *testing.T) {
	dry := newRig(t, 1, actuator.Options{DryRun: true})
	res, err := dry.act.Perform(context.Background(), intent.ScaleUp, dry.target())
	require.NoError(t, err)
	require.True(t, res.DryRun)
	res, err = dry.act.Perform(context.Background(), intent.Reload, dry.target())
	require.NoError(t, err)
	require.True(t, res.DryRun)

	ks := filepath.Join(t.TempDir(), "kill-switch")
	require.NoError(t, os.WriteFile(ks, nil, 0o600))
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	act, err := actuator.New(actuator.Options{FS: fs, KillSwitch: ks})
	require.NoError(t, err)
	target := dry.target()
	res, err = act.Perform(context.Background(), intent.ScaleUp, target)
	require.NoError(t, err)
	require.True(t, res.KillSwitch)
	res, err = act.Perform(context.Background(), intent.Restart, actuator.Target{App: "rx", Unit: "rx.service"})
	require.NoError(t, err)
	require.True(t, res.KillSwitch, "a restart is stopped before the bus is dialled")

	require.NoError(t, os.Remove(ks))
	res, err = act.Perform(context.Background(), intent.ScaleUp, target)
	require.NoError(t, err)
	require.False(t, res.KillSwitch || res.DryRun)
	v, err := verify.WorkerCount(context.Background(), dry.probe(), 2, verify.Options{Deadline: realDeadline})
	require.NoError(t, err)
	require.True(t, v.Verified(), v.Evidence)
	require.Equal(t, 1, dry.g.LogCount("Handling signal: ttin"), "only the TTIN sent after the switch was removed arrived")
	require.Zero(t, dry.g.LogCount("Handling signal: hup"))
}

// TestTTINThatCannotTakeEffectFailsVerification (D12): the master is
// stopped (SIGSTOP), so the TTIN is queued but never handled. The
// verification polls the real /proc on a stepped waker and a fake clock
// and reports verification_failed at the deadline, once, with the
// stopped master as evidence.
func TestTTINThatCannotTakeEffectFailsVerification(t *testing.T) {
	r := newRig(t, 2, actuator.Options{})
	require.NoError(t, r.g.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = r.g.Signal(syscall.SIGCONT) })
	waitStopped(t, r.fs, r.id.PID)

	_, err := r.act.Perform(context.Background(), intent.ScaleUp, r.target())
	require.NoError(t, err, "signalling a stopped process succeeds; the effect is what fails")

	clock := newFakeClock()
	w := verify.NewTestWaker()
	opts := verify.Options{Deadline: 10 * time.Second, Waker: w, Now: clock.Now}
	done := make(chan verify.Result, 1)
	go func() {
		v, err := verify.WorkerCount(context.Background(), r.probe(), 3, opts)
		if err != nil {
			t.Error(err)
		}
		done <- v
	}()
	ctx, cancel := context.WithTimeout(context.Background(), realDeadline)
	defer cancel()
	_, err = w.WaitIdle(ctx)
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		clock.Advance(2 * time.Second)
		finished, err := w.Step(ctx)
		require.NoError(t, err)
		require.Equal(t, i == 4, finished, "finished only at the deadline (step %d)", i)
	}
	v := <-done
	require.Equal(t, intent.OutcomeVerificationFailed, v.Outcome)
	require.Equal(t, 6, v.Polls, "one probe at start and one per step: no retry loop")
	require.True(t, v.Last.Stopped, v.Evidence)
	require.Equal(t, 2, v.Last.Workers)
	require.Contains(t, v.Evidence, "stopped")
}

func waitStopped(t *testing.T, fs procinfo.FS, pid int) {
	t.Helper()
	deadline := time.Now().Add(realDeadline)
	for {
		st, err := fs.Stat(pid)
		require.NoError(t, err)
		if st.State == 'T' {
			return
		}
		require.True(t, time.Now().Before(deadline), "master never stopped")
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRestartThroughSystemd restarts a unit through the system bus. It
// runs only where a system bus is present (not in containers, and not in
// this project's CI, which has no systemd): it skips otherwise, even under
// REFLEX_REQUIRE_REAL=1, and needs REFLEX_TEST_UNIT naming a unit it may
// restart.
func TestRestartThroughSystemd(t *testing.T) {
	if _, err := os.Stat("/run/dbus/system_bus_socket"); err != nil {
		t.Skip("no system bus (/run/dbus/system_bus_socket): restart through systemd not tested here")
	}
	unit := os.Getenv("REFLEX_TEST_UNIT")
	if unit == "" {
		t.Skip("REFLEX_TEST_UNIT not set: no unit this test may restart")
	}
	act, err := actuator.New(actuator.Options{})
	require.NoError(t, err)
	t.Cleanup(act.Close)
	ctx, cancel := context.WithTimeout(context.Background(), realDeadline)
	defer cancel()
	res, err := act.Perform(ctx, intent.Restart, actuator.Target{App: "x", Unit: unit})
	require.NoError(t, err)
	require.Equal(t, "done", res.JobResult)
}

func TestRestartNeedsAConfiguredServiceUnit(t *testing.T) {
	act, err := actuator.New(actuator.Options{})
	require.NoError(t, err)
	_, err = act.Perform(context.Background(), intent.Restart, actuator.Target{App: "x"})
	require.ErrorIs(t, err, actuator.ErrNoUnit)
	out, _ := actuator.Outcome(err)
	require.Equal(t, intent.OutcomeNotAllowed, out)
	for _, u := range []string{"x", "x.socket", "../x.service", "a b.service", "x.service\n", ".service"} {
		_, err = act.Perform(context.Background(), intent.Restart, actuator.Target{App: "x", Unit: u})
		require.ErrorIs(t, err, actuator.ErrUnsupported, u)
	}
	_, err = act.Perform(context.Background(), intent.Action("kill"), actuator.Target{App: "x"})
	require.True(t, errors.Is(err, actuator.ErrUnsupported))
}

// TestUpgradeChildRefused: during a USR2 upgrade the new master is a
// child of the old one; it is never signalled as the app's master (the
// old master still is, until it is told to leave).
func TestUpgradeChildRefused(t *testing.T) {
	r := newRig(t, 1, actuator.Options{})
	require.NoError(t, r.g.Signal(syscall.SIGUSR2))
	deadline := time.Now().Add(realDeadline)
	var child procinfo.Identity
	for {
		if pid, err := procinfo.ReadPidfile(r.g.Pidfile + ".2"); err == nil {
			if id, err := r.fs.Identify(pid); err == nil && len(id.Cmdline) > 0 {
				child = id
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "no USR2 child appeared")
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, r.id.PID, child.PPID)
	_, err := r.act.Perform(context.Background(), intent.ScaleUp, actuator.Target{App: "rx", Master: child})
	require.ErrorIs(t, err, actuator.ErrNotMaster)
	require.ErrorContains(t, err, "child of Gunicorn process")
	require.NoError(t, r.act.CheckMaster(r.id), "the old master is still the app's master")
}
