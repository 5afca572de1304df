package procinfo

import (
	"errors"
	"strconv"
	"strings"
)

// Role is what a child of a Gunicorn master is.
type Role int

// Roles of a master's child.
const (
	// RoleUnknown: neither a worker nor an upgrade child (a hook's helper
	// process, or a process with another setproctitle title).
	RoleUnknown Role = iota
	// RoleWorker: one of the master's workers.
	RoleWorker
	// RoleUpgradeChild: the new master of a USR2 upgrade (the master
	// re-exec'd in a child), not yet promoted.
	RoleUpgradeChild
)

func (r Role) String() string {
	switch r {
	case RoleWorker:
		return "worker"
	case RoleUpgradeChild:
		return "upgrade_child"
	}
	return "unknown"
}

// Title is a parsed Gunicorn setproctitle title "gunicorn: <role> [<name>]"
// (gunicorn/arbiter.py and workers/base.py: "master [NAME]", "worker
// [NAME]"; a USR2 new master titles itself "master [NAME.2]" until it is
// promoted).
type Title struct {
	Role string // "master", "worker", or what else the title says
	Name string // the proc_name inside the brackets, "" when there are none
}

// ParseTitle parses a command line that is a Gunicorn setproctitle title.
// ok is false for any other command line (an untitled process shows its
// exec argv, several elements).
func ParseTitle(cmdline []string) (t Title, ok bool) {
	if len(cmdline) != 1 {
		return Title{}, false
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(cmdline[0]), TitlePrefix)
	if !ok {
		return Title{}, false
	}
	t.Role, rest, _ = strings.Cut(rest, " ")
	if i := strings.IndexByte(rest, '['); i >= 0 {
		name := rest[i+1:]
		if j := strings.LastIndexByte(name, ']'); j >= 0 {
			name = name[:j]
		}
		t.Name = name
	}
	return t, true
}

// Child is what a caller already read about one child of a Gunicorn master,
// for ChildRole.
type Child struct {
	PID, ParentPID int
	// Cmdline and ParentCmdline are the two command lines (titles, when
	// setproctitle is installed).
	Cmdline, ParentCmdline []string
	// Heartbeats are the child's heartbeat files; HeartbeatsErr is the
	// error reading them (the child's are then unknown).
	Heartbeats    []HeartbeatFD
	HeartbeatsErr error
	// ParentHeartbeats are the master's heartbeat files, one per worker;
	// ParentHeartbeatsKnown is false when they could not be read.
	ParentHeartbeats      []HeartbeatFD
	ParentHeartbeatsKnown bool
}

// ChildRole decides what a child of a Gunicorn master is. It is the one
// place that tells a worker from the new master of a USR2 upgrade: process
// discovery, the worker sampler and the remediation receiver (which must
// never signal the one for the other) all ask it. It reads the child's
// environment and children only when the rules get that far.
//
// Rules, first match wins:
//  1. Titled "worker [...]": a worker.
//  2. Titled "master [NAME]": the upgrade child when NAME is not the
//     parent's title name (the new master titles itself "NAME.2"), else a
//     worker forked a moment ago that has not retitled itself yet.
//  3. Any other title: unknown.
//  4. No command line at all: unknown. A process that is exiting has
//     released its memory, argv with it (a worker HUP or TTOU told to go,
//     and a zombie until the master reaps it), and one caught inside
//     execve has not copied its new argv yet; neither is a worker to count
//     nor a new master (without this rule an exiting worker, holding no
//     heartbeat file and no readable environment, fell to rule 10's
//     "upgrade child" and a HUP looked like a USR2 upgrade).
//  5. The child's and the master's heartbeat files are both readable: a
//     worker holds one the master also holds (all of its siblings' for a
//     moment after the fork); the upgrade child holds only its own workers'
//     (the master's are close-on-exec).
//  6. Only the child's are readable: exactly one makes a worker, more the
//     upgrade child.
//  7. Its environment has GUNICORN_PID=<parent> (gunicorn/arbiter.py
//     reexec sets it for the exec'd master; a worker is forked, not
//     exec'd): the upgrade child.
//  8. It has children of its own (its workers): the upgrade child.
//  9. Its heartbeat files cannot be read: a worker (counted, but not
//     inspectable).
//  10. It holds no heartbeat file and its environment cannot be read: the
//     upgrade child before its first fork (a worker always holds one).
//  11. Otherwise unknown.
func (fs FS) ChildRole(c Child) Role {
	parentTitle, _ := ParseTitle(c.ParentCmdline)
	if t, ok := ParseTitle(c.Cmdline); ok {
		switch {
		case t.Role == "worker":
			return RoleWorker
		case t.Role == "master" && t.Name != parentTitle.Name:
			return RoleUpgradeChild
		case t.Role == "master":
			return RoleWorker
		}
		return RoleUnknown
	}
	if len(c.Cmdline) == 0 {
		return RoleUnknown
	}
	if c.HeartbeatsErr == nil {
		switch {
		case c.ParentHeartbeatsKnown && sharesHeartbeat(c.Heartbeats, c.ParentHeartbeats):
			return RoleWorker
		case c.ParentHeartbeatsKnown && len(c.Heartbeats) > 0:
			return RoleUpgradeChild
		case !c.ParentHeartbeatsKnown && len(c.Heartbeats) == 1:
			return RoleWorker
		case !c.ParentHeartbeatsKnown && len(c.Heartbeats) > 1:
			return RoleUpgradeChild
		}
	}
	env, envErr := fs.Environ(c.PID, "GUNICORN_PID")
	if envErr == nil && env["GUNICORN_PID"] == strconv.Itoa(c.ParentPID) {
		return RoleUpgradeChild
	}
	if kids, err := fs.Children(c.PID); err == nil && len(kids) > 0 {
		return RoleUpgradeChild
	}
	switch {
	case c.HeartbeatsErr != nil:
		return RoleWorker
	case envErr != nil && !errors.Is(envErr, ErrGone):
		return RoleUpgradeChild
	case envErr != nil && errors.Is(envErr, ErrGone) && fs.exists(c.PID):
		return RoleUpgradeChild // no environ file (a saved tree): as unreadable
	}
	return RoleUnknown
}

func sharesHeartbeat(own, parent []HeartbeatFD) bool {
	for _, h := range own {
		for _, p := range parent {
			if h.Inode == p.Inode && h.Dev == p.Dev {
				return true
			}
		}
	}
	return false
}

// exists reports whether pid's /proc directory still exists.
func (fs FS) exists(pid int) bool {
	_, err := fs.stat(pid)
	return err == nil
}
