// Package actuator performs remediation actions and nothing else: it is the
// only package of gunicorn-reflex that sends a signal to a Gunicorn master
// or asks systemd to restart a unit. It does not decide whether to act (the
// policy does) nor whether the action took effect (receiver/verify does).
//
// Every signal goes to a master whose identity is re-verified with a pidfd
// held (procinfo.FS.Signal), and only after the process is confirmed to be
// a Gunicorn master: never pid <= 1, never a worker, never the new master
// of a USR2 upgrade, never a process that reused a dead master's pid. A
// restart goes through systemd's D-Bus API to the unit named in the
// configuration; nothing an alert carries chooses a pid, a unit or a
// signal. Dry-run and the kill-switch file are honoured here too, as a last
// line behind the policy: with either, nothing is done and the Result says
// why.
//
// Privileges: verifying a master reads /proc/<pid>/exe, which the kernel
// allows only with ptrace read access (the master's user, or
// CAP_SYS_PTRACE); signalling it needs the same user or CAP_KILL; a
// restart needs systemd's permission to manage the unit (root, or a polkit
// rule for org.freedesktop.systemd1.manage-units limited to that unit).
// Every refusal is reported as ErrPermission (outcome failed), with the
// kernel's or systemd's error in the chain.
package actuator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// Errors of Perform, to be tested with errors.Is. Each also wraps the
// underlying procinfo or D-Bus error when there is one.
var (
	// ErrNotMaster: the target process is not a Gunicorn master (a worker,
	// the new master of a USR2 upgrade, another program, pid <= 1) or its
	// identity could not be verified (it exited, its pid was reused).
	ErrNotMaster = errors.New("not a verified Gunicorn master")
	// ErrNoUnit: a restart was asked for an app with no systemd unit
	// configured; restart is then not allowed.
	ErrNoUnit = errors.New("no systemd unit configured: restart not allowed")
	// ErrPermission: the kernel or systemd refused (EPERM, EACCES, a
	// polkit denial): the receiver lacks the privilege to act.
	ErrPermission = errors.New("permission denied")
	// ErrUnsupported: the action cannot be performed safely on this host
	// (no pidfd_open, no system bus) or is not in the closed set.
	ErrUnsupported = errors.New("action not supported here")
)

// Systemd is the part of a systemd D-Bus connection the actuator uses;
// *dbus.Conn of github.com/coreos/go-systemd/v22/dbus implements it.
type Systemd interface {
	RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	Close()
}

// Options configures an Actuator. The zero value is a live actuator on
// /proc that restarts through the system bus.
type Options struct {
	// FS is the /proc the masters are read and signalled through; the zero
	// value means procinfo.NewFS("/proc").
	FS procinfo.FS
	// DryRun makes every Perform return a Result with DryRun set and do
	// nothing. False (the zero value) acts.
	DryRun bool
	// KillSwitch is a file path: while a file exists there, Perform does
	// nothing and returns a Result with KillSwitch set. "" means no kill
	// switch. It is checked at every Perform, so creating the file stops
	// the next action without a reload.
	KillSwitch string
	// Systemd is the D-Bus connection restarts go through; nil means the
	// system bus, dialled at the first restart (and re-dialled after an
	// error).
	Systemd Systemd
	// Logger receives one line per action performed; nil discards.
	Logger *slog.Logger
}

// Target is what an action is performed on. It comes from this host's
// state and configuration (intent.Host, the app's configured unit), never
// from an alert.
type Target struct {
	App string
	// Master is the master's identity as discovery verified it; it is
	// verified again, with a pidfd held, before any signal.
	Master procinfo.Identity
	// Unit is the systemd service of the app from the configuration
	// ("gunicorn-app.service": a name ending in ".service"); "" means restart
	// is not allowed.
	Unit string
}

// Result says what Perform did.
type Result struct {
	Action intent.Action
	// DryRun and KillSwitch: nothing was done, and why.
	DryRun, KillSwitch bool
	// Signal is the signal sent ("TTIN", "TTOU", "HUP"), "" for a restart
	// or when nothing was sent.
	Signal string
	// Master is the master signalled (or that would have been).
	Master procinfo.Identity
	// Unit and JobResult: the unit restarted and systemd's job result
	// ("done" when the unit started again).
	Unit, JobResult string
}

// Actuator performs actions; it is safe for concurrent use, though the
// receiver runs at most one action per app at a time.
type Actuator struct {
	fs     procinfo.FS
	opts   Options
	logger *slog.Logger

	mu  sync.Mutex
	bus Systemd
}

// New returns an Actuator. It fails only when /proc cannot be opened.
func New(opts Options) (*Actuator, error) {
	fs := opts.FS
	if fs.Root() == "" {
		var err error
		if fs, err = procinfo.NewFS("/proc"); err != nil {
			return nil, fmt.Errorf("actuator: %w", err)
		}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Actuator{fs: fs, opts: opts, logger: logger, bus: opts.Systemd}, nil
}

// Close closes the D-Bus connection, if one was dialled or given.
func (a *Actuator) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bus != nil {
		a.bus.Close()
		a.bus = nil
	}
}

// signals maps the signalling actions onto their signal. A TTIN adds one
// worker and a TTOU removes one (gunicorn/arbiter.py handle_ttin,
// handle_ttou; TTOU never goes below 1); a HUP starts a new generation of
// workers and resets their count to the configured workers.
var signals = map[intent.Action]syscall.Signal{
	intent.ScaleUp:   syscall.SIGTTIN,
	intent.ScaleDown: syscall.SIGTTOU,
	intent.Reload:    syscall.SIGHUP,
}

// SignalName is the short name of the signal an action sends ("TTIN"), ""
// for an action that sends none.
func SignalName(a intent.Action) string {
	if s, ok := signals[a]; ok {
		return strings.TrimPrefix(unixSignalName(s), "SIG")
	}
	return ""
}

func unixSignalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGTTIN:
		return "SIGTTIN"
	case syscall.SIGTTOU:
		return "SIGTTOU"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

// Perform performs one action on t: one signal to the verified master, or
// one restart of the configured unit. It never retries and never waits for
// the effect (receiver/verify does). Under dry-run or while the kill-switch
// file exists it checks nothing and does nothing, and says so in the
// Result.
func (a *Actuator) Perform(ctx context.Context, act intent.Action, t Target) (Result, error) {
	res := Result{Action: act, Master: t.Master, Unit: t.Unit, Signal: SignalName(act)}
	if a.opts.DryRun {
		res.DryRun = true
		return res, nil
	}
	if a.killSwitchOn() {
		res.KillSwitch = true
		return res, nil
	}
	if act == intent.Restart {
		res.Signal = ""
		return a.restart(ctx, t, res)
	}
	sig, ok := signals[act]
	if !ok {
		return res, fmt.Errorf("action %q: %w", act, ErrUnsupported)
	}
	if err := a.signal(t.Master, sig); err != nil {
		return res, fmt.Errorf("%s of app %s: %w", act, t.App, err)
	}
	a.logger.Info("signalled the master", "app", t.App, "action", string(act), "signal", res.Signal, "pid", t.Master.PID)
	return res, nil
}

// killSwitchOn reports whether the kill-switch file exists. A path that
// cannot be checked (permission denied on a directory) counts as on: a
// kill switch that fails open is no kill switch.
func (a *Actuator) killSwitchOn() bool {
	if a.opts.KillSwitch == "" {
		return false
	}
	_, err := os.Lstat(a.opts.KillSwitch)
	return err == nil || !errors.Is(err, os.ErrNotExist)
}

// signal sends sig to the master id names after CheckMaster, with the
// pidfd open for both the check and the signal.
func (a *Actuator) signal(id procinfo.Identity, sig syscall.Signal) error {
	err := procinfo.SignalChecked(id.PID, sig, func() error {
		if err := a.fs.Verify(id); err != nil {
			return err
		}
		return a.checkRole(id)
	})
	return classify(err)
}

// CheckMaster verifies that id still names the same process and that the
// process is a Gunicorn master: its command line is Gunicorn's (a
// "gunicorn: master [NAME]" title, the gunicorn script or `-m gunicorn`),
// and its parent is not a Gunicorn process (a child of one is a worker or
// the new master of a USR2 upgrade). It returns an error wrapping
// ErrNotMaster (and the procinfo reason) otherwise.
func (a *Actuator) CheckMaster(id procinfo.Identity) error {
	if err := a.fs.Verify(id); err != nil {
		return classify(err)
	}
	return classify(a.checkRole(id))
}

// MasterFromPidfile reads a Gunicorn pidfile and returns the identity of
// the master it names, after CheckMaster: garbage, pid <= 1, a dead
// master's pid now used by another program, or a worker's pid are all
// errors wrapping ErrNotMaster.
func (a *Actuator) MasterFromPidfile(path string) (procinfo.Identity, error) {
	pid, err := procinfo.ReadPidfile(path)
	if err != nil {
		return procinfo.Identity{}, fmt.Errorf("%w: %w", ErrNotMaster, err)
	}
	id, err := a.fs.Identify(pid)
	if err != nil {
		return procinfo.Identity{}, classify(fmt.Errorf("pidfile %s: %w", filepath.Clean(path), err))
	}
	if err := a.checkRole(id); err != nil {
		return procinfo.Identity{}, classify(fmt.Errorf("pidfile %s: %w", filepath.Clean(path), err))
	}
	return id, nil
}

// checkRole is the role part of CheckMaster, on an identity just verified.
func (a *Actuator) checkRole(id procinfo.Identity) error {
	if id.PID <= 1 {
		return fmt.Errorf("pid %d: %w", id.PID, procinfo.ErrRefused)
	}
	if t, ok := procinfo.ParseTitle(id.Cmdline); ok {
		if t.Role != "master" {
			return fmt.Errorf("pid %d is titled %q: %w", id.PID, t.Role, ErrNotMaster)
		}
	} else if !gunicornArgv(id.Cmdline) {
		return fmt.Errorf("pid %d runs %q, not Gunicorn: %w", id.PID, id.Comm, ErrNotMaster)
	}
	parent, err := a.fs.Cmdline(id.PPID)
	if err != nil && !errors.Is(err, procinfo.ErrGone) {
		return fmt.Errorf("pid %d: parent %d: %w", id.PID, id.PPID, err)
	}
	if isGunicorn(parent) {
		role := a.fs.ChildRole(a.child(id, parent))
		return fmt.Errorf("pid %d is a child of Gunicorn process %d (%s): %w", id.PID, id.PPID, role, ErrNotMaster)
	}
	return nil
}

// child gathers what procinfo.ChildRole needs to name the role of a
// Gunicorn process's child (for the error message: any child is refused).
func (a *Actuator) child(id procinfo.Identity, parentCmd []string) procinfo.Child {
	c := procinfo.Child{PID: id.PID, ParentPID: id.PPID, Cmdline: id.Cmdline, ParentCmdline: parentCmd}
	c.Heartbeats, c.HeartbeatsErr = a.fs.HeartbeatFDs(id.PID)
	if hb, err := a.fs.HeartbeatFDs(id.PPID); err == nil {
		c.ParentHeartbeats, c.ParentHeartbeatsKnown = hb, true
	}
	return c
}

// isGunicorn reports whether a command line is a Gunicorn process's: a
// setproctitle title or an untitled Gunicorn invocation.
func isGunicorn(cmd []string) bool {
	if _, ok := procinfo.ParseTitle(cmd); ok {
		return true
	}
	return gunicornArgv(cmd)
}

// gunicornArgv reports whether an untitled command line runs Gunicorn: the
// gunicorn script (directly or through an interpreter) or `python -m
// gunicorn`. Only the first few elements are looked at: an argument of
// another program that mentions gunicorn does not make it one.
func gunicornArgv(cmd []string) bool {
	for i, arg := range cmd {
		if i > 3 {
			break
		}
		base := filepath.Base(arg)
		// gunicorn-reflex itself (and its test binary, gunicorn-reflex.test,
		// the parent of every test's Gunicorn) is no Gunicorn.
		if base == "gunicorn" || strings.HasPrefix(base, "gunicorn-") && !strings.HasPrefix(base, "gunicorn-reflex") {
			return true
		}
		if (arg == "-m" && i+1 < len(cmd) && cmd[i+1] == "gunicorn") || arg == "-mgunicorn" {
			return true
		}
	}
	return false
}

// classify makes procinfo's refusals ErrNotMaster and the kernel's
// permission errors ErrPermission, keeping the original in the chain.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotMaster), errors.Is(err, ErrPermission), errors.Is(err, ErrUnsupported):
		return err
	case errors.Is(err, procinfo.ErrPermission), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w: %w", ErrPermission, err)
	case errors.Is(err, procinfo.ErrNoPidfd):
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	case errors.Is(err, procinfo.ErrRefused), errors.Is(err, procinfo.ErrGone),
		errors.Is(err, procinfo.ErrPIDReused), errors.Is(err, procinfo.ErrStarting):
		return fmt.Errorf("%w: %w", ErrNotMaster, err)
	}
	return err
}

// Outcome maps an error of Perform onto the audit outcome and refusal:
// a target that is not a verified master is refused (master_unverified),
// anything else that stopped the action is failed.
func Outcome(err error) (intent.Outcome, intent.Refusal) {
	switch {
	case err == nil:
		return intent.OutcomeActed, ""
	case errors.Is(err, ErrNotMaster):
		return intent.OutcomeRefused, intent.RefuseMasterUnverified
	case errors.Is(err, ErrNoUnit):
		return intent.OutcomeNotAllowed, ""
	}
	return intent.OutcomeFailed, ""
}
