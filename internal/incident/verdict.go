package incident

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// Observed is what the engine saw of the collectors' state while an
// incident was open: the worst of each number over its samples, so a
// verdict does not change because the workers that showed it were killed.
type Observed struct {
	// Samples counts the snapshots merged; AllBusy those in which every
	// live worker was busy.
	Samples, AllBusy int
	// Workers is the largest live worker count seen.
	Workers int
	// BacklogPeak is the largest listen backlog seen (BacklogKnown when
	// one was read at all).
	BacklogKnown bool
	BacklogPeak  uint64
	// Past80 is the largest number of workers past 0.8 of the timeout.
	Past80 int
	// Timeout is the app's worker timeout as last seen.
	Timeout time.Duration
	// HostCPUBusy is the largest busy fraction of the host's cores between
	// two steps (HostCPUKnown when measured).
	HostCPUKnown bool
	HostCPUBusy  float64
	// DB is the worst database state seen.
	DB DBState
	// RSSMax is the largest worker RSS seen and MemoryLimit the workers'
	// memory limit (0 unknown).
	RSSMax, MemoryLimit uint64
}

// Merge folds one snapshot (and the host's CPU, when known) into o.
func (o *Observed) Merge(s Snapshot, db DBState, cpuBusy float64, cpuKnown bool) {
	if s.Sampled {
		o.Samples++
		if s.Workers > 0 && s.Busy >= s.Workers {
			o.AllBusy++
		}
		o.Workers = max(o.Workers, s.Workers)
		o.Past80 = max(o.Past80, s.Past80Timeout)
		if s.BacklogKnown {
			o.BacklogKnown = true
			o.BacklogPeak = max(o.BacklogPeak, s.BacklogPeak, s.BacklogQueued)
		}
		if s.Timeout > 0 {
			o.Timeout = s.Timeout
		}
		o.RSSMax = max(o.RSSMax, s.WorkerRSSMax)
		if s.MemoryLimit > 0 {
			o.MemoryLimit = s.MemoryLimit
		}
	}
	if cpuKnown {
		o.HostCPUKnown = true
		o.HostCPUBusy = max(o.HostCPUBusy, cpuBusy)
	}
	o.DB.mergeWorst(db)
}

// mergeWorst keeps the worst of each number of s and d.
func (s *DBState) mergeWorst(d DBState) {
	if !d.Known {
		return
	}
	s.Known = true
	if d.PoolWaiting > s.PoolWaiting {
		s.PoolWaiting, s.Pool, s.PoolMaxWait = d.PoolWaiting, d.Pool, d.PoolMaxWait
	}
	if d.Saturation > s.Saturation {
		s.Saturation, s.SaturationDetail = d.Saturation, d.SaturationDetail
	}
	s.LongestActive = max(s.LongestActive, d.LongestActive)
	s.LockWaiting = max(s.LockWaiting, d.LockWaiting)
	s.BlockersIdleInTransaction = max(s.BlockersIdleInTransaction, d.BlockersIdleInTransaction)
}

// Rules are the thresholds of Judge. Zero values select the defaults.
type Rules struct {
	// DeployWindow: timeouts starting within this after a deploy marker
	// may be the deploy's; default 10m.
	DeployWindow time.Duration
	// CPUSaturatedAbove: a host whose cores were busy at least this is
	// saturated; default 0.95 (the guard's).
	CPUSaturatedAbove float64
	// DBSaturatedAbove: a PostgreSQL Saturation at least this is the pool
	// exhausted; default 0.9 (the guard's).
	DBSaturatedAbove float64
	// DatabasePorts are peer ports that are a database (PostgreSQL or
	// PgBouncer) besides 5432 and 6432.
	DatabasePorts []int
}

func (r Rules) withDefaults() Rules {
	if r.DeployWindow <= 0 {
		r.DeployWindow = 10 * time.Minute
	}
	if r.CPUSaturatedAbove <= 0 {
		r.CPUSaturatedAbove = 0.95
	}
	if r.DBSaturatedAbove <= 0 {
		r.DBSaturatedAbove = 0.9
	}
	return r
}

// Input is everything Judge reads: the incident's evidence window of
// timeline events (oldest first) and what the collectors showed.
type Input struct {
	App      string
	OpenedAt time.Time
	Events   []timeline.Event
	Observed Observed
	Rules    Rules
}

// AttrAppFrame is the worker_timeout event's attribute holding the
// innermost app frame of the traceback Gunicorn >= 22 logs at a timeout
// ("file.py:42 in view"); FrameFromDetail reads it from the Detail when
// the attribute is missing.
const AttrAppFrame = "app_frame"

// Judge decides an incident's verdict: the first rule of the package doc's
// list that matches. It is a pure function of in.
func Judge(in Input) Verdict {
	in.Rules = in.Rules.withDefaults()
	f := classify(in)
	v := f.judge(in)
	if fr, ok := f.frame(); ok {
		v.Decisive = append(v.Decisive, fr)
		v.Summary = strings.TrimSuffix(v.Summary, ".") + "; the last timeout's innermost app frame: " + fr.Detail + "."
	}
	return v
}

// facts are the events of an input sorted by what they show.
type facts struct {
	timeouts     []timeline.Event
	oomConfirmed []timeline.Event
	oomSuspected []timeline.Event
	lockLinks    []timeline.Event // backend links waiting on a lock
	activeLinks  []timeline.Event // backend links running a query
	stuckDB      []timeline.Event // stuck on a database peer
	stuckFutex   []timeline.Event
	stuckCPU     []timeline.Event
	stuckExt     []timeline.Event // stuck on a socket to a non-database peer
	stuckOther   []timeline.Event
	strongDeploy []timeline.Event // code changes
	weakDeploy   []timeline.Event // reloads, promotions, new masters
	frames       []timeline.Event // worker_timeout_frame: the app frame of a timeout's traceback
}

// isCodeChange reports whether e says the app's code changed: the deploy
// markers (kinds beginning with "deploy", source "deploy").
func isCodeChange(e timeline.Event) bool {
	return strings.HasPrefix(e.Kind, "deploy") || e.Source == "deploy"
}

func classify(in Input) facts {
	var f facts
	for _, e := range in.Events {
		switch {
		case e.Kind == timeline.KindWorkerTimeout:
			f.timeouts = append(f.timeouts, e)
		case e.Kind == timeline.KindWorkerTimeoutFrame:
			f.frames = append(f.frames, e)
		case e.Kind == timeline.KindOOMConfirmed:
			f.oomConfirmed = append(f.oomConfirmed, e)
		case e.Kind == timeline.KindOOMSuspected:
			f.oomSuspected = append(f.oomSuspected, e)
		case e.Kind == timeline.KindWorkerWaitsOnBackend:
			if e.Attrs["wait_event_type"] == "Lock" || e.Attrs["blocked"] == "true" {
				f.lockLinks = append(f.lockLinks, e)
			} else {
				f.activeLinks = append(f.activeLinks, e)
			}
		case e.Kind == timeline.KindWorkerStuck:
			f.addStuck(e, in.Rules.DatabasePorts)
		case isCodeChange(e):
			f.strongDeploy = append(f.strongDeploy, e)
		case e.Kind == timeline.KindMasterReload || e.Kind == timeline.KindMasterPromoted || e.Kind == timeline.KindMasterStart:
			f.weakDeploy = append(f.weakDeploy, e)
		}
	}
	return f
}

func (f *facts) addStuck(e timeline.Event, dbPorts []int) {
	switch e.Attrs["kind"] {
	case "futex":
		f.stuckFutex = append(f.stuckFutex, e)
	case "cpu":
		f.stuckCPU = append(f.stuckCPU, e)
	case "socket_read":
		// A worker still reading its own client's request calls nothing
		// out: a slow client is not an external call.
		if e.Attrs["peer_is_client"] == "true" {
			f.stuckOther = append(f.stuckOther, e)
			return
		}
		if isDatabasePeer(e, dbPorts) {
			f.stuckDB = append(f.stuckDB, e)
		} else {
			f.stuckExt = append(f.stuckExt, e)
		}
	default:
		f.stuckOther = append(f.stuckOther, e)
	}
}

// isDatabasePeer reports whether a stuck event's peer is PostgreSQL or
// PgBouncer: the sampler said so, or its port is 5432, 6432 or one of
// dbPorts.
func isDatabasePeer(e timeline.Event, dbPorts []int) bool {
	if e.Attrs["peer_is_postgres"] == "true" {
		return true
	}
	_, p, err := net.SplitHostPort(e.Attrs["peer"])
	if err != nil {
		return false
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return false
	}
	return port == 5432 || port == 6432 || slices.Contains(dbPorts, port)
}

// frame is the innermost app frame of the newest timeout that has one.
func (f facts) frame() (Evidence, bool) {
	// The traceback is logged after the WORKER TIMEOUT line, so the
	// error log gives the frame as an event of its own.
	for i := len(f.frames) - 1; i >= 0; i-- {
		if e := f.frames[i]; e.Attrs[AttrAppFrame] != "" {
			return Evidence{Time: e.Time, Seq: e.Seq, Source: e.Source, Kind: FactAppFrame, PID: e.PID,
				Detail: e.Attrs[AttrAppFrame], Decisive: true, Attrs: e.Attrs}, true
		}
	}
	for i := len(f.timeouts) - 1; i >= 0; i-- {
		e := f.timeouts[i]
		fr := e.Attrs[AttrAppFrame]
		if fr == "" {
			fr = FrameFromDetail(e.Detail)
		}
		if fr != "" {
			return Evidence{Time: e.Time, Seq: e.Seq, Source: e.Source, Kind: FactAppFrame, PID: e.PID,
				Detail: fr, Decisive: true}, true
		}
	}
	return Evidence{}, false
}

// FrameFromDetail finds an app frame written into a timeout's Detail as
// "... at <frame>" (the form the error-log facts use when they carry
// one); "" when there is none.
func FrameFromDetail(detail string) string {
	_, fr, ok := strings.Cut(detail, " at ")
	if !ok || !strings.Contains(fr, ".py:") {
		return ""
	}
	return strings.TrimSpace(fr)
}

// judge applies the rules in order.
func (f facts) judge(in Input) Verdict {
	o := in.Observed
	r := in.Rules
	switch {
	case len(f.oomConfirmed) > 0:
		return f.memoryConfirmed(in)
	case o.MemoryLimit > 0 && o.RSSMax*100 >= o.MemoryLimit*95:
		return Verdict{Cause: CauseMemoryOOM, Confidence: 0.7, Rule: 1,
			Summary: fmt.Sprintf("A worker of %s grew to %s, %.0f%% of its %s memory limit.", in.App, bytesIEC(o.RSSMax),
				100*float64(o.RSSMax)/float64(o.MemoryLimit), bytesIEC(o.MemoryLimit)),
			Advice:   "Find what grows (a cache, a leak); set max_requests so workers are recycled; more workers need more memory, not less.",
			Decisive: []Evidence{stateFact(FactMemoryNearLimit, fmt.Sprintf("worker RSS %d of limit %d bytes", o.RSSMax, o.MemoryLimit))}}
	case len(f.lockLinks) > 0:
		return f.lock(in)
	case len(f.activeLinks) > 0:
		return f.slowQuery(in)
	case o.DB.PoolWaiting > 0:
		return Verdict{Cause: CauseDatabasePoolExhausted, Confidence: 0.85, Rule: 4,
			Summary: fmt.Sprintf("The PgBouncer pool %s had %d client(s) waiting for a server connection (oldest %s): workers of %s wait for the pool, not for a query.",
				o.DB.Pool, o.DB.PoolWaiting, o.DB.PoolMaxWait, in.App),
			Advice: "Raise the pool's pool_size (within PostgreSQL's max_connections) or shorten the transactions that hold server connections; more workers would only queue on the pool.",
			Decisive: append(events(f.stuckDB), stateFact(FactPoolWaiting,
				fmt.Sprintf("%s: %d client(s) waiting, oldest %s", o.DB.Pool, o.DB.PoolWaiting, o.DB.PoolMaxWait)))}
	case o.DB.Saturation >= r.DBSaturatedAbove:
		return Verdict{Cause: CauseDatabasePoolExhausted, Confidence: 0.8, Rule: 4,
			Summary:  o.DB.SaturationDetail + ": new connections of " + in.App + " wait or fail.",
			Advice:   "Put PgBouncer in front of PostgreSQL or lower the app's connections per worker; find idle sessions holding connections; do not add workers.",
			Decisive: append(events(f.stuckDB), stateFact(FactDBSaturated, o.DB.SaturationDetail))}
	case len(f.stuckDB) > 0:
		return f.unlinkedDB(in)
	}
	if v, ok := f.stuckVerdict(in); ok {
		return v
	}
	if v, ok := f.deploy(in); ok {
		return v
	}
	if len(f.timeouts) == 0 && o.AllBusy > 0 && o.BacklogPeak > 0 {
		conf := 0.8
		if o.AllBusy < 2 {
			conf = 0.6
		}
		return Verdict{Cause: CauseCapacity, Confidence: conf, Rule: 10,
			Summary: fmt.Sprintf("Every worker of %s was busy (%d of %d samples) and up to %d client(s) waited in the listen backlog; no request reached the timeout.",
				in.App, o.AllBusy, o.Samples, o.BacklogPeak),
			Advice: fmt.Sprintf("Add workers (the app had %d) if the host has CPU and memory to spare, or make the slow requests faster; clients wait in the accept queue, which the access log does not show.", o.Workers),
			Decisive: []Evidence{
				stateFact(FactAllBusy, fmt.Sprintf("all %d workers busy in %d of %d samples", o.Workers, o.AllBusy, o.Samples)),
				stateFact(FactBacklog, fmt.Sprintf("listen backlog peaked at %d", o.BacklogPeak)),
				stateFact(FactNoTimeouts, "no WORKER TIMEOUT in the window"),
			}}
	}
	if len(f.oomSuspected) > 0 {
		return Verdict{Cause: CauseMemoryOOM, Confidence: 0.5, Rule: 11,
			Summary:  fmt.Sprintf("%d worker(s) of %s were killed by SIGKILL without a timeout; nothing confirms the OOM killer, but memory is the usual suspect.", len(f.oomSuspected), in.App),
			Advice:   "Check the kernel log (dmesg) and the workers' memory cgroup for OOM kills; set max_requests to recycle growing workers.",
			Decisive: events(f.oomSuspected)}
	}
	return f.unknown(in)
}

func (f facts) memoryConfirmed(in Input) Verdict {
	return Verdict{Cause: CauseMemoryOOM, Confidence: 0.95, Rule: 1,
		Summary:  fmt.Sprintf("The OOM killer killed %d worker(s) of %s (pid %d first).", len(f.oomConfirmed), in.App, f.oomConfirmed[0].PID),
		Advice:   "Find what grows (a cache, a leak, one huge request) and set max_requests to recycle workers; do not add workers: each needs memory the host does not have.",
		Decisive: events(f.oomConfirmed)}
}

func (f facts) lock(in Input) Verdict {
	e, blocker := rootBlocker(f.lockLinks)
	sum := fmt.Sprintf("Workers of %s wait on PostgreSQL backend %s, which waits on a lock", in.App, e.Attrs["backend_pid"])
	advice := "Find the session holding the lock (pg_blocking_pids) and end it; set lock_timeout so requests fail before the worker timeout."
	if blocker != "" {
		sum += " held by " + blocker
		var pid int
		if _, err := fmt.Sscanf(blocker, "pid %d", &pid); err == nil {
			advice = fmt.Sprintf("The query blocking others is pid %d: end it (SELECT pg_terminate_backend(%d)) and fix the code that holds the lock; set lock_timeout.", pid, pid)
			if strings.Contains(blocker, "idle in transaction") {
				advice = fmt.Sprintf("The query blocking others is pid %d, idle in transaction: end it (SELECT pg_terminate_backend(%d)), fix the code that leaves the transaction open, and set idle_in_transaction_session_timeout.", pid, pid)
			}
		}
	}
	return Verdict{Cause: CauseDatabaseLock, Confidence: 0.9, Rule: 2, Summary: sum + ".", Advice: advice,
		Decisive: events(f.lockLinks)}
}

// rootBlocker follows the lock chain to its root: later waiters queue on
// the tuple lock and name earlier waiters (pg_blocking_pids), so the
// blocker that is not itself a waiting backend of the app is the one
// holding the lock; one idle in transaction wins. Without such a blocker
// it is the first link's first blocker.
func rootBlocker(links []timeline.Event) (timeline.Event, string) {
	waiting := map[string]bool{}
	for _, l := range links {
		waiting[l.Attrs["backend_pid"]] = true
	}
	var root timeline.Event
	found := ""
	for _, l := range links {
		for i := 0; ; i++ {
			b, ok := l.Attrs[fmt.Sprintf("blocked_by_%d", i)]
			if !ok {
				break
			}
			var pid int
			if _, err := fmt.Sscanf(b, "pid %d", &pid); err != nil || waiting[strconv.Itoa(pid)] {
				continue
			}
			if found == "" || (strings.Contains(b, "idle in transaction") && !strings.Contains(found, "idle in transaction")) {
				root, found = l, b
			}
		}
	}
	if found == "" {
		return links[0], links[0].Attrs["blocked_by_0"]
	}
	return root, found
}

func (f facts) slowQuery(in Input) Verdict {
	e := f.activeLinks[0]
	sum := fmt.Sprintf("Workers of %s wait on PostgreSQL backend %s, running a query for %ss", in.App, e.Attrs["backend_pid"], e.Attrs["query_age_seconds"])
	if q := e.Attrs["query"]; q != "" {
		sum += ": " + q
	}
	return Verdict{Cause: CauseDatabaseSlowQuery, Confidence: 0.9, Rule: 3, Summary: sum + ".",
		Advice:   "Make the query faster (EXPLAIN ANALYZE it) and set statement_timeout below the worker timeout; backends of killed workers keep running unless client_connection_check_interval is set.",
		Decisive: events(f.activeLinks)}
}

func (f facts) unlinkedDB(in Input) Verdict {
	e := f.stuckDB[0]
	return Verdict{Cause: CauseDatabaseSlowQuery, Confidence: 0.6, Rule: 5,
		Summary:  fmt.Sprintf("%d stuck worker(s) of %s wait on the database at %s; no backend could be linked, so the query is not known.", len(f.stuckDB), in.App, e.Attrs["peer"]),
		Advice:   "Look for long-running queries in pg_stat_activity and set statement_timeout below the worker timeout; give the exporter a PostgreSQL target so it can link the backend.",
		Decisive: events(f.stuckDB)}
}

// stuckVerdict applies rules 6 to 8: the kind most stuck episodes showed
// (deadlock, then cpu_bound, then external_call on a tie).
func (f facts) stuckVerdict(in Input) (Verdict, bool) {
	n := max(len(f.stuckFutex), len(f.stuckCPU), len(f.stuckExt))
	if n == 0 {
		return Verdict{}, false
	}
	o := in.Observed
	switch n {
	case len(f.stuckFutex):
		return Verdict{Cause: CauseDeadlock, Confidence: 0.8, Rule: 6,
			Summary:  fmt.Sprintf("%d stuck worker(s) of %s wait on a lock inside the process (futex), with no I/O and no CPU.", len(f.stuckFutex), in.App),
			Advice:   "A lock is never released: dump the worker's threads (py-spy dump --pid N) before the timeout kills it and fix the lock order; more workers deadlock the same way.",
			Decisive: events(f.stuckFutex)}, true
	case len(f.stuckCPU):
		v := Verdict{Cause: CauseCPUBound, Confidence: 0.8, Rule: 7, Decisive: events(f.stuckCPU),
			Advice: "Profile the request (py-spy top --pid N) and move the CPU work out of the request."}
		sat := o.HostCPUKnown && o.HostCPUBusy >= in.Rules.CPUSaturatedAbove
		host := "the host's CPU was not measured"
		if o.HostCPUKnown {
			host = fmt.Sprintf("the host's cores were %.0f%% busy", 100*o.HostCPUBusy)
			v.Decisive = append(v.Decisive, stateFact(FactHostCPU, host))
		}
		if sat {
			v.HostSaturated = true
			host += ", saturated"
			v.Advice += " The host is saturated: more workers would only queue for CPU."
		}
		v.Summary = fmt.Sprintf("%d stuck worker(s) of %s are running on CPU; %s.", len(f.stuckCPU), in.App, host)
		return v, true
	default:
		return Verdict{Cause: CauseExternalCall, Confidence: 0.8, Rule: 8,
			Summary:  fmt.Sprintf("%d stuck worker(s) of %s wait on a socket to %s, which is not a known database.", len(f.stuckExt), in.App, peers(f.stuckExt)),
			Advice:   fmt.Sprintf("Set a timeout (below the worker timeout) on the client calling %s and check that service; more workers help only while it still answers.", peers(f.stuckExt)),
			Decisive: events(f.stuckExt)}, true
	}
}

// deploy applies rule 9: the timeouts began within DeployWindow after a
// deploy marker and none came before it in the window.
func (f facts) deploy(in Input) (Verdict, bool) {
	if len(f.timeouts) == 0 {
		return Verdict{}, false
	}
	first := f.timeouts[0].Time
	pick := func(ms []timeline.Event) (timeline.Event, bool) {
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if !m.Time.After(first) && first.Sub(m.Time) <= in.Rules.DeployWindow {
				return m, true
			}
		}
		return timeline.Event{}, false
	}
	m, ok := pick(f.strongDeploy)
	conf := 0.8
	if !ok {
		if m, ok = pick(f.weakDeploy); !ok {
			return Verdict{}, false
		}
		conf = 0.5
	}
	before, after := f.rates(in, m.Time)
	rates := fmt.Sprintf("timeouts %.1f/min before the marker, %.1f/min after", before, after)
	name := m.Detail
	if name == "" {
		name = m.Kind
	}
	return Verdict{Cause: CauseDeployRegression, Confidence: conf, Rule: 9,
		Summary: fmt.Sprintf("Timeouts of %s began %s after %s (%s), with no other cause explaining them.", in.App,
			first.Sub(m.Time).Round(time.Second), name, rates),
		Advice:   fmt.Sprintf("Roll back %s and compare the slow requests before and after it; more workers would run the same code.", name),
		Decisive: []Evidence{fromEvent(m, true), fromEvent(f.timeouts[0], true), stateFact(FactTimeoutRates, rates)}}, true
}

// rates are the timeouts per minute in the window before at and after it.
func (f facts) rates(in Input, at time.Time) (before, after float64) {
	var nb, na int
	start, end := at, at
	for _, e := range in.Events {
		start = minTime(start, e.Time)
		if e.Time.After(end) {
			end = e.Time
		}
	}
	for _, e := range f.timeouts {
		if e.Time.Before(at) {
			nb++
		} else {
			na++
		}
	}
	perMin := func(n int, d time.Duration) float64 {
		if d < time.Minute {
			d = time.Minute
		}
		return float64(n) / d.Minutes()
	}
	return perMin(nb, at.Sub(start)), perMin(na, end.Sub(at))
}

func (f facts) unknown(in Input) Verdict {
	sum := fmt.Sprintf("No rule explains the trouble of %s", in.App)
	var ev []Evidence
	if len(f.stuckOther) > 0 {
		kinds := map[string]int{}
		for _, e := range f.stuckOther {
			kinds[e.Attrs["kind"]]++
		}
		var ks []string
		for k, n := range kinds {
			ks = append(ks, fmt.Sprintf("%d %s", n, k))
		}
		slices.Sort(ks)
		sum += ": stuck workers were " + strings.Join(ks, ", ")
		ev = events(f.stuckOther)
	} else if len(f.timeouts) > 0 {
		sum += fmt.Sprintf(": %d timeout(s) with no stuck worker diagnosed", len(f.timeouts))
	}
	return Verdict{Cause: CauseUnknown, Confidence: 0, Rule: 12, Summary: sum + ".",
		Advice:   "Read the worker's traceback in the error log (Gunicorn >= 22 logs it at a timeout) or dump it with py-spy before the timeout kills it.",
		Decisive: ev}
}

func events(es []timeline.Event) []Evidence {
	out := make([]Evidence, len(es))
	for i, e := range es {
		out[i] = fromEvent(e, true)
	}
	return out
}

func fromEvent(e timeline.Event, decisive bool) Evidence {
	return Evidence{Time: e.Time, Seq: e.Seq, Source: e.Source, Kind: e.Kind, PID: e.PID, Detail: e.Detail,
		Decisive: decisive, Attrs: e.Attrs}
}

func stateFact(kind, detail string) Evidence {
	return Evidence{Source: SourceState, Kind: kind, Detail: detail, Decisive: true}
}

func peers(es []timeline.Event) string {
	var ps []string
	for _, e := range es {
		p := e.Attrs["peer"]
		if p == "" {
			p = "an unknown peer"
		}
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return strings.Join(ps, ", ")
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
