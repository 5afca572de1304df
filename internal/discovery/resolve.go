package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicornctl"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// maxConfigBytes bounds how much of a config file is read.
const maxConfigBytes = 1 << 20

// startDirs are the directories a relative -c path may be relative to.
// Gunicorn resolves it against its working directory at start: that is
// /proc/<pid>/cwd unless --chdir (or chdir in the config) moved it since,
// and then the PWD the master inherited may name it. PWD is only a guess
// (launchers often leave it stale), so it comes second.
func (in *inspection) startDirs() []string {
	var dirs []string
	if in.cwd != "" {
		dirs = append(dirs, in.cwd)
	}
	if path.IsAbs(in.startCwdHint) && in.startCwdHint != in.cwd {
		dirs = append(dirs, in.startCwdHint)
	}
	return dirs
}

// readConfig finds and reads the Python config file: -c/--config from the
// command line or GUNICORN_CMD_ARGS, else ./gunicorn.conf.py (Gunicorn
// 20.0+'s default). For a titled master the command line is gone, so only
// the default file can be found.
func (in *inspection) readConfig(argv, env options, titled bool) {
	loc, ok := argv.last("config")
	if !ok {
		loc, ok = env.last("config")
	}
	var tries []string
	if ok {
		if mod, isMod := strings.CutPrefix(loc, "python:"); isMod {
			in.m.note("config is the Python module %q, which is not read: set the apps[] fields it configures", mod)
			return
		}
		loc = strings.TrimPrefix(loc, "file:")
		if path.IsAbs(loc) {
			tries = []string{path.Clean(loc)}
		} else {
			for _, d := range in.startDirs() {
				tries = append(tries, path.Join(d, loc))
			}
		}
	} else if in.cwd != "" {
		// Not PWD: a stale one would name some other project's file.
		tries = []string{path.Join(in.cwd, "gunicorn.conf.py")}
	}
	var (
		src     []byte
		lastErr error
	)
	for _, p := range tries {
		b, err := readLimited(in.fs.RootPath(in.pid, p), maxConfigBytes)
		if err == nil {
			in.config, src = p, b
			break
		}
		lastErr = err
	}
	if in.config == "" {
		if ok {
			in.m.note("config file %q could not be read (%v): set the apps[] fields it configures", loc, lastErr)
		}
		return
	}
	in.m.ConfigFile = in.config
	if !ok {
		if titled {
			in.m.note("read %s (Gunicorn's default config file); the command line is overwritten by setproctitle, so options given there are not visible", in.config)
		} else {
			in.m.note("read %s (Gunicorn's default config file, loaded by Gunicorn 20.0+)", in.config)
		}
	}
	c := parsePyConfig(string(src))
	in.set("config", c.values)
	for k := range c.nonLiteral {
		in.nonLiteral[k] = true
	}
}

func readLimited(p string, n int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	return io.ReadAll(io.LimitReader(f, n))
}

// resolve turns the gathered settings into Master fields.
func (in *inspection) resolve(inv invocation) {
	m := in.m
	in.resolveName(inv)
	in.askControlSocket()

	m.WorkerClass = workerClass(in.val["worker_class"])
	if m.WorkerClass == "" && !inv.Titled {
		m.WorkerClass = "sync" // Gunicorn's default
	}
	if len(m.Listen) == 0 {
		m.Listen = append(m.Listen, in.binds...)
	}
	in.resolveLogs(inv)
	if inv.Titled && !in.ctlOK {
		if _, found := in.val["timeout"]; !found && !in.nonLiteral["timeout"] {
			in.readDebugDump()
		}
	}
	if in.src["worker_class"] == FromDebugLog {
		m.WorkerClass = workerClass(in.val["worker_class"])
	}
	if m.WorkerClass == "sync" {
		if n, err := strconv.Atoi(in.val["threads"]); err == nil && n > 1 {
			m.WorkerClass = "gthread" // Gunicorn switches sync to gthread when threads > 1
		}
	}

	in.resolveTimeout(inv)
	if n, err := strconv.Atoi(in.val["workers"]); err == nil && n > 0 {
		m.ConfiguredWorkers = n
	}

	m.AccessLogFormat = in.val["access_log_format"]
	if m.AccessLogFormat == "" && inv.Titled && in.src["access_log_format"] == "" {
		m.note("access log format not visible (argv overwritten by setproctitle): assumed Gunicorn's default; set apps[].access_log_format if it differs")
	}

	// No note when the pidfile is not visible: most apps use none, and
	// discovery needs none (the master is found in /proc); it only breaks
	// ties between masters of the same name.
	if v := in.val["pidfile"]; v != "" {
		m.Pidfile = in.abs(v)
	}
}

// resolveTimeout sets Timeout and TimeoutSource (see the package doc for the
// order of sources).
func (in *inspection) resolveTimeout(inv invocation) {
	m := in.m
	m.Timeout, m.TimeoutSource = DefaultTimeout, FromAssumed
	switch v, ok := in.val["timeout"]; {
	case ok:
		if d, good := parseSeconds(v); good {
			m.Timeout, m.TimeoutSource = d, in.src["timeout"]
		} else {
			m.TimeoutNote = fmt.Sprintf("timeout %q (from %s) is not a number: assumed Gunicorn's default 30s; set apps[].timeout", v, in.src["timeout"])
		}
	case in.nonLiteral["timeout"]:
		m.TimeoutNote = fmt.Sprintf("timeout in %s is not a literal: assumed Gunicorn's default 30s; set apps[].timeout", in.config)
	case inv.Titled:
		m.TimeoutNote = "timeout not visible (argv overwritten by setproctitle, and no systemd unit, control socket, GUNICORN_CMD_ARGS, config file or debug-level configuration dump gives it): assumed Gunicorn's default 30s; set apps[].timeout for this app by name, or run it with SPT_NOENV=1"
	default:
		m.TimeoutSource = FromArgv // not given: Gunicorn's default is what runs
	}
}

// isControlSocket reports whether a Unix socket the master listens on is
// its control socket: the path --control-socket gave, else a "*.ctl" name
// (Gunicorn's default is gunicorn.ctl). A bind socket is never asked: it
// would log the bytes sent as an invalid request.
func (in *inspection) isControlSocket(addr string) bool {
	if v := in.val["control_socket"]; v != "" {
		return path.Clean(addr) == in.absQuiet(v)
	}
	return strings.HasSuffix(path.Base(addr), ".ctl")
}

func (in *inspection) absQuiet(p string) string {
	if path.IsAbs(p) || in.cwd == "" {
		return path.Clean(p)
	}
	return path.Join(in.cwd, p)
}

// askControlSocket asks a Gunicorn >= 25.1 master for its settings and
// worker target; any failure leaves the other sources in charge.
func (in *inspection) askControlSocket() {
	m := in.m
	if m.ControlSocket == "" || in.opts.NoControlSocket {
		return
	}
	p := in.fs.RootPath(in.pid, m.ControlSocket)
	if len(p) >= 108 { // sun_path: go through our own view of the path instead
		p = m.ControlSocket
	}
	c := &gunicornctl.Client{Path: p, Timeout: in.opts.ControlTimeout}
	ctx := context.Background()
	cfg, err := c.ShowConfig(ctx)
	if err != nil {
		m.note("control socket %s did not answer (%v): settings taken from elsewhere", m.ControlSocket, err)
		return
	}
	in.ctlOK = true
	vals := map[string][]string{}
	if cfg.Timeout != nil {
		vals["timeout"] = []string{strconv.FormatFloat(*cfg.Timeout, 'f', -1, 64)}
	}
	if cfg.Workers != nil {
		vals["workers"] = []string{strconv.Itoa(*cfg.Workers)}
	}
	if cfg.Threads != nil {
		vals["threads"] = []string{strconv.Itoa(*cfg.Threads)}
	}
	if cfg.WorkerClass != "" {
		vals["worker_class"] = []string{cfg.WorkerClass}
	}
	if raw, ok := cfg.Raw["pidfile"]; ok {
		vals["pidfile"] = nil // null: no pidfile
		if cfg.Pidfile != "" || string(raw) != "null" {
			vals["pidfile"] = []string{cfg.Pidfile}
		}
	}
	in.set(FromControlSocket, vals)
	if st, err := c.ShowStats(ctx); err == nil {
		m.WorkersTarget = st.WorkersTarget
	}
}

// readDebugDump takes the settings from the master's last "Current
// configuration:" dump in its error log (--log-level debug).
func (in *inspection) readDebugDump() {
	if !in.filesOK || in.m.ErrorLog == "" {
		return
	}
	for _, f := range in.files {
		if !f.Regular || f.Target != in.m.ErrorLog {
			continue
		}
		tail, err := in.fs.ReadTail(in.pid, f, debugLogBytes)
		if err != nil {
			return
		}
		if vals, ok := parseConfigDump(tail, in.pid); ok {
			in.set(FromDebugLog, vals)
			in.m.note("settings read from the last \"Current configuration:\" dump in %s", in.m.ErrorLog)
		}
		return
	}
}

func parseSeconds(v string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 || f > 1e9 {
		return 0, false
	}
	return time.Duration(int64(f)) * time.Second, true
}

// workerClass normalises -k values: "egg:gunicorn#gevent" is "gevent".
func workerClass(v string) string { return procinfo.NormalizeWorkerClass(v) }

func (in *inspection) resolveName(inv invocation) {
	m := in.m
	raw, src := "", SourceUnknown
	switch s := in.src["proc_name"]; {
	case s == FromArgv || s == FromEnv || s == FromUnit:
		raw, src = in.val["proc_name"], SourceNameFlag
	case inv.Titled && inv.TitleName != "" && (inv.TitleName != "gunicorn" || in.val["wsgi_app"] == ""):
		raw, src = inv.TitleName, SourceProcTitle
	case s == "config":
		raw, src = in.val["proc_name"], SourceConfigFile
	case in.val["app_module"] != "":
		raw, src = in.val["app_module"], SourceAppModule
	case in.val["paste"] != "":
		// Gunicorn's default_proc_name for --paste is the .ini path.
		raw, src = strings.SplitN(in.val["paste"], "#", 2)[0], SourceAppModule
	case in.val["wsgi_app"] != "":
		raw, src = in.val["wsgi_app"], SourceConfigFile
	}
	name := sanitizeName(raw)
	if name == "" {
		name, src = "gunicorn", SourceUnknown
		m.note("no --name, title or APP_MODULE found: named %q; set apps[].name", name)
	} else if name != raw {
		m.note("name %q made label-safe as %q", raw, name)
	}
	m.Name, m.NameSource = name, src
}

// resolveLogs sets ErrorLog and AccessLog from the settings and, for what
// they leave unknown, from the master's open files.
func (in *inspection) resolveLogs(inv invocation) {
	m := in.m
	errUnknown, accUnknown := false, false

	logconfig := ""
	for _, k := range []string{"logconfig", "logconfig_dict", "logconfig_json"} {
		if in.val[k] != "" || in.nonLiteral[k] {
			logconfig = k
		}
	}
	if in.val["syslog"] == "true" {
		m.note("Gunicorn also logs to syslog (--log-syslog)")
	}

	// Error log: default "-" (stderr) when the whole configuration is visible.
	switch v, ok := in.val["errorlog"]; {
	case logconfig != "":
		errUnknown, accUnknown = true, true
		m.note("logging is configured by %s: log paths taken from open files", logconfig)
	case ok:
		m.ErrorLog = in.logPath(v, 2, "error log", "error_log")
	case in.nonLiteral["errorlog"]:
		errUnknown = true
		m.note("errorlog in %s is not a literal: error log taken from open files", in.config)
	case inv.Titled:
		errUnknown = true
	default:
		m.ErrorLog = in.logPath("-", 2, "error log", "error_log")
	}

	if logconfig == "" {
		switch v, ok := in.val["accesslog"]; {
		case ok:
			m.AccessLog = in.logPath(v, 1, "access log", "access_log")
		case in.nonLiteral["accesslog"]:
			accUnknown = true
			m.note("accesslog in %s is not a literal: access log taken from open files", in.config)
		case inv.Titled:
			accUnknown = true
		default:
			m.note("no access log: --access-logfile is not set, so Gunicorn writes none")
		}
	}

	// A titled master's config-file paths may have been overridden on the
	// (invisible) command line: trust them only if the master has them open.
	if inv.Titled && in.filesOK {
		if m.ErrorLog != "" && in.src["errorlog"] == "config" && !in.hasOpen(m.ErrorLog) {
			m.note("error log %s from %s is not open in the master: overridden on the command line?", m.ErrorLog, in.config)
			m.ErrorLog, errUnknown = "", true
		}
		if m.AccessLog != "" && in.src["accesslog"] == "config" && !in.hasOpen(m.AccessLog) {
			m.note("access log %s from %s is not open in the master: overridden on the command line?", m.AccessLog, in.config)
			m.AccessLog, accUnknown = "", true
		}
	}

	switch {
	case !errUnknown && !accUnknown:
	case !in.filesOK:
		if errUnknown {
			m.note("error log unknown: the master's open files are not readable; set apps[].error_log")
		}
		if accUnknown {
			m.note("access log unknown: the master's open files are not readable; set apps[].access_log")
		}
	default:
		if inv.Titled {
			m.note("argv overwritten by setproctitle: log paths taken from open files")
		}
		in.sniffLogs(errUnknown, accUnknown)
	}
	if m.WorkerClass == "" {
		in.sniffWorkerClass()
	}
}

// hasOpen reports whether the master has p open.
func (in *inspection) hasOpen(p string) bool {
	for _, f := range in.files {
		if f.Regular && !f.Deleted && f.Target == p {
			return true
		}
	}
	return false
}

// logPath resolves a log setting: "-" is the file behind fd (2 for the
// error log, 1 for the access log) when that is a regular file; a relative
// path is relative to the master's working directory, where Gunicorn opens
// it (after --chdir).
func (in *inspection) logPath(v string, fd int, what, field string) string {
	m := in.m
	if v != "-" {
		return in.abs(v)
	}
	stream := map[int]string{1: "stdout", 2: "stderr"}[fd]
	if !in.filesOK {
		m.note("%s goes to %s, whose target is not readable: set apps[].%s", what, stream, field)
		return ""
	}
	for _, f := range in.files {
		if f.FD != fd {
			continue
		}
		switch {
		case f.Regular && !f.Deleted:
			m.note("%s is %s (\"-\"), which is the file %s", what, stream, f.Target)
			return f.Target
		case f.Regular:
			m.note("%s goes to %s, a deleted file %s: set apps[].%s", what, stream, f.Target, field)
		case strings.HasPrefix(f.Target, "socket:"):
			// systemd connects a service's stdout and stderr to journald's
			// stream socket; the app set then follows the unit's journal.
			m.note("%s goes to %s (%s): its unit's journal is followed if the master runs in a systemd service, else set apps[].%s", what, stream, describeTarget(f.Target), field)
		default:
			m.note("%s goes to %s (%s): set apps[].%s", what, stream, describeTarget(f.Target), field)
		}
		return ""
	}
	m.note("%s goes to %s, which is closed: set apps[].%s", what, stream, field)
	return ""
}

func describeTarget(t string) string {
	switch {
	case strings.HasPrefix(t, "pipe:"):
		return "a pipe"
	case strings.HasPrefix(t, "socket:"):
		return "a socket, probably the journal"
	case t == "/dev/null":
		return "/dev/null"
	case strings.HasPrefix(t, "/dev/pts/") || strings.HasPrefix(t, "/dev/tty"):
		return "a terminal"
	}
	return t
}

// abs makes a path from a setting absolute against the master's working
// directory.
func (in *inspection) abs(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	if in.cwd == "" {
		in.m.note("relative path %q with an unknown working directory", p)
		return ""
	}
	return path.Join(in.cwd, p)
}

// candidate is an open file that may be a log.
type candidate struct {
	f      procinfo.OpenFile
	kind   logKind
	byName bool // classified by its name, not its lines
}

// sniffLogs classifies the master's open regular files (opened for writing,
// or named *.log) by the last lines of each: "[date] [pid] [LEVEL] ..." is
// the error log, a request line or [dd/Mon/yyyy:...] timestamp the access
// log. A file with no lines yet is classified by its name.
func (in *inspection) sniffLogs(wantErr, wantAcc bool) {
	m := in.m
	var cands []candidate
	for _, f := range in.files {
		if !f.Regular || f.Deleted || procinfo.IsHeartbeatTarget(f.Target) {
			continue
		}
		if !f.Writable && path.Ext(f.Target) != ".log" {
			continue
		}
		if f.Target == m.ErrorLog || f.Target == m.AccessLog {
			continue
		}
		tail, err := in.fs.ReadTail(in.pid, f, tailBytes)
		if err != nil {
			continue
		}
		r := sniffLog(tail)
		if m.WorkerClass == "" && r.WorkerClass != "" {
			m.WorkerClass = r.WorkerClass
		}
		c := candidate{f: f, kind: r.Kind}
		if c.kind == kindUnknown && len(strings.TrimSpace(string(tail))) == 0 {
			c.kind, c.byName = kindByName(f.Target), true
		}
		if c.kind != kindUnknown {
			cands = append(cands, c)
		}
	}
	pick := func(want logKind) (candidate, bool) {
		best, found := candidate{}, false
		for _, c := range cands {
			if c.kind != want && c.kind != kindBoth {
				continue
			}
			if !found || better(c, best) {
				best, found = c, true
			}
		}
		return best, found
	}
	if wantErr {
		if c, ok := pick(kindError); ok {
			m.ErrorLog = c.f.Target
			if c.byName {
				m.note("error log %s is empty: chosen by its name", c.f.Target)
			}
		} else {
			m.note("error log not found among the master's open files: set apps[].error_log")
		}
	}
	if wantAcc {
		if c, ok := pick(kindAccess); ok {
			m.AccessLog = c.f.Target
			if c.byName {
				m.note("access log %s is empty: chosen by its name", c.f.Target)
			}
		} else {
			m.note("access log not found among the master's open files (disabled, or no request logged yet): set apps[].access_log if there is one")
		}
	}
}

// better prefers a file classified by content over one by name, a file
// that is not the master's stdout/stderr, then the lower fd (Gunicorn opens
// the error log before the access log).
func better(a, b candidate) bool {
	if a.byName != b.byName {
		return !a.byName
	}
	aStd, bStd := a.f.FD <= 2, b.f.FD <= 2
	if aStd != bStd {
		return !aStd
	}
	return a.f.FD < b.f.FD
}

// sniffWorkerClass reads the worker class from the error log's "Using
// worker:" line when nothing else said it.
func (in *inspection) sniffWorkerClass() {
	if !in.filesOK || in.m.ErrorLog == "" {
		return
	}
	for _, f := range in.files {
		if f.Regular && f.Target == in.m.ErrorLog {
			if tail, err := in.fs.ReadTail(in.pid, f, tailBytes); err == nil {
				in.m.WorkerClass = sniffLog(tail).WorkerClass
			}
			return
		}
	}
}
