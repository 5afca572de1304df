package workerstate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// obs builds an observation of a blocked amd64 syscall.
func obs(state byte, wchan string, nr int64, wait ...waitFD) observation {
	o := observation{State: state, Wchan: wchan, SysOK: true, Sys: syscallState{Nr: nr}, Wait: wait, WaitKnown: true}
	if e, ok := lookupSyscall("amd64", nr); ok {
		o.SysName, o.Class = e.name, e.class
	}
	return o
}

var (
	listener = waitFD{FD: 5, Target: "socket:[100]", Inode: 100, Socket: true, Listener: true}
	pipe     = waitFD{FD: 7, Target: "pipe:[200]"}
	dbSocket = waitFD{FD: 11, Target: "socket:[300]", Inode: 300, Socket: true}
)

func TestDecideActivity(t *testing.T) {
	running := observation{State: 'R', SysOK: true, Sys: syscallState{Running: true}}
	unknownSet := obs('S', "poll_schedule_timeout.constprop.0", 270)
	unknownSet.WaitKnown, unknownSet.Wait = false, nil
	for _, tc := range []struct {
		name   string
		o      observation
		want   activity
		reason string
	}{
		{"pselect6 on the listener", obs('S', "poll_schedule_timeout.constprop.0", 270, listener, pipe), activityIdle, "pselect6 on the listener"},
		{"select on the listener", obs('S', "do_select", 23, listener), activityIdle, "select on the listener"},
		{"poll on the listener", obs('S', "", 7, listener), activityIdle, "poll on the listener"},
		{"epoll on the listener", obs('S', "ep_poll", 232, listener), activityIdle, "epoll_wait on the listener"},
		{"accept on the listener", obs('S', "inet_csk_accept", 43, listener), activityIdle, "accept on the listener"},
		{"poll on a database socket", obs('S', "", 7, dbSocket), activityBusy, "poll not on the listener"},
		{"recvfrom", obs('S', "wait_woken", 45, dbSocket), activityBusy, "blocked in recvfrom"},
		{"sleep", obs('S', "hrtimer_nanosleep", 230), activityBusy, "blocked in clock_nanosleep"},
		{"futex", obs('S', "futex_do_wait", 202), activityBusy, "blocked in futex"},
		{"unknown syscall", obs('S', "", 9999), activityBusy, "blocked in syscall 9999"},
		{"running", running, activityBusy, "running"},
		{"disk", obs('D', "", 0), activityBusy, "uninterruptible sleep"},
		{"stopped", obs('T', "do_signal_stop", 0), activityUnknown, "stopped or exiting"},
		{"no syscall", observation{State: 'S', Wchan: "poll_schedule_timeout"}, activityUnknown, "syscall unreadable"},
		{"select set unreadable", unknownSet, activityUnknown, "pselect6 on unreadable descriptors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := decideActivity(tc.o)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.reason, reason)
		})
	}
}

func TestNeedsConnCheck(t *testing.T) {
	require.True(t, needsConnCheck(observation{State: 'R', SysOK: true}))
	require.True(t, needsConnCheck(observation{State: 'S', SysOK: true, Sys: syscallState{Running: true}}))
	require.True(t, needsConnCheck(observation{State: 'S'}))
	require.False(t, needsConnCheck(obs('S', "", 270, listener)))
	require.False(t, needsConnCheck(observation{State: 'D'}))
	require.False(t, needsConnCheck(observation{State: 'T'}))
}

func TestClassifyStuck(t *testing.T) {
	selectSleep := obs('S', "poll_schedule_timeout.constprop.0", 270) // select(0, NULL, NULL, NULL, &tv)
	noSys := func(state byte, wchan string) observation { return observation{State: state, Wchan: wchan} }
	withCPU := func(o observation, ratio float64) observation { o.CPURatio = ratio; return o }
	notInSyscall := observation{State: 'S', Wchan: "futex_wait_queue", SysOK: true, Sys: syscallState{NotInSyscall: true, Nr: -1}}
	for _, tc := range []struct {
		name string
		o    observation
		want StuckKind
		sock *waitFD
	}{
		{"disk", obs('D', "io_schedule", 0), KindDisk, nil},
		{"disk wins over cpu", withCPU(obs('D', "", 0), 1), KindDisk, nil},
		{"running", observation{State: 'R', SysOK: true, Sys: syscallState{Running: true}}, KindCPU, nil},
		{"state R", noSys('R', ""), KindCPU, nil},
		{"futex", obs('S', "futex_wait_queue", 202), KindFutex, nil},
		{"futex with CPU rising (GIL)", withCPU(obs('S', "futex_wait_queue", 202), 0.9), KindCPU, nil},
		{"futex below the CPU bound", withCPU(obs('S', "futex_wait_queue", 202), 0.3), KindFutex, nil},
		{"clock_nanosleep", obs('S', "hrtimer_nanosleep", 230), KindSleep, nil},
		{"nanosleep", obs('S', "hrtimer_nanosleep", 35), KindSleep, nil},
		{"Python < 3.11 sleep: select with no fds", selectSleep, KindSleep, nil},
		{"poll with no fds", obs('S', "", 7), KindSleep, nil},
		{"recvfrom on a socket", obs('S', "wait_woken", 45, dbSocket), KindSocketRead, &dbSocket},
		{"read on a socket", obs('S', "wait_woken", 0, dbSocket), KindSocketRead, &dbSocket},
		{"poll on a socket (Python socket timeout)", obs('S', "", 7, dbSocket), KindSocketRead, &dbSocket},
		{"epoll on a socket", obs('S', "ep_poll", 232, pipe, dbSocket), KindSocketRead, &dbSocket},
		{"read on a pipe", obs('S', "pipe_read", 0, pipe), KindOther, nil},
		{"select on the listener (notify blocked?)", obs('S', "", 270, listener, pipe), KindOther, nil},
		{"connect", obs('S', "", 42, dbSocket), KindOther, nil},
		{"wait4", obs('S', "do_wait", 61), KindOther, nil},
		{"other with CPU rising", withCPU(obs('S', "", 61), 0.7), KindCPU, nil},
		{"sleep with CPU rising stays sleep", withCPU(obs('S', "hrtimer_nanosleep", 230), 0.9), KindSleep, nil},
		{"stopped", obs('T', "do_signal_stop", 0), KindOther, nil},
		{"not in a syscall: wchan futex", notInSyscall, KindFutex, nil},
		{"wchan only: futex (5.x name)", noSys('S', "futex_wait_queue_me"), KindFutex, nil},
		{"wchan only: futex (6.x name)", noSys('S', "futex_do_wait"), KindFutex, nil},
		{"wchan only: nanosleep", noSys('S', "hrtimer_nanosleep"), KindSleep, nil},
		{"wchan only: do_nanosleep", noSys('S', "do_nanosleep"), KindSleep, nil},
		{"wchan only: socket", noSys('S', "wait_woken"), KindSocketRead, nil},
		{"wchan only: sk_wait_data", noSys('S', "sk_wait_data"), KindSocketRead, nil},
		{"wchan only: unix socket", noSys('S', "unix_stream_data_wait"), KindSocketRead, nil},
		{"wchan only: poll", noSys('S', "poll_schedule_timeout.constprop.0"), KindOther, nil},
		{"wchan only: poll with CPU rising", withCPU(noSys('S', "poll_schedule_timeout"), 0.6), KindCPU, nil},
		{"nothing readable", noSys('S', ""), KindOther, nil},
		{"recvfrom, descriptors unknown, wchan socket", func() observation {
			o := obs('S', "wait_woken", 270)
			o.WaitKnown = false
			return o
		}(), KindSocketRead, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, sock := classifyStuck(tc.o)
			require.Equal(t, tc.want, kind)
			if tc.sock == nil {
				require.Nil(t, sock)
			} else {
				require.NotNil(t, sock)
				require.Equal(t, *tc.sock, *sock)
			}
		})
	}
}

func TestHeartbeatNotified(t *testing.T) {
	wall := time.Date(2026, 11, 24, 17, 56, 21, 0, time.UTC)
	for _, tc := range []struct {
		mode  uint32
		mtime time.Time
		want  bool
	}{
		{0o600, wall, false},                // any version, before the first notify
		{0o000, wall, true},                 // ≤ 21.2, notified an even number of times
		{0o001, wall, true},                 // ≤ 21.2, odd
		{0o600, time.Unix(1781, 131), true}, // ≥ 22: CLOCK_MONOTONIC mtime
		{0o644, wall, false},                // an odd umask: still not notified
	} {
		require.Equal(t, tc.want, heartbeatNotified(procinfo.HeartbeatFD{Mode: tc.mode, Mtime: tc.mtime}), "%o %v", tc.mode, tc.mtime)
	}
}

func TestStuckKinds(t *testing.T) {
	var names []string
	for _, k := range StuckKinds() {
		names = append(names, k.String())
	}
	require.Equal(t, []string{"other", "socket_read", "cpu", "futex", "sleep", "disk"}, names)
	require.Equal(t, "other", StuckKind(-1).String())
	require.Equal(t, "other", NumStuckKinds.String())
}

func TestStuckEvent(t *testing.T) {
	now := time.Date(2026, 11, 24, 17, 0, 0, 0, time.UTC)
	e := stuckEvent("shop", StuckSnapshot{
		PID: 42, Kind: KindSocketRead, HeartbeatAge: 16 * time.Second, State: "S", Wchan: "wait_woken",
		Syscall: "recvfrom", Peer: "10.0.0.5:5432", LocalPort: 51234, PeerIsPostgres: true,
	}, 30*time.Second, now)
	require.Equal(t, "shop", e.App)
	require.Equal(t, 42, e.PID)
	require.Equal(t, "socket_read", e.Cause)
	require.Equal(t, now, e.Time)
	require.Equal(t, "worker 42 stuck for 16.0s of a 30s timeout: socket_read from 10.0.0.5:5432 (local port 51234), PostgreSQL; state S, wchan wait_woken, syscall recvfrom", e.Detail)
	require.Equal(t, map[string]string{
		"kind": "socket_read", "state": "S", "heartbeat_age_seconds": "16.000", "timeout_seconds": "30",
		"wchan": "wait_woken", "syscall": "recvfrom", "peer": "10.0.0.5:5432", "local_port": "51234", "peer_is_postgres": "true",
	}, e.Attrs)
}
