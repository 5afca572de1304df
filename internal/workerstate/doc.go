// Package workerstate owns the live state of Gunicorn workers as /proc shows
// it, without touching the application: which children of a master are
// workers (as procinfo.ChildRole decides), their heartbeat age (gunicorn/workers/workertmp.py: now − ctime of the
// unlinked wgunicorn-* file through /proc/<pid>/fd/N), whether each sync
// worker waits for a connection or is inside a request, what a worker whose
// heartbeat has gone stale is doing (the stuck-worker snapshot), and whether
// a SIGKILLed worker was killed by the kernel's OOM killer; and the listen
// backlog of each master (Backlog: connections waiting for a worker, read
// through sock_diag, with a peak over a window).
//
// A Sampler is the one stateful reader per host. Sample returns an AppState
// for one master: aggregate values meant for metrics (no pids), plus stuck
// snapshots (with pids, as evidence for people and the timeline). The
// Sampler remembers the previous CPU time of each worker, to see CPU time
// rising between samples, and the open stuck episodes, so each episode is
// appended to the timeline once. Both are bounded.
//
// # Busy or idle
//
// Only for the sync worker class is busy/idle decided. A sync worker that
// waits for a connection blocks in select(2) (pselect6 in glibc) over the
// listening sockets and its wake-up pipe (sync.py wait()), or in accept(2).
// A worker is idle when its main thread is blocked in select, pselect6,
// poll, ppoll, epoll_wait/epoll_pwait/epoll_pwait2, accept or accept4 and
// one of the file descriptors it waits on is a listening socket of the
// master (matched by socket inode). The waited-on descriptors come from
// /proc/<pid>/syscall (the syscall number and arguments) and, for select and
// poll, from the fd_set or pollfd array read through /proc/<pid>/mem at the
// address the arguments give; for epoll from /proc/<pid>/fdinfo/<epfd>.
// Every other booted worker blocked in a syscall is busy (a socket read, a
// futex, a sleep, disk). A worker seen running is read again up to three
// times, 2 ms apart; if it still runs, or its syscall cannot be read, it is
// busy exactly when it holds a connection accepted on one of the master's
// listeners (a sync worker closes the client socket when the request ends),
// from /proc/<pid>/fd and /proc/<pid>/net/{tcp,tcp6,unix}. An idle worker
// woken by its select timeout stays runnable for as long as the CPU is
// contended, so "running" alone does not mean busy. Each worker's heartbeat
// is read again after its activity is decided, so that the age of a worker
// seen inside a request counts from that request's notify().
//
// gthread, gevent, eventlet, tornado and uvicorn workers serve requests from
// threads or an event loop whose main thread always waits on the listener,
// so /proc cannot tell whether they are inside a request: their workers are
// counted in AppState.UnknownActivity, never as idle. An app whose worker
// class is not known ("" from discovery) is treated as sync once one of its
// workers is seen waiting in select(2) on the listener (only the sync class
// uses select; the others use epoll), or once discovery said sync for the
// same master, and as unknown until then.
//
// # Stuck workers
//
// A worker whose heartbeat age exceeds Options.StuckFraction (default 0.5)
// of the app's timeout, and which is not idle on the listener, is stuck. Its
// snapshot has a kind from a closed set, decided in this order:
//
//   - disk: state D (uninterruptible, usually disk or NFS I/O).
//   - cpu: state R, or the main thread is not blocked in a syscall, or the
//     process used CPU for at least half the wall time since the previous
//     sample while its main thread waits on a futex (another thread computes
//     and holds the GIL) or on something classified as other.
//   - futex: blocked in futex(2)/futex_waitv/futex_wait (a lock, a
//     condition, a thread join), or wchan futex_*.
//   - sleep: nanosleep/clock_nanosleep (time.sleep in Python ≥ 3.11), or
//     select/poll with no descriptors (time.sleep in Python < 3.11), or
//     wchan hrtimer_nanosleep/do_nanosleep.
//   - socket_read: read/readv/recvfrom/recvmsg/recvmmsg on a socket, or
//     select/poll/epoll over sockets none of which is a listener (Python's
//     socket timeouts poll one socket), or wchan sk_wait_data/wait_woken/
//     unix_stream_data_wait. For a TCP socket the snapshot gives the peer
//     host:port and the worker's local port (from /proc/<pid>/net/tcp{,6}),
//     and marks a peer port of 5432 or one of Options.PostgresPorts as
//     PostgreSQL, so pg_stat_activity.client_port can be matched to it.
//   - other: anything else (connect, write, wait4, a pipe, a stopped
//     process).
//
// Each new episode (a worker, identified by pid and start time, with one
// stale heartbeat) is appended to the timeline once, as source "proc", kind
// "worker_stuck", when first seen; it ends when the worker notifies again or
// exits. AppState.StuckEpisodesTotal counts episodes by their first kind.
//
// # OOM confirmation
//
// OOMWatcher confirms or refutes that a worker that died by SIGKILL was
// killed by the OOM killer: the oom_kill counter of the worker's and the
// master's memory cgroup (cgroup v2 memory.events, v1 memory.oom_control)
// rose after the last observation before the death, or the kernel log
// (/dev/kmsg, else syslog(2)) has "Killed process <pid>" for the worker. A
// Sampler given the watcher records the cgroups of every process it samples,
// so the worker's cgroup is known after it died.
//
// # Privileges
//
// Heartbeats and fd lists need the worker's uid, root, or CAP_DAC_READ_SEARCH
// plus CAP_SYS_PTRACE (fs/proc/fd.c); /proc/<pid>/syscall and
// /proc/<pid>/mem need ptrace attach access (same uid and a dumpable
// process, and under Yama ptrace_scope=1 a descendant, or CAP_SYS_PTRACE);
// wchan shows "0" without ptrace read access. Without the syscall, busy/idle
// is decided from the worker's connections alone and the stuck kind from
// wchan (the socket_read peer is then the worker's one backend TCP
// connection, when it has exactly one). The kernel log needs CAP_SYSLOG
// where kernel.dmesg_restrict=1, and its "Killed process <pid>" pids are
// the initial pid namespace's. stat, status and the cgroup files are
// world-readable. A refusal never crashes and never becomes a zero:
// AppState.PermissionDenied is set, UnreadableWorkers counts the workers
// concerned, their activity is unknown unless their connections tell, and a
// heartbeat that could not be read is left out of the aggregates
// (HeartbeatsRead says how many were read).
package workerstate
