package receiver

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/actuator"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/audit"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/state"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/verify"
)

// gunicornHost is the host's view of one real Gunicorn, read from /proc
// at every Lookup (what appset's Manager gives the running daemon).
type gunicornHost struct {
	fs procinfo.FS
	g  *gunicorntest.Gunicorn
}

func (h gunicornHost) Lookup(app string) (intent.AppView, bool) {
	if app != "shop" {
		return intent.AppView{}, false
	}
	id, err := h.fs.Identify(h.g.MasterPID())
	if err != nil {
		return intent.AppView{Name: app, Workers: -1}, true
	}
	return intent.AppView{Name: app, Master: id, Workers: len(h.g.WorkerPIDs()), DataFresh: true, SampledAt: time.Now()}, true
}

func liveEngine(t *testing.T, g *gunicorntest.Gunicorn, deadline time.Duration) (*Engine, string) {
	t.Helper()
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	return liveEngineOn(t, gunicornHost{fs: fs, g: g}, fs,
		policy.Rules{MinWorkers: 2, MaxWorkers: 3, Cooldown: time.Millisecond, Grace: time.Millisecond}, deadline)
}

// liveEngineOn is an engine over host with the real actuator and verifier.
func liveEngineOn(t *testing.T, host intent.Host, fs procinfo.FS, rules policy.Rules, deadline time.Duration) (*Engine, string) {
	t.Helper()
	act, err := actuator.New(actuator.Options{FS: fs})
	require.NoError(t, err)
	t.Cleanup(act.Close)
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, "state.json"), time.Now())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	auditPath := filepath.Join(dir, "audit.jsonl")
	aud, err := audit.Open(auditPath, nil)
	require.NoError(t, err)
	t.Cleanup(func() { aud.Close() })
	e, err := New(Options{
		Apps:     []App{{Name: "shop", Rules: rules}},
		Host:     host,
		Effector: Live{Actuator: act, FS: fs, Host: host, Verify: verify.Options{Deadline: deadline, Interval: 50 * time.Millisecond}},
		Store:    store, Audit: aud, ReconcileEvery: -1,
	})
	require.NoError(t, err)
	return e, auditPath
}

// The engine on a real Gunicorn: a scale-up is performed by the actuator
// and verified in /proc; at max_workers the next one is out of bounds.
func TestLiveScaleUpOnRealGunicorn(t *testing.T) {
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 2})
	e, auditPath := liveEngine(t, g, 30*time.Second)
	ctx := context.Background()
	_, err := e.Submit(ctx, []intent.Alert{scaleUp(time.Now().Add(-time.Minute))}, nil)
	require.NoError(t, err)
	for e.Step(ctx, "shop") {
	}
	require.Len(t, g.WorkerPIDs(), 3)
	a := scaleUp(time.Now().Add(-time.Second))
	a.Fingerprint = "1111222233334444"
	// The 1ms cooldown and grace passed while the first step was verified.
	_, err = e.Submit(ctx, []intent.Alert{a}, nil)
	require.NoError(t, err)
	for e.Step(ctx, "shop") {
	}
	require.Equal(t, []string{"scale_up:acted", "scale_up:verified", "scale_up:out_of_bounds"}, auditOutcomes(t, auditPath))
	require.Len(t, g.WorkerPIDs(), 3)
}

// D12: a TTIN that cannot take effect (the master is stopped) is recorded
// as verification_failed once; the desired count is what was observed, so
// nothing retries it.
func TestLiveVerificationFailedOnStoppedMaster(t *testing.T) {
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 2})
	e, auditPath := liveEngine(t, g, 2*time.Second)
	require.NoError(t, g.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = g.Signal(syscall.SIGCONT) })
	ctx := context.Background()
	_, err := e.Submit(ctx, []intent.Alert{scaleUp(time.Now().Add(-time.Minute))}, nil)
	require.NoError(t, err)
	for e.Step(ctx, "shop") {
	}
	require.Equal(t, []string{"scale_up:acted", "scale_up:verification_failed"}, auditOutcomes(t, auditPath))
	require.Contains(t, e.Stats().LastAction, DecisionKey{App: "shop", Action: intent.ScaleUp}, "the TTIN was sent")
	require.Equal(t, 2, e.Status()[0].Desired, "the observed count, so nothing retries")
	require.NoError(t, g.Signal(syscall.SIGCONT))
}
