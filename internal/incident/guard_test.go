package incident

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

const (
	statIdle = "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\nbtime 1\n"
	// From statIdle: 100 busy and 900 idle ticks more: 10% busy.
	statLater = "cpu  150 0 150 1700 0 0 0 0 0 0\n"
	// From statIdle: 980 busy and 20 idle (iowait included) ticks more.
	statBusy = "cpu  600 100 580 810 10 0 0 0 0 0\n"
	meminfo  = "MemTotal:       16000000 kB\nMemAvailable:    1000000 kB\n"
)

// guardRig builds a Guard over plain data: the app's state, one PG scrape
// and the two /proc/stat readings the CPU window sees.
type guardRig struct {
	app      GuardApp
	known    bool
	pg       pgmon.SetSnapshot
	pgErr    error
	stat     [2]string
	meminfo  string
	procErr  error
	reads    int
	sleptFor time.Duration
}

func (r *guardRig) guard() *Guard {
	return NewGuard(GuardOptions{
		App: func(string) (GuardApp, bool) { return r.app, r.known },
		PG:  func(context.Context) (pgmon.SetSnapshot, error) { return r.pg, r.pgErr },
		ReadProc: func(name string) ([]byte, error) {
			if r.procErr != nil {
				return nil, r.procErr
			}
			switch name {
			case "stat":
				s := r.stat[min(r.reads, 1)]
				r.reads++
				return []byte(s), nil
			case "meminfo":
				return []byte(r.meminfo), nil
			}
			return nil, errors.New("unexpected read of " + name)
		},
		Sleep: func(_ context.Context, d time.Duration) error { r.sleptFor = d; return nil },
	})
}

func healthy() *guardRig {
	return &guardRig{
		app:     GuardApp{DataFresh: true, Workers: 2, WorkerRSSMax: 100 << 20},
		known:   true,
		pg:      pgmon.SetSnapshot{Targets: []pgmon.Snapshot{{Target: "main", Up: true, Saturation: 0.5, MaxConnections: 100, ClientBackends: 45}}},
		stat:    [2]string{statIdle, statLater},
		meminfo: meminfo,
	}
}

// TestGuardRules checks each rule of Guard's doc comment, in precedence
// order: every case starts healthy and breaks one thing (or two, to show
// which wins).
func TestGuardRules(t *testing.T) {
	for _, tc := range []struct {
		name     string
		action   intent.Action
		edit     func(*guardRig)
		want     intent.Refusal
		evidence string
	}{
		{"healthy: no objection", intent.ScaleUp, func(*guardRig) {}, "", ""},
		{"1 unknown app", intent.ScaleUp, func(r *guardRig) { r.known = false }, intent.RefuseNoData, "not known"},
		{"1 stale data refuses a reload too", intent.Reload, func(r *guardRig) { r.app.DataFresh = false }, intent.RefuseNoData, "not being read"},
		{"1 no data wins over everything", intent.ScaleUp, func(r *guardRig) {
			r.app.DataFresh = false
			r.app.StuckOnDatabase = []int{7}
		}, intent.RefuseNoData, ""},
		{"2 restart is not judged on load", intent.Restart, func(r *guardRig) { r.stat[1] = statBusy }, "", ""},
		{"2 scale down is not judged on load", intent.ScaleDown, func(r *guardRig) { r.pg.Targets[0].Saturation = 1 }, "", ""},
		{"3 stuck on the database", intent.ScaleUp, func(r *guardRig) {
			r.app.StuckOnDatabase = []int{41, 42}
			r.app.StuckEvidence = "worker 41 waits on backend 900 (active, Lock)"
			r.pg.Targets[0].Saturation = 1
		}, intent.RefuseStuckOnDatabase, "2 worker(s) stuck reading from the database (pids 41,42): worker 41 waits on backend 900 (active, Lock)"},
		{"4 PostgreSQL saturated", intent.ScaleUp, func(r *guardRig) {
			r.pg.Targets[0].Saturation = 0.95
			r.pg.Bouncers = []pgmon.BouncerSnapshot{{Target: "pgb", Up: true, Pools: []pgmon.Pool{{Database: "app", User: "u", ClientWaiting: 3}}}}
		}, intent.RefuseDBSaturated, "PostgreSQL main at 95%"},
		{"4 exactly at the threshold", intent.ScaleUp, func(r *guardRig) { r.pg.Targets[0].Saturation = 0.9 }, intent.RefuseDBSaturated, ""},
		{"4 a target that is down is not evidence", intent.ScaleUp, func(r *guardRig) {
			r.pg.Targets[0].Up = false
			r.pg.Targets[0].Saturation = 1
		}, "", ""},
		{"4 a failed scrape is not evidence", intent.ScaleUp, func(r *guardRig) { r.pgErr = errors.New("panic") }, "", ""},
		{"5 PgBouncer clients waiting", intent.ScaleUp, func(r *guardRig) {
			r.pg.Bouncers = []pgmon.BouncerSnapshot{{Target: "pgb", Up: true, Pools: []pgmon.Pool{{Database: "app", User: "u"}, {Database: "app", User: "v", ClientWaiting: 3, MaxWait: time.Second}}}}
		}, intent.RefusePoolWaiting, "PgBouncer pgb pool app/v has 3 client(s) waiting (oldest 1s)"},
		{"5 a bouncer that is down is not evidence", intent.ScaleUp, func(r *guardRig) {
			r.pg.Bouncers = []pgmon.BouncerSnapshot{{Target: "pgb", Up: false, Pools: []pgmon.Pool{{ClientWaiting: 3}}}}
		}, "", ""},
		{"6 CPU saturated", intent.ScaleUp, func(r *guardRig) {
			r.stat[1] = statBusy
			r.meminfo = "MemAvailable: 1 kB\n"
		}, intent.RefuseCPUSaturated, "cores 98% busy over 500ms"},
		{"6 unreadable /proc/stat is not evidence", intent.ScaleUp, func(r *guardRig) { r.procErr = errors.New("EACCES") }, "", ""},
		{"7 memory below one worker", intent.ScaleUp, func(r *guardRig) { r.app.WorkerRSSMax = 2 << 30 }, intent.RefuseMemoryLow, "MemAvailable 1024000000 bytes is below one worker's RSS of 2147483648 bytes"},
		{"7 unknown RSS is not evidence", intent.ScaleUp, func(r *guardRig) {
			r.app.WorkerRSSMax = 0
			r.meminfo = "MemAvailable: 1 kB\n"
		}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := healthy()
			tc.edit(r)
			got, ev := r.guard().Check(context.Background(), "app", tc.action)
			require.Equal(t, tc.want, got, ev)
			require.Contains(t, ev, tc.evidence)
		})
	}
}

func TestGuardMeasuresCPUOverItsWindow(t *testing.T) {
	r := healthy()
	g := r.guard()
	got, _ := g.Check(context.Background(), "app", intent.ScaleUp)
	require.Empty(t, got)
	require.Equal(t, 2, r.reads, "two /proc/stat reads")
	require.Equal(t, 500*time.Millisecond, r.sleptFor)
}

// A CPU threshold above 1 is the check turned off: the guard does not wait
// its CPU window for a number it cannot act on, and still checks memory.
func TestGuardCPUCheckOffDoesNotWait(t *testing.T) {
	r := healthy()
	r.app.WorkerRSSMax = 2 << 30
	g := r.guard()
	g.opts.CPUBusyAbove = 1.01
	got, _ := g.Check(context.Background(), "app", intent.ScaleUp)
	require.Equal(t, intent.RefuseMemoryLow, got, "the memory check still applies")
	require.Zero(t, r.reads, "no /proc/stat read")
	require.Zero(t, r.sleptFor, "no CPU window waited")
}

func TestParseCPUTimes(t *testing.T) {
	a, err := ParseCPUTimes([]byte(statIdle))
	require.NoError(t, err)
	require.Equal(t, CPUTimes{Busy: 200, Idle: 800}, a)
	b, err := ParseCPUTimes([]byte(statLater))
	require.NoError(t, err)
	busy, err := b.BusySince(a)
	require.NoError(t, err)
	require.InDelta(t, 0.1, busy, 1e-9)
	// guest time is inside user time already (proc(5)).
	g, err := ParseCPUTimes([]byte("cpu  100 0 0 100 0 0 0 0 50 50\n"))
	require.NoError(t, err)
	require.Equal(t, CPUTimes{Busy: 100, Idle: 100}, g)

	for _, bad := range []string{"", "cpu0 1 2 3 4\n", "cpu  1 2 x 4 5\n", "cpu  1\n"} {
		_, err := ParseCPUTimes([]byte(bad))
		require.Error(t, err, "%q", bad)
	}
	_, err = a.BusySince(a)
	require.Error(t, err, "no tick passed")
	_, err = a.BusySince(b)
	require.Error(t, err, "backwards")
}

func TestParseMemAvailable(t *testing.T) {
	n, err := ParseMemAvailable([]byte(meminfo))
	require.NoError(t, err)
	require.Equal(t, uint64(1000000*1024), n)
	for _, bad := range []string{"", "MemTotal: 1 kB\n", "MemAvailable: x kB\n", "MemAvailable: 5 MB\n", "MemAvailable:\n"} {
		_, err := ParseMemAvailable([]byte(bad))
		require.Error(t, err, "%q", bad)
	}
}

// TestGuardOnThisHost runs the CPU and memory checks on the real /proc:
// whatever the load, they must answer without error or hang.
func TestGuardOnThisHost(t *testing.T) {
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	g := NewGuard(GuardOptions{
		App:       func(string) (GuardApp, bool) { return GuardApp{DataFresh: true, WorkerRSSMax: 1}, true },
		ReadProc:  fs.ReadRootFile,
		CPUWindow: 50 * time.Millisecond,
	})
	got, ev := g.Check(context.Background(), "app", intent.ScaleUp)
	require.Contains(t, []intent.Refusal{"", intent.RefuseCPUSaturated}, got, ev)
}
