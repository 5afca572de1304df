package incident

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// GuardApp is what the guard needs of one app's live state, from the
// collectors (internal/appset's Manager.GuardApp).
type GuardApp struct {
	// DataFresh is false when the app's error log or /proc is not being
	// read (intent.AppView.DataFresh).
	DataFresh bool
	// Workers is the live worker count; WorkerRSSMax the largest worker's
	// resident set (0 when unknown): what one more worker will need.
	Workers      int
	WorkerRSSMax uint64
	// StuckOnDatabase lists the pids of workers stuck in a read from a
	// PostgreSQL (or PgBouncer) connection, by the /proc sampler's stuck
	// diagnosis; StuckEvidence says what their backends were doing, when
	// a backend link found it ("" otherwise).
	StuckOnDatabase []int
	StuckEvidence   string
}

// GuardOptions configures a Guard. Every source is a function value, so
// the guard reads nothing itself; a nil source is a check not made.
type GuardOptions struct {
	// App returns an app's live state; ok false means the app is unknown
	// (refused as no_data). Required.
	App func(app string) (GuardApp, bool)
	// PG scrapes the PostgreSQL and PgBouncer targets (pgmon.Set.Scrape).
	// Nil: no database checks. The configuration does not map apps onto
	// targets, so every configured target counts for every app.
	PG func(ctx context.Context) (pgmon.SetSnapshot, error)
	// PGTimeout bounds one PG scrape; zero means 2s.
	PGTimeout time.Duration
	// SaturationAbove: a PostgreSQL target whose Saturation (client
	// backends over the connections ordinary roles may use) is at least
	// this refuses a scale-up; zero means 0.9.
	SaturationAbove float64
	// ReadProc reads a file of the proc root ("stat", "meminfo":
	// procinfo.FS.ReadRootFile). Nil: no CPU or memory checks.
	ReadProc func(name string) ([]byte, error)
	// CPUWindow is how long CPU use is measured over; zero means 500ms.
	CPUWindow time.Duration
	// CPUBusyAbove: a busy fraction of all cores at least this refuses a
	// scale-up; zero means 0.95, above 1 turns the check off (and its
	// CPUWindow wait with it).
	CPUBusyAbove float64
	// Sleep waits d (or until ctx is done) between the two /proc/stat
	// reads; nil means a timer. Tests pass one that changes the fixture.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Guard is today's intent.Guard: it reads the collectors' state directly.
// The incident engine will implement intent.Guard more precisely (with
// the incident's own diagnosis); the receiver only sees the interface.
//
// Check's rules, first match wins:
//
//  1. The app is unknown, or its logs or /proc are not being read:
//     no_data, for every action (with no data the receiver does nothing).
//  2. Any action but scale_up: no objection (a reload or restart does not
//     add connections, CPU or memory; the policy bounds them).
//  3. Workers are stuck reading from the database: stuck_on_database
//     (more workers would wait the same way, on more connections).
//  4. A PostgreSQL target that is up is at or above SaturationAbove:
//     db_saturated. A target that is down is not evidence either way.
//  5. A PgBouncer pool has clients waiting: pool_waiting.
//  6. The host's cores are busy at least CPUBusyAbove over CPUWindow:
//     cpu_saturated (more sync workers only queue for CPU).
//  7. MemAvailable is below the largest worker's RSS: memory_low.
//
// A check whose source fails (a scrape error, an unreadable /proc/stat)
// is skipped: it is not evidence that more workers would hurt, and rule 1
// already refuses when the app's own data is missing.
type Guard struct {
	opts GuardOptions
}

var _ intent.Guard = (*Guard)(nil)

// NewGuard returns a Guard.
func NewGuard(opts GuardOptions) *Guard {
	if opts.PGTimeout <= 0 {
		opts.PGTimeout = 2 * time.Second
	}
	if opts.SaturationAbove <= 0 {
		opts.SaturationAbove = 0.9
	}
	if opts.CPUWindow <= 0 {
		opts.CPUWindow = 500 * time.Millisecond
	}
	if opts.CPUBusyAbove <= 0 {
		opts.CPUBusyAbove = 0.95
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	return &Guard{opts: opts}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Check implements intent.Guard.
func (g *Guard) Check(ctx context.Context, app string, a intent.Action) (intent.Refusal, string) {
	st, ok := GuardApp{}, false
	if g.opts.App != nil {
		st, ok = g.opts.App(app)
	}
	if !ok {
		return intent.RefuseNoData, "the app is not known to this host's collectors"
	}
	if !st.DataFresh {
		return intent.RefuseNoData, "the app's error log or /proc is not being read"
	}
	if a != intent.ScaleUp {
		return "", ""
	}
	if len(st.StuckOnDatabase) > 0 {
		ev := fmt.Sprintf("%d worker(s) stuck reading from the database (pids %s)", len(st.StuckOnDatabase), pidList(st.StuckOnDatabase))
		if st.StuckEvidence != "" {
			ev += ": " + st.StuckEvidence
		}
		return intent.RefuseStuckOnDatabase, ev
	}
	if r, ev, err := g.checkPG(ctx); err == nil && r != "" {
		return r, ev
	}
	if g.opts.ReadProc == nil {
		return "", ""
	}
	// A threshold above 1 turns the check off: a busy fraction never
	// reaches it, so waiting the CPUWindow would delay the action for
	// nothing.
	if g.opts.CPUBusyAbove <= 1 {
		if busy, err := g.cpuBusy(ctx); err == nil && busy >= g.opts.CPUBusyAbove {
			return intent.RefuseCPUSaturated, fmt.Sprintf("cores %.0f%% busy over %s (refusing at %.0f%%)",
				100*busy, g.opts.CPUWindow, 100*g.opts.CPUBusyAbove)
		}
	}
	if st.WorkerRSSMax > 0 {
		if avail, err := g.memAvailable(); err == nil && avail < st.WorkerRSSMax {
			return intent.RefuseMemoryLow, fmt.Sprintf("MemAvailable %d bytes is below one worker's RSS of %d bytes", avail, st.WorkerRSSMax)
		}
	}
	return "", ""
}

// checkPG applies rules 4 and 5.
func (g *Guard) checkPG(ctx context.Context) (intent.Refusal, string, error) {
	if g.opts.PG == nil {
		return "", "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.opts.PGTimeout)
	defer cancel()
	snap, err := g.opts.PG(ctx)
	if err != nil {
		return "", "", err
	}
	return JudgeDatabase(snap, g.opts.SaturationAbove)
}

// JudgeDatabase applies the guard's database rules (4 and 5) to one scrape
// of the PostgreSQL and PgBouncer targets.
func JudgeDatabase(snap pgmon.SetSnapshot, saturationAbove float64) (intent.Refusal, string, error) {
	for _, t := range snap.Targets {
		if t.Up && t.Saturation >= saturationAbove {
			return intent.RefuseDBSaturated, fmt.Sprintf("PostgreSQL %s at %.0f%% of its connections (%d of %d, %d reserved)",
				t.Target, 100*t.Saturation, t.ClientBackends, t.MaxConnections, t.ReservedConnections), nil
		}
	}
	for _, b := range snap.Bouncers {
		if !b.Up {
			continue
		}
		for _, p := range b.Pools {
			if p.ClientWaiting > 0 {
				return intent.RefusePoolWaiting, fmt.Sprintf("PgBouncer %s pool %s/%s has %d client(s) waiting (oldest %s)",
					b.Target, p.Database, p.User, p.ClientWaiting, p.MaxWait), nil
			}
		}
	}
	return "", "", nil
}

// cpuBusy measures the busy fraction of all cores over CPUWindow from two
// reads of /proc/stat.
func (g *Guard) cpuBusy(ctx context.Context) (float64, error) {
	b1, err := g.opts.ReadProc("stat")
	if err != nil {
		return 0, err
	}
	t1, err := ParseCPUTimes(b1)
	if err != nil {
		return 0, err
	}
	if err := g.opts.Sleep(ctx, g.opts.CPUWindow); err != nil {
		return 0, err
	}
	b2, err := g.opts.ReadProc("stat")
	if err != nil {
		return 0, err
	}
	t2, err := ParseCPUTimes(b2)
	if err != nil {
		return 0, err
	}
	return t2.BusySince(t1)
}

func (g *Guard) memAvailable() (uint64, error) {
	b, err := g.opts.ReadProc("meminfo")
	if err != nil {
		return 0, err
	}
	return ParseMemAvailable(b)
}

// CPUTimes is the aggregate "cpu" line of /proc/stat, in clock ticks.
type CPUTimes struct {
	Busy, Idle uint64 // idle includes iowait
}

// BusySince is the busy fraction of the ticks between prev and t; an
// error when no tick passed (the window was too short to say).
func (t CPUTimes) BusySince(prev CPUTimes) (float64, error) {
	if t.Busy < prev.Busy || t.Idle < prev.Idle {
		return 0, fmt.Errorf("/proc/stat went backwards")
	}
	busy, idle := t.Busy-prev.Busy, t.Idle-prev.Idle
	if busy+idle == 0 {
		return 0, fmt.Errorf("no CPU time passed between two /proc/stat reads")
	}
	return float64(busy) / float64(busy+idle), nil
}

// ParseCPUTimes parses the "cpu " line of /proc/stat (proc(5): user nice
// system idle iowait irq softirq steal guest guest_nice). guest and
// guest_nice are already counted in user and nice, so they are left out.
func ParseCPUTimes(b []byte) (CPUTimes, error) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != "cpu" {
			continue
		}
		var v [8]uint64
		for i := 1; i < len(f) && i <= len(v); i++ {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return CPUTimes{}, fmt.Errorf("/proc/stat cpu field %d %q: %w", i, f[i], err)
			}
			v[i-1] = n
		}
		idle := v[3] + v[4]
		busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
		return CPUTimes{Busy: busy, Idle: idle}, nil
	}
	return CPUTimes{}, fmt.Errorf("/proc/stat has no cpu line")
}

// ParseMemAvailable returns MemAvailable from /proc/meminfo, in bytes.
func ParseMemAvailable(b []byte) (uint64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc/meminfo MemAvailable %q: not \"<n> kB\"", strings.TrimSpace(rest))
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/meminfo MemAvailable: %w", err)
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("/proc/meminfo has no MemAvailable line")
}

func pidList(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}
