package workerstate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// ErrNoOOMEvidence means nothing that could confirm or refute an OOM kill
// was readable: no oom_kill counter with a baseline from before the death,
// and no kernel log (it wraps procinfo.ErrPermission when that was the
// reason).
var ErrNoOOMEvidence = errors.New("no readable OOM evidence")

// DefaultKmsgPath is the kernel log device.
const DefaultKmsgPath = "/dev/kmsg"

// Bounds of what an OOMWatcher keeps and reads.
const (
	oomHistory     = 16      // counter value changes kept per counter file
	oomClaims      = 64      // claimed kill numbers kept per counter file
	maxKmsgBytes   = 8 << 20 // kernel log read per confirmation
	kmsgSlack      = 5 * time.Second
	defaultOOMKeep = 1024
)

// hostCounter is the key of the host-wide oom_kill counter (/proc/vmstat).
const hostCounter = "vmstat"

// OOMOptions configures an OOMWatcher. The zero value is valid.
type OOMOptions struct {
	// Now is the wall clock; default time.Now.
	Now func() time.Time
	// KmsgPath is the kernel log device; default /dev/kmsg. When it cannot
	// be opened, syslog(2) (what dmesg uses) is tried. "-" disables the
	// kernel log.
	KmsgPath string
	// SinceBoot returns the current value of the clock kernel log records
	// are stamped with; default CLOCK_MONOTONIC.
	SinceBoot func() (time.Duration, error)
	// HostRoot is prepended to the cgroup mount points found in
	// <proc>/self/mountinfo (tests point it at a saved tree); default "".
	HostRoot string
	// MaxTracked bounds the processes and counter files remembered; default
	// 1024 each.
	MaxTracked int
}

// OOMWatcher remembers the oom_kill counters of the memory cgroups of the
// processes it observes, so that when a worker dies by SIGKILL the counter's
// rise since before the death can be computed. Safe for concurrent use.
type OOMWatcher struct {
	fs        procinfo.FS
	now       func() time.Time
	kmsgPath  string
	sinceBoot func() (time.Duration, error)
	hostRoot  string
	maxKeep   int
	klogctl   func(buf []byte) (int, error)
	// syslogFallback: the kernel log path is the default, so syslog(2) is
	// tried when it cannot be read.
	syslogFallback bool

	mu       sync.Mutex
	mounts   *cgroupMounts
	procs    map[int]procCgroups // by pid: the last process seen with it
	counters map[string]*counterHist
}

type procCgroups struct {
	start    uint64
	files    []string // counter files, e.g. /sys/fs/cgroup/app/memory.events
	cgroups  []string // as /proc/<pid>/cgroup shows them, for evidence
	lastSeen time.Time
}

// counterHist is the history of one oom_kill counter: its value changes
// (segments of equal value), and the kill numbers (counter values) already
// attributed to a confirmed death.
type counterHist struct {
	segs     []counterSeg
	claimed  []uint64
	lastSeen time.Time
}

type counterSeg struct {
	value         uint64
	first, latest time.Time
}

// NewOOMWatcher returns a watcher reading fs.
func NewOOMWatcher(fs procinfo.FS, opts OOMOptions) *OOMWatcher {
	w := &OOMWatcher{
		fs:        fs,
		now:       opts.Now,
		kmsgPath:  opts.KmsgPath,
		sinceBoot: opts.SinceBoot,
		hostRoot:  opts.HostRoot,
		maxKeep:   opts.MaxTracked,
		klogctl: func(buf []byte) (int, error) {
			return unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
		},
		procs:    map[int]procCgroups{},
		counters: map[string]*counterHist{},
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.kmsgPath == "" || w.kmsgPath == DefaultKmsgPath {
		w.kmsgPath, w.syslogFallback = DefaultKmsgPath, true
	}
	if w.sinceBoot == nil {
		w.sinceBoot = monotonicNow
	}
	if w.maxKeep <= 0 {
		w.maxKeep = defaultOOMKeep
	}
	return w
}

func monotonicNow() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}

// Observe records the memory cgroups of pids and the current oom_kill
// counters of those cgroups (and the host's). Processes that cannot be read
// are skipped.
func (w *OOMWatcher) Observe(pids ...int) {
	now := w.now()
	type seen struct {
		pid int
		pc  procCgroups
	}
	var got []seen
	files := map[string]bool{hostCounter: true}
	for _, pid := range pids {
		pc, err := w.cgroupsOf(pid)
		if err != nil {
			continue
		}
		pc.lastSeen = now
		got = append(got, seen{pid, pc})
		for _, f := range pc.files {
			files[f] = true
		}
	}
	values := map[string]uint64{}
	for f := range files {
		if v, err := w.readCounter(f); err == nil {
			values[f] = v
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range got {
		if _, ok := w.procs[s.pid]; !ok && len(w.procs) >= w.maxKeep {
			w.evictOldestProc()
		}
		w.procs[s.pid] = s.pc
	}
	for f, v := range values {
		w.record(f, v, now)
	}
}

// record adds an observation of counter file f; w.mu must be held.
func (w *OOMWatcher) record(f string, v uint64, now time.Time) {
	h, ok := w.counters[f]
	if !ok {
		if len(w.counters) >= w.maxKeep {
			w.evictOldestCounter()
		}
		h = &counterHist{}
		w.counters[f] = h
	}
	h.lastSeen = now
	if n := len(h.segs); n > 0 && h.segs[n-1].value == v {
		h.segs[n-1].latest = now
		return
	}
	h.segs = append(h.segs, counterSeg{value: v, first: now, latest: now})
	if len(h.segs) > oomHistory {
		h.segs = h.segs[len(h.segs)-oomHistory:]
	}
}

// baseline returns the counter's value at t: the value of the last segment
// first observed at or before t. ok is false without such an observation.
func (h *counterHist) baseline(t time.Time) (uint64, time.Time, bool) {
	for i := len(h.segs) - 1; i >= 0; i-- {
		if !h.segs[i].first.After(t) {
			at := h.segs[i].latest
			if at.After(t) {
				at = t // the value held through t
			}
			return h.segs[i].value, at, true
		}
	}
	return 0, time.Time{}, false
}

// claim attributes the first unclaimed kill number in (base, cur] and
// reports whether there was one.
func (h *counterHist) claim(base, cur uint64) (uint64, bool) {
	for n := base + 1; n <= cur && n > base; n++ {
		if !slices.Contains(h.claimed, n) {
			h.claimed = append(h.claimed, n)
			if len(h.claimed) > oomClaims {
				h.claimed = h.claimed[len(h.claimed)-oomClaims:]
			}
			return n, true
		}
	}
	return 0, false
}

func (w *OOMWatcher) evictOldestProc() {
	oldest, at := -1, time.Time{}
	for pid, p := range w.procs {
		if oldest < 0 || p.lastSeen.Before(at) {
			oldest, at = pid, p.lastSeen
		}
	}
	delete(w.procs, oldest)
}

func (w *OOMWatcher) evictOldestCounter() {
	oldest, at := "", time.Time{}
	for f, h := range w.counters {
		if oldest == "" || h.lastSeen.Before(at) {
			oldest, at = f, h.lastSeen
		}
	}
	delete(w.counters, oldest)
}

// OOMQuery names a dead worker. At least one of MasterPID, WorkerPID and
// Cgroup must be set.
type OOMQuery struct {
	// MasterPID is the dead worker's master: its memory cgroup is read.
	MasterPID int
	// WorkerPID is the dead worker: its cgroup as last observed (see
	// Observe) is read, and the kernel log is searched for its kill. The
	// kernel logs pids of the initial pid namespace, so the match needs an
	// exporter in the host's pid namespace.
	WorkerPID int
	// Cgroup is a cgroup path as /proc/<pid>/cgroup shows it
	// ("/system.slice/app.service"), or an absolute directory of a mounted
	// cgroup hierarchy.
	Cgroup string
	// Since is a time at or before the death (e.g. when the worker was last
	// seen alive). Counter values observed after it do not serve as a
	// baseline, and kernel log lines before it (minus a few seconds of
	// clock slack) are ignored.
	Since time.Time
}

// ConfirmOOM says whether the worker q names was killed by the OOM killer:
// confirmed when the kernel log has "Killed process <WorkerPID>" after
// Since, or an oom_kill counter of the worker's or master's memory cgroup
// rose after its last observation at or before Since (each counted kill
// confirms one death only). The host-wide counter alone never confirms
// (another process may have been killed), but is reported. evidence says
// what was read. err is ErrNoOOMEvidence when nothing could be read.
func (w *OOMWatcher) ConfirmOOM(q OOMQuery) (confirmed bool, evidence string, err error) {
	var j oomJudgement
	files := w.counterFiles(q, &j)
	w.judgeCounters(files, q.Since, &j)
	w.judgeKernelLog(q, &j)
	return j.verdict()
}

// oomJudgement is what ConfirmOOM has found so far.
type oomJudgement struct {
	ev []string // evidence, in the order read
	// usable is true once some evidence could have refuted the OOM kill:
	// a cgroup counter with a baseline, or a readable kernel log.
	usable bool
	// hit is true once a cgroup counter or the kernel log confirmed it.
	hit bool
	// permErr is the kernel log's refusal, if any.
	permErr error
}

func (j *oomJudgement) note(format string, args ...any) {
	j.ev = append(j.ev, fmt.Sprintf(format, args...))
}

// verdict turns the judgement into ConfirmOOM's results.
func (j *oomJudgement) verdict() (bool, string, error) {
	evidence := strings.Join(j.ev, "; ")
	switch {
	case j.hit:
		return true, evidence, nil
	case j.usable:
		return false, evidence, nil
	case j.permErr != nil:
		return false, evidence, fmt.Errorf("confirm oom: %w: %w", ErrNoOOMEvidence, j.permErr)
	}
	return false, evidence, fmt.Errorf("confirm oom: %w", ErrNoOOMEvidence)
}

// counterFiles collects the oom_kill counter files of q's cgroups (the
// worker's as last observed, the master's now or as last observed, and
// q.Cgroup), each mapped to its cgroup for the evidence.
func (w *OOMWatcher) counterFiles(q OOMQuery, j *oomJudgement) map[string]string {
	files := map[string]string{}
	add := func(pc procCgroups) {
		for i, f := range pc.files {
			files[f] = pc.cgroups[i]
		}
	}
	if q.WorkerPID > 0 {
		w.mu.Lock()
		pc, ok := w.procs[q.WorkerPID]
		w.mu.Unlock()
		if ok {
			add(pc)
		}
	}
	if q.MasterPID > 0 {
		pc, err := w.cgroupsOf(q.MasterPID)
		if err != nil {
			w.mu.Lock()
			pc = w.procs[q.MasterPID]
			w.mu.Unlock()
		}
		add(pc)
	}
	if q.Cgroup != "" {
		fs, err := w.cgroupFiles(q.Cgroup)
		if err != nil {
			j.note("cgroup %s: %v", q.Cgroup, err)
		}
		for _, f := range fs {
			files[f] = q.Cgroup
		}
	}
	return files
}

// judgeCounters reads each counter file (sorted, then the host's) and
// compares it with its last observation at or before since. A cgroup
// counter that rose confirms one death: each kill number is claimed once.
// The host-wide counter is reported but never confirms.
func (w *OOMWatcher) judgeCounters(files map[string]string, since time.Time, j *oomJudgement) {
	keys := make([]string, 0, len(files)+1)
	for f := range files {
		keys = append(keys, f)
	}
	slices.Sort(keys)
	keys = append(keys, hostCounter)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range keys {
		name := "host /proc/vmstat"
		if f != hostCounter {
			name = fmt.Sprintf("cgroup %s (%s)", files[f], f)
		}
		cur, err := w.readCounter(f)
		if err != nil {
			j.note("%s: %v", name, err)
			continue
		}
		w.judgeCounter(f, name, cur, since, j)
	}
}

// judgeCounter judges one counter's current value cur; w.mu must be held.
func (w *OOMWatcher) judgeCounter(f, name string, cur uint64, since time.Time, j *oomJudgement) {
	h := w.counters[f]
	if h == nil {
		w.record(f, cur, w.now())
		j.note("%s oom_kill=%d, no earlier observation", name, cur)
		return
	}
	base, at, ok := h.baseline(since)
	if !ok {
		j.note("%s oom_kill=%d, not observed before %s", name, cur, since.Format(time.RFC3339))
		return
	}
	if f != hostCounter {
		j.usable = true
	}
	when := at.Format(time.RFC3339)
	switch {
	case cur <= base:
		j.note("%s oom_kill=%d unchanged since %s", name, cur, when)
	case f == hostCounter:
		j.note("%s oom_kill %d→%d since %s (some process on the host)", name, base, cur, when)
	default:
		if n, ok := h.claim(base, cur); ok {
			j.hit = true
			j.note("%s oom_kill %d→%d since %s (kill #%d)", name, base, cur, when, n)
		} else {
			j.note("%s oom_kill %d→%d since %s, every kill already attributed to another death", name, base, cur, when)
		}
	}
	w.record(f, cur, w.now())
}

// judgeKernelLog searches the kernel log for "Killed process <WorkerPID>"
// since q.Since.
func (w *OOMWatcher) judgeKernelLog(q OOMQuery, j *oomJudgement) {
	if q.WorkerPID <= 0 || w.kmsgPath == "-" {
		return
	}
	lines, src, err := w.kernelLog()
	if err != nil {
		if errors.Is(err, procinfo.ErrPermission) {
			j.permErr = err
		}
		j.note("kernel log: %v", err)
		return
	}
	j.usable = true
	if l, ok := w.findKill(lines, q.WorkerPID, q.Since); ok {
		j.hit = true
		j.note("%s: %s", src, l)
		return
	}
	j.note("%s: no \"Killed process %d\" since %s", src, q.WorkerPID, q.Since.Format(time.RFC3339))
}

// cgroupsOf reads /proc/<pid>/cgroup and maps it to oom_kill counter files.
func (w *OOMWatcher) cgroupsOf(pid int) (procCgroups, error) {
	st, err := w.fs.Stat(pid)
	if err != nil {
		return procCgroups{}, err
	}
	b, err := w.fs.ReadFile(pid, "cgroup")
	if err != nil {
		return procCgroups{}, err
	}
	m, err := w.loadMounts()
	if err != nil {
		return procCgroups{}, err
	}
	pc := procCgroups{start: st.StartTicks}
	for _, l := range parseProcCgroup(b) {
		for _, f := range m.counterFiles(l) {
			pc.files = append(pc.files, f)
			pc.cgroups = append(pc.cgroups, l.path)
		}
	}
	return pc, nil
}

// cgroupFiles maps a cgroup path (or a directory under a cgroup mount) to
// its oom_kill counter files.
func (w *OOMWatcher) cgroupFiles(cg string) ([]string, error) {
	for _, name := range []string{"memory.events", "memory.oom_control"} {
		if st, err := os.Stat(filepath.Join(cg, name)); err == nil && st.Mode().IsRegular() {
			return []string{filepath.Join(cg, name)}, nil
		}
	}
	m, err := w.loadMounts()
	if err != nil {
		return nil, err
	}
	files := m.counterFiles(cgroupLine{v2: true, path: cg})
	files = append(files, m.counterFiles(cgroupLine{controllers: []string{"memory"}, path: cg})...)
	if len(files) == 0 {
		return nil, fmt.Errorf("no memory.events or memory.oom_control for %s", cg)
	}
	return files, nil
}

func (w *OOMWatcher) loadMounts() (*cgroupMounts, error) {
	w.mu.Lock()
	m := w.mounts
	w.mu.Unlock()
	if m != nil {
		return m, nil
	}
	b, err := w.fs.ReadRootFile("self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup mounts: %w", err)
	}
	m = parseCgroupMounts(b, w.hostRoot)
	w.mu.Lock()
	w.mounts = m
	w.mu.Unlock()
	return m, nil
}

// readCounter reads an oom_kill counter: memory.events (v2),
// memory.oom_control (v1), or the host's /proc/vmstat.
func (w *OOMWatcher) readCounter(f string) (uint64, error) {
	p := f
	var (
		b   []byte
		err error
	)
	if f == hostCounter {
		p = filepath.Join(w.fs.Root(), "vmstat")
		b, err = w.fs.ReadRootFile("vmstat")
	} else {
		b, err = os.ReadFile(p)
		err = procinfo.Classify(err)
	}
	if err != nil {
		return 0, err
	}
	v, ok := oomKillValue(b)
	if !ok {
		return 0, fmt.Errorf("%s has no oom_kill line", p)
	}
	return v, nil
}

// oomKillValue finds the "oom_kill N" line of memory.events,
// memory.oom_control or /proc/vmstat.
func oomKillValue(b []byte) (uint64, bool) {
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "oom_kill" {
			v, err := strconv.ParseUint(f[1], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// cgroupLine is one line of /proc/<pid>/cgroup.
type cgroupLine struct {
	v2          bool // "0::<path>"
	controllers []string
	path        string
}

// parseProcCgroup parses /proc/<pid>/cgroup: "hierarchy-ID:controllers:path".
func parseProcCgroup(b []byte) []cgroupLine {
	var out []cgroupLine
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\n")
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctl, p, ok := strings.Cut(rest, ":")
		if !ok || !strings.HasPrefix(p, "/") {
			continue
		}
		l := cgroupLine{path: p}
		if id == "0" && ctl == "" {
			l.v2 = true
		} else if ctl != "" {
			l.controllers = strings.Split(ctl, ",")
		}
		out = append(out, l)
	}
	return out
}

// cgroupMounts are the cgroup hierarchies mounted in our mount namespace.
type cgroupMounts struct {
	v2     []cgroupMount
	memory []cgroupMount // v1 hierarchies with the memory controller
}

type cgroupMount struct {
	root, point string // the cgroup path mounted, and where
}

// parseCgroupMounts reads mountinfo lines: "ID PARENT MAJ:MIN ROOT POINT
// OPTS [TAGS...] - FSTYPE SOURCE SUPEROPTS".
func parseCgroupMounts(b []byte, hostRoot string) *cgroupMounts {
	m := &cgroupMounts{}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 5 || sep+3 > len(f) {
			continue
		}
		mnt := cgroupMount{root: unescapeMount(f[3]), point: filepath.Join(hostRoot, unescapeMount(f[4]))}
		switch f[sep+1] {
		case "cgroup2":
			m.v2 = append(m.v2, mnt)
		case "cgroup":
			if len(f) > sep+3 && slices.Contains(strings.Split(f[sep+3], ","), "memory") {
				m.memory = append(m.memory, mnt)
			}
		}
	}
	return m
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// counterFiles maps one /proc/<pid>/cgroup line to the oom_kill counter
// files that exist for it.
func (m *cgroupMounts) counterFiles(l cgroupLine) []string {
	var mounts []cgroupMount
	name := ""
	switch {
	case l.v2:
		mounts, name = m.v2, "memory.events"
	case slices.Contains(l.controllers, "memory"):
		mounts, name = m.memory, "memory.oom_control"
	default:
		return nil
	}
	for _, mnt := range mounts {
		rel, ok := underRoot(l.path, mnt.root)
		if !ok {
			continue
		}
		f := filepath.Join(mnt.point, rel, name)
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			return []string{f}
		}
	}
	return nil
}

// underRoot returns p relative to a mount's root, if p lies under it.
func underRoot(p, root string) (string, bool) {
	p, root = path.Clean(p), path.Clean(root)
	if root == "/" {
		return p, true
	}
	if p == root {
		return "/", true
	}
	rel, ok := strings.CutPrefix(p, root+"/")
	return "/" + rel, ok
}

// kmsgRecord is one kernel log record.
type kmsgRecord struct {
	sinceBoot time.Duration // -1 when unknown
	msg       string
}

// kernelLog reads the kernel log: /dev/kmsg (every record still in the
// ring buffer), else syslog(2) READ_ALL. src names what was read.
func (w *OOMWatcher) kernelLog() ([]kmsgRecord, string, error) {
	b, err := readKmsg(w.kmsgPath)
	if err == nil {
		return parseKmsg(b), w.kmsgPath, nil
	}
	if !w.syslogFallback {
		return nil, "", err
	}
	buf := make([]byte, 1<<20)
	n, kerr := w.klogctl(buf)
	if kerr != nil {
		return nil, "", fmt.Errorf("%w; syslog(2): %w", err, procinfo.Classify(kerr))
	}
	return parseSyslog(buf[:max(n, 0)]), "syslog(2)", nil
}

// readKmsg reads every record available from a /dev/kmsg-like file without
// blocking. /dev/kmsg returns one record per read (EPIPE when the reader
// fell behind the ring buffer, EAGAIN at the end); a regular file (tests)
// returns chunks until EOF. Raw syscalls, not os.File: the runtime poller
// would turn EAGAIN into a wait for the next kernel message.
func readKmsg(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, procinfo.Classify(&os.PathError{Op: "open", Path: p, Err: err}))
	}
	defer unix.Close(fd)
	var out bytes.Buffer
	buf := make([]byte, 16<<10)
	for out.Len() < maxKmsgBytes {
		n, err := unix.Read(fd, buf)
		switch {
		case err == nil && n == 0:
			return out.Bytes(), nil // EOF of a regular file
		case err == nil:
			out.Write(buf[:n])
		case errors.Is(err, unix.EPIPE), errors.Is(err, unix.EINTR):
			continue // records overwritten meanwhile: go on with the next
		case errors.Is(err, unix.EAGAIN):
			return out.Bytes(), nil
		default:
			return nil, fmt.Errorf("read %s: %w", p, procinfo.Classify(&os.PathError{Op: "read", Path: p, Err: err}))
		}
	}
	return out.Bytes(), nil
}

// parseKmsg parses /dev/kmsg records: "PRI,SEQ,USEC,FLAGS[,...];MESSAGE"
// followed by " KEY=VALUE" continuation lines (skipped).
func parseKmsg(b []byte) []kmsgRecord {
	var out []kmsgRecord
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\n")
		if line == "" || line[0] == ' ' {
			continue
		}
		head, msg, ok := strings.Cut(line, ";")
		if !ok {
			continue
		}
		r := kmsgRecord{sinceBoot: -1, msg: msg}
		if f := strings.Split(head, ","); len(f) >= 3 {
			if us, err := strconv.ParseInt(f[2], 10, 64); err == nil {
				r.sinceBoot = time.Duration(us) * time.Microsecond
			}
		}
		out = append(out, r)
	}
	return out
}

// parseSyslog parses syslog(2) output: "<PRI>[   SECONDS.MICROS] MESSAGE".
func parseSyslog(b []byte) []kmsgRecord {
	var out []kmsgRecord
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "<") {
			if i := strings.IndexByte(line, '>'); i > 0 {
				line = line[i+1:]
			}
		}
		r := kmsgRecord{sinceBoot: -1, msg: line}
		if strings.HasPrefix(line, "[") {
			if i := strings.IndexByte(line, ']'); i > 0 {
				if sec, err := strconv.ParseFloat(strings.TrimSpace(line[1:i]), 64); err == nil {
					r.sinceBoot = time.Duration(sec * float64(time.Second))
				}
				r.msg = strings.TrimSpace(line[i+1:])
			}
		}
		out = append(out, r)
	}
	return out
}

// killRE matches the OOM killer's lines naming the victim: "Out of memory:
// Killed process N (comm) ...", "Memory cgroup out of memory: Killed
// process N ...", older kernels' "Kill process N ...", and the
// "oom-kill:constraint=...,task=comm,pid=N,uid=U" summary.
var killRE = regexp.MustCompile(`(?:\bKill(?:ed)? process (\d+) )|(?:^oom-kill:.*[:,]pid=(\d+)(?:,|$))`)

// oomKilledPID returns the pid an OOM-killer log line names.
func oomKilledPID(msg string) (int, bool) {
	m := killRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, false
	}
	s := m[1]
	if s == "" {
		s = m[2]
	}
	pid, err := strconv.Atoi(s)
	return pid, err == nil
}

// findKill returns the last kernel log line reporting pid's OOM kill at or
// after since (less kmsgSlack); records whose time cannot be placed count.
func (w *OOMWatcher) findKill(recs []kmsgRecord, pid int, since time.Time) (string, bool) {
	now := w.now()
	up, upErr := w.sinceBoot()
	var hit string
	for _, r := range recs {
		p, ok := oomKilledPID(r.msg)
		if !ok || p != pid {
			continue
		}
		if upErr == nil && r.sinceBoot >= 0 && !since.IsZero() {
			at := now.Add(r.sinceBoot - up)
			if at.Before(since.Add(-kmsgSlack)) {
				continue // an earlier process with the same pid
			}
		}
		hit = r.msg
	}
	return hit, hit != ""
}
