// Package discovery finds running Gunicorn masters with no configuration:
// it scans /proc for Gunicorn processes (with or without setproctitle
// titles), tells masters from workers and from a USR2 re-exec master, and
// works out each master's name, log files, timeout and pidfile from its
// command line, its environment (GUNICORN_CMD_ARGS), a Python config file
// and, when setproctitle has overwritten the command line, its open files.
//
// It only reads; it decides nothing and signals nothing. Everything it could
// not find is said in Master.Notes, so an operator knows which apps[] field
// to set.
//
// # Settings of a titled master
//
// setproctitle overwrites the master's argv and its environment area, so a
// titled master's own /proc files no longer say how it was started. Its
// settings (timeout, access log format, pidfile, worker class, threads) are
// then taken from the first of these that gives them; Master.TimeoutSource
// says which one gave the timeout:
//
//  1. control_socket: Gunicorn >= 25.1's control socket (`show config`),
//     the settings of the running master, when the master listens on a
//     "*.ctl" Unix socket (or the one --control-socket names) and it
//     answers. Asked of every master that has one: it is exact.
//  2. unit, env, config: the command line reconstructed in Gunicorn's own
//     order (config file < GUNICORN_CMD_ARGS < command line): the ExecStart=
//     of the systemd service whose cgroup the master is in (its unit file
//     and drop-ins on disk, see DefaultUnitDirs; "unit" also covers
//     GUNICORN_CMD_ARGS set by the unit's Environment=), GUNICORN_CMD_ARGS
//     in /proc/<pid>/environ ("env": readable for a titled master only when
//     it runs with SPT_NOENV=1, which keeps setproctitle off the
//     environment), and the Python config file that -c names or
//     ./gunicorn.conf.py ("config").
//  3. debug_log: the last "Current configuration:" dump the master wrote to
//     its error log at --log-level debug (searched in the last MiB).
//  4. assumed: Gunicorn's default of 30 s, with Master.TimeoutNote saying
//     so.
//
// For an untitled master the command line itself comes first ("argv"), in
// the same Gunicorn order; only the control socket is asked on top.
//
// A master is untitled from its exec until Gunicorn's arbiter retitles it
// (after binding its sockets, before starting workers), so a pass can read
// its real command line and a later pass see only the title. A Discoverer
// remembers what a pass read from an untitled master's command line and
// environment, per master (pid and start time), and later passes over the
// same master use it as if it were still untitled: its settings, name and
// TimeoutSource then stay the same for the master's whole life instead of
// falling back to the sources above, and its notes are those of the first
// pass (plus one saying the title came later). A master that is gone from
// /proc, or whose pid now has another start time, is forgotten.
//
// The unit files are read from disk, not over D-Bus: that needs no system
// bus access (which a sandboxed exporter usually lacks) and no new
// dependency, at the cost of following systemd's merge rules here for the
// few settings read (fragment precedence, drop-ins, ExecStart= reset,
// Environment=, EnvironmentFile=, WorkingDirectory=, %i-style specifiers).
package discovery

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// Where a setting came from (Master.TimeoutSource): a closed set, exported
// as a label value.
const (
	FromArgv          = "argv"           // the master's own command line
	FromEnv           = "env"            // GUNICORN_CMD_ARGS in /proc/<pid>/environ
	FromConfig        = "config"         // the Python config file
	FromUnit          = "unit"           // the systemd unit's ExecStart= or Environment=
	FromControlSocket = "control_socket" // Gunicorn >= 25.1's `show config`
	FromDebugLog      = "debug_log"      // the "Current configuration:" dump in the error log
	FromConfigured    = "configured"     // apps[].timeout in gunicorn-reflex's config (set by the caller)
	FromAssumed       = "assumed"        // not found: Gunicorn's default
)

// TimeoutSources lists every value of Master.TimeoutSource (and
// FromConfigured), for series initialised in advance and for docs.
func TimeoutSources() []string {
	return []string{FromArgv, FromEnv, FromConfig, FromUnit, FromControlSocket, FromDebugLog, FromConfigured, FromAssumed}
}

// Options tunes where discovery looks beyond /proc. The zero value uses
// the host's defaults.
type Options struct {
	// UnitDirs are the systemd unit directories searched, in order of
	// precedence; nil means DefaultUnitDirs.
	UnitDirs []string
	// ControlTimeout bounds each control-socket command; 0 means
	// gunicornctl.DefaultTimeout.
	ControlTimeout time.Duration
	// NoControlSocket turns off asking masters over their control socket.
	NoControlSocket bool
}

// NameSource values: where Master.Name came from.
const (
	SourceNameFlag   = "name_flag"   // --name/-n on the command line (or in GUNICORN_CMD_ARGS)
	SourceProcTitle  = "proc_title"  // the setproctitle title "gunicorn: master [NAME]"
	SourceAppModule  = "app_module"  // the APP_MODULE positional argument (Gunicorn's default proc_name)
	SourceConfigFile = "config_file" // proc_name (or wsgi_app) in the Python config file
	SourceUnknown    = "unknown"     // nothing found: Name is "gunicorn", Gunicorn's own default
)

// DefaultTimeout is Gunicorn's default worker timeout, used when the
// master's timeout cannot be found.
const DefaultTimeout = 30 * time.Second

// tailBytes is how much of the end of each candidate log file is read to
// tell an error log from an access log.
const tailBytes = 16 << 10

// Master is one running Gunicorn master.
type Master struct {
	Identity procinfo.Identity
	// Name is a label-safe app name (matching ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$):
	// from --name/-n, else the setproctitle title, else the APP_MODULE
	// argument. Two masters with the same name get a "-<discriminator>"
	// suffix (see Discover).
	Name, NameSource string
	// Setproctitle is true when the command line is a setproctitle title
	// (the original argv is gone).
	Setproctitle bool
	// ErrorLog and AccessLog are absolute paths as the master sees them, ""
	// when unknown or disabled (Notes says which). "-" (stderr/stdout) is
	// resolved to the file the master's fd 2/fd 1 points to when that is a
	// regular file.
	ErrorLog, AccessLog string
	AccessLogFormat     string        // --access-logformat; "" = Gunicorn's default
	Timeout             time.Duration // --timeout/-t; DefaultTimeout when not found; 0 = timeouts disabled
	// TimeoutSource says where Timeout came from: FromArgv, FromEnv,
	// FromConfig, FromUnit, FromControlSocket, FromDebugLog or FromAssumed.
	TimeoutSource string
	// TimeoutNote says why the timeout is assumed ("" when it was found).
	// It is not in Notes, so a caller that has the timeout from elsewhere
	// (apps[].timeout) can leave it unsaid.
	TimeoutNote string
	// Unit is the systemd service the master runs in, when its unit file
	// was found ("" otherwise).
	Unit string
	// ControlSocket is the Gunicorn >= 25.1 control socket the master
	// listens on, as the master sees the path ("" if none); it is not in
	// Listen.
	ControlSocket string
	// WorkersTarget is how many workers the master keeps, from the control
	// socket's `show stats`; 0 when unknown.
	WorkersTarget int
	Pidfile       string // --pid/-p, absolute; "" when none or unknown
	ConfigFile    string // -c/--config (or ./gunicorn.conf.py) actually found, absolute
	WorkerClass   string // -k/--worker-class ("sync", "gthread", "uvicorn.workers.UvicornWorker", ...); "" when unknown
	Workers       []int  // worker pids, sorted
	UpgradeChild  int    // pid of a not-yet-promoted USR2 master (a child "[NAME.2]"), 0 if none
	// Listen lists the listening sockets the master holds ("127.0.0.1:8000",
	// "unix:/run/app.sock"), from /proc/<pid>/net, else from --bind.
	Listen []string
	// Notes are sentences about what was not found and why, and where a
	// value came from when that is not obvious.
	Notes []string

	// AppDir is the app directory as the master was told it (--chdir, else
	// the PWD it started in, else its cwd), possibly through a release
	// symlink; "" when unknown. Deploy markers watch it.
	AppDir string

	// ConfiguredWorkers is the master's workers setting (-w, config file,
	// control socket): what a HUP resets the worker count to. 0 when it
	// was not found.
	ConfiguredWorkers int
}

// gproc is one Gunicorn process seen in the scan.
type gproc struct {
	pid, ppid  int
	startTicks uint64
	cmd        []string
	inv        invocation
	kids       []int // Gunicorn children
	role       role
}

type role int

const (
	roleUndecided role = iota
	roleMaster
	roleUpgradeChild
	roleWorker
	roleOther // a gunicorn-looking process that is none of the above (an orphaned worker)
)

// Discover scans fs for Gunicorn masters and returns them sorted by name.
//
// Rules:
//   - A Gunicorn process is one whose command line is a setproctitle title
//     "gunicorn: master|worker [NAME]", or runs the gunicorn script or
//     `python -m gunicorn` (see parseInvocation).
//   - A master is a Gunicorn process whose parent is not a Gunicorn master.
//     A titled worker is never a master; an untitled one whose parent is
//     gone holds exactly one heartbeat file and has no children, and is
//     skipped as an orphan.
//   - A child of a master is a worker or the master's UpgradeChild (a
//     USR2 re-exec master, not a separate app) as procinfo.ChildRole
//     decides: by title, shared heartbeat files, GUNICORN_PID=<parent> in
//     its environment, or children of its own.
//   - Names are made label-safe; masters sharing a name all get a
//     "-<discriminator>" suffix: their first TCP listen port, else the base
//     name of their unix socket, their pidfile (without extension) or their
//     error log's directory; never a pid. If that still collides, "-2",
//     "-3", ... in start order follow.
//
// The masters are returned even when err is non-nil: err (wrapping
// procinfo.ErrPermission) then says which masters could be inspected only in
// part; their Notes say what is missing.
//
// Discover remembers nothing between calls: a titled master's settings come
// only from what it shows now. A caller that discovers repeatedly uses a
// Discoverer.
func Discover(fs procinfo.FS) ([]Master, error) {
	return DiscoverWith(fs, Options{})
}

// DiscoverWith is Discover with options.
func DiscoverWith(fs procinfo.FS, opts Options) ([]Master, error) {
	return (&Discoverer{Options: opts}).Discover(fs)
}

// Discoverer runs discovery passes (Discover's rules) and remembers across
// them how each master was started, as the package doc says under
// "Settings of a titled master". The zero value is ready to use; a
// Discoverer is safe for concurrent use (passes run one at a time).
type Discoverer struct {
	Options Options

	mu sync.Mutex
	// started holds, per live master seen untitled, what its command line
	// and environment said then; entries of processes no longer in /proc
	// are dropped at the end of each pass, so it never outgrows the
	// masters running.
	started map[startKey]startedAs
}

// startKey names one master for its whole life: its pid and start time, as
// procinfo.Identity does (a pid alone is reused).
type startKey struct {
	pid   int
	ticks uint64
}

// startedAs is what an untitled master's own /proc files say about how it
// was started, the part setproctitle later overwrites.
type startedAs struct {
	inv     invocation        // Titled only for a master no pass saw untitled
	environ map[string]string // GUNICORN_CMD_ARGS and PWD; nil when unreadable
}

// Discover runs one pass over fs.
func (d *Discoverer) Discover(fs procinfo.FS) ([]Master, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	opts := d.Options
	if opts.UnitDirs == nil {
		opts.UnitDirs = DefaultUnitDirs
	}
	pids, err := fs.PIDs()
	if err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	procs := map[int]*gproc{}
	for _, pid := range pids {
		cmd, err := fs.Cmdline(pid)
		if err != nil {
			continue // exited, or hidden (hidepid): nothing to discover
		}
		inv, ok := parseInvocation(cmd)
		if !ok {
			continue
		}
		st, err := fs.Stat(pid)
		if err != nil || st.Zombie() {
			continue
		}
		procs[pid] = &gproc{pid: pid, ppid: st.PPID, startTicks: st.StartTicks, cmd: cmd, inv: inv}
	}
	for _, p := range procs {
		if parent, ok := procs[p.ppid]; ok {
			parent.kids = append(parent.kids, p.pid)
		}
	}
	for _, p := range procs {
		slices.Sort(p.kids)
	}
	for _, p := range procs {
		decideRole(fs, procs, p, 0)
	}

	var (
		masters []Master
		errs    []error
	)
	for _, pid := range sortedKeys(procs) {
		p := procs[pid]
		if p.role != roleMaster {
			continue
		}
		m, err := d.inspect(fs, procs, p, opts)
		if err != nil {
			if !errors.Is(err, procinfo.ErrPermission) {
				continue // it exited while we looked
			}
			errs = append(errs, err)
		}
		masters = append(masters, m)
	}
	for k := range d.started {
		if p, ok := procs[k.pid]; !ok || p.startTicks != k.ticks {
			delete(d.started, k) // exited, or the pid is another process now
		}
	}
	dedupeNames(masters)
	slices.SortFunc(masters, func(a, b Master) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return cmp.Compare(a.Identity.StartTicks, b.Identity.StartTicks)
	})
	return masters, errors.Join(errs...)
}

func sortedKeys(m map[int]*gproc) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// decideRole sets p.role from its title, its parent's role, its children
// and its heartbeat files.
func decideRole(fs procinfo.FS, procs map[int]*gproc, p *gproc, depth int) role {
	if p.role != roleUndecided {
		return p.role
	}
	if depth > 8 { // a parent chain that long is not Gunicorn's
		p.role = roleOther
		return p.role
	}
	titled := p.inv.Titled
	switch {
	case titled && p.inv.Role == "worker":
		p.role = roleWorker
		return p.role
	case titled && p.inv.Role != "master":
		p.role = roleOther
		return p.role
	}
	parent, ok := procs[p.ppid]
	parentIsMaster := false
	if ok && parent.pid != p.pid {
		pr := decideRole(fs, procs, parent, depth+1)
		parentIsMaster = pr == roleMaster || pr == roleUpgradeChild
	}
	if !parentIsMaster {
		p.role = roleMaster
		if !titled && len(p.kids) == 0 {
			// A master with no workers holds no heartbeat file; a worker
			// whose master died holds exactly one (until it notices, within
			// a second, and exits).
			if n, ok := heartbeatCount(fs, p.pid); ok && n == 1 {
				p.role = roleOther
			}
		}
		return p.role
	}
	p.role = childRole(fs, p, parent)
	return p.role
}

// childRole asks procinfo what a child of a master (or of an upgrade
// child) is: the one rule shared with the worker sampler and the receiver.
func childRole(fs procinfo.FS, p, parent *gproc) role {
	c := procinfo.Child{PID: p.pid, ParentPID: parent.pid, Cmdline: p.cmd, ParentCmdline: parent.cmd}
	c.Heartbeats, c.HeartbeatsErr = fs.HeartbeatFDs(p.pid)
	phb, err := fs.HeartbeatFDs(parent.pid)
	c.ParentHeartbeats, c.ParentHeartbeatsKnown = phb, err == nil
	switch fs.ChildRole(c) {
	case procinfo.RoleWorker:
		return roleWorker
	case procinfo.RoleUpgradeChild:
		return roleUpgradeChild
	}
	return roleOther
}

// heartbeatCount returns how many heartbeat files pid holds; ok is false
// when its fds cannot be read.
func heartbeatCount(fs procinfo.FS, pid int) (int, bool) {
	hbs, err := fs.HeartbeatFDs(pid)
	if err != nil {
		return 0, false
	}
	return len(hbs), true
}

// startedOf returns how master p (identity id) was started: what its
// command line and environment say now when it is untitled (remembered for
// later passes), else what an earlier pass read while it was (kept true),
// else its title and whatever environment setproctitle left.
func (d *Discoverer) startedOf(fs procinfo.FS, p *gproc, id procinfo.Identity) (s startedAs, kept bool) {
	key := startKey{pid: id.PID, ticks: id.StartTicks}
	if s, ok := d.started[key]; ok && p.inv.Titled {
		return s, true
	}
	s.inv = p.inv
	if e, err := fs.Environ(p.pid, "GUNICORN_CMD_ARGS", "PWD"); err == nil {
		s.environ = e
	}
	if !p.inv.Titled {
		if d.started == nil {
			d.started = map[startKey]startedAs{}
		}
		d.started[key] = s
	}
	return s, false
}

// inspect works out everything about one master.
func (d *Discoverer) inspect(fs procinfo.FS, procs map[int]*gproc, p *gproc, opts Options) (Master, error) {
	m := Master{Setproctitle: p.inv.Titled}
	var permErr error
	id, err := fs.Identify(p.pid)
	switch {
	case err == nil:
	case errors.Is(err, procinfo.ErrPermission):
		// Another user's master: build what the world-readable files give.
		permErr = err
		id, err = partialIdentity(fs, p.pid)
		if err != nil {
			return Master{}, err
		}
	default:
		return Master{}, err
	}
	m.Identity = id
	for _, k := range p.kids {
		switch procs[k].role {
		case roleWorker:
			m.Workers = append(m.Workers, k)
		case roleUpgradeChild:
			m.UpgradeChild = k
		}
	}

	in := &inspection{fs: fs, pid: p.pid, m: &m, opts: opts}
	if cwd, err := fs.Cwd(p.pid); err == nil {
		in.cwd = cwd
	} else {
		permErr = firstPermErr(permErr, err)
	}
	files, err := fs.OpenFiles(p.pid)
	if err == nil {
		in.files, in.filesOK = files, true
	} else {
		permErr = firstPermErr(permErr, err)
	}
	if permErr != nil {
		m.note("cannot read all of /proc/%d (%v): run as Gunicorn's user or root, or with CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE", p.pid, permErr)
	}
	started, kept := d.startedOf(fs, p, id)
	if kept {
		m.note("argv overwritten by setproctitle after an earlier pass read it: settings kept from that command line")
	}
	in.settings(started) // first: --control-socket tells listen which socket is not a listener
	in.listen()
	in.resolve(started.inv)
	m.AppDir = in.appDir()
	if permErr != nil {
		return m, fmt.Errorf("master %d: %w", p.pid, permErr)
	}
	return m, nil
}

// firstPermErr keeps the first permission error and ignores the rest (a process
// that exited is reported by the caller's next read).
func firstPermErr(have, err error) error {
	if have == nil && errors.Is(err, procinfo.ErrPermission) {
		return err
	}
	return have
}

func partialIdentity(fs procinfo.FS, pid int) (procinfo.Identity, error) {
	st, err := fs.Stat(pid)
	if err != nil {
		return procinfo.Identity{}, err
	}
	cmd, err := fs.Cmdline(pid)
	if err != nil {
		return procinfo.Identity{}, err
	}
	uid, err := fs.UID(pid)
	if err != nil {
		uid = -1
	}
	return procinfo.Identity{
		PID: pid, PPID: st.PPID, StartTicks: st.StartTicks, StartTime: st.StartTime,
		Cmdline: cmd, Comm: st.Comm, UID: uid,
	}, nil
}

func (m *Master) note(format string, args ...any) {
	m.Notes = append(m.Notes, fmt.Sprintf(format, args...))
}

// inspection holds what is read about one master while its fields are
// worked out.
type inspection struct {
	opts    Options
	fs      procinfo.FS
	pid     int
	m       *Master
	cwd     string
	files   []procinfo.OpenFile
	filesOK bool

	// Effective settings, with the layer each came from ("config", "env"
	// for GUNICORN_CMD_ARGS, "argv").
	val map[string]string
	src map[string]string
	// binds are all --bind values of the winning layer.
	binds []string
	// nonLiteral settings in the config file this reader cannot evaluate.
	nonLiteral map[string]bool
	config     string // absolute path of the config file read, if any
	// startCwdHint is the PWD the master inherited (or its unit's
	// WorkingDirectory=): its working directory at start if --chdir has
	// moved it since.
	startCwdHint string
	// ctlOK is true when the control socket answered `show config`.
	ctlOK bool
}

func (in *inspection) set(layer string, values map[string][]string) {
	for k, v := range values {
		if len(v) == 0 {
			// None in a config file: back to the default.
			delete(in.val, k)
			delete(in.src, k)
			continue
		}
		if k == "bind" {
			in.binds = slices.Clone(v)
		}
		in.val[k] = v[len(v)-1]
		in.src[k] = layer
	}
}

// listen fills Master.Listen from the master's sockets.
func (in *inspection) listen() {
	if !in.filesOK {
		return
	}
	ls, err := in.fs.Listeners(in.pid)
	if err != nil {
		return
	}
	for _, l := range ls {
		if l.Network == "unix" && in.isControlSocket(l.Addr) {
			in.m.ControlSocket = l.Addr
			continue
		}
		if l.Network == "unix" {
			in.m.Listen = append(in.m.Listen, "unix:"+l.Addr)
		} else {
			in.m.Listen = append(in.m.Listen, l.Addr)
		}
	}
}

// settings gathers Gunicorn settings in its own order of precedence:
// config file < GUNICORN_CMD_ARGS < command line (gunicorn/app/base.py
// load_config). For a titled master the command line and GUNICORN_CMD_ARGS
// come from its systemd unit when there is one.
func (in *inspection) settings(started startedAs) {
	inv := started.inv
	in.val, in.src, in.nonLiteral = map[string]string{}, map[string]string{}, map[string]bool{}
	var argv, env options
	argvLayer, envLayer := FromArgv, FromEnv
	if inv.Titled {
		if u, ok := in.unit(); ok {
			argv, argvLayer = u.argv, FromUnit
			if u.env.values != nil {
				env, envLayer = u.env, FromUnit
			}
			if u.workingDir != "" {
				in.startCwdHint = u.workingDir
			}
		}
	} else {
		argv = parseOptions(inv.Args)
	}
	// Titled, the environment is usually blank (setproctitle reuses its
	// area) unless the master runs with SPT_NOENV=1; what it holds is the
	// process's own, so it wins over the unit's Environment=.
	if e := started.environ; e != nil {
		if s := e["GUNICORN_CMD_ARGS"]; s != "" {
			env, envLayer = parseOptions(splitShell(s)), FromEnv
			in.m.note("GUNICORN_CMD_ARGS is set: %q", s)
		}
		if e["PWD"] != "" {
			in.startCwdHint = e["PWD"]
		}
	}
	in.readConfig(argv, env, inv.Titled && argvLayer != FromUnit)
	if env.values != nil {
		in.set(envLayer, env.values)
	}
	if argv.values != nil {
		in.set(argvLayer, argv.values)
	}
	if len(argv.positional) > 0 {
		in.val["app_module"], in.src["app_module"] = argv.positional[0], argvLayer
	}
}
