package workerstate

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// syscallLabel names what /proc/<pid>/syscall showed.
func syscallLabel(o observation) string {
	switch {
	case !o.SysOK:
		return ""
	case o.Sys.Running:
		return "running"
	case o.Sys.NotInSyscall:
		return "none"
	case o.SysName != "":
		return o.SysName
	}
	return "syscall_" + strconv.FormatInt(o.Sys.Nr, 10)
}

// snapshot builds the stuck snapshot of w, resolving a socket peer.
func (s *Sampler) snapshot(w *worker, kind StuckKind, sock *waitFD, lis listenerCache) StuckSnapshot {
	snap := StuckSnapshot{
		PID:             w.pid,
		Kind:            kind,
		Since:           w.hb.Ctime,
		HeartbeatAge:    w.age,
		Booting:         w.booting,
		Wchan:           w.obs.Wchan,
		State:           w.stat.StateString(),
		CPUSecondsDelta: w.cpuDelta,
		CPUInterval:     w.cpuInterval,
	}
	if w.obs.State != 0 {
		snap.State = string(w.obs.State)
	}
	snap.Syscall = syscallLabel(w.obs)
	if kind != KindSocketRead {
		return snap
	}
	var p peer
	var ok bool
	if sock != nil {
		p, ok = s.resolveSocket(w.pid, sock.Inode)
	} else {
		p, ok = s.guessBackendSocket(w.pid, lis)
	}
	if ok {
		snap.Peer, snap.LocalPort = p.addr, p.localPort
		snap.PeerIsClient = (p.localPort > 0 && lis.ports[p.localPort]) || (p.path != "" && lis.unix[p.path])
		snap.PeerIsPostgres = !snap.PeerIsClient && (p.postgres || (p.remotePort > 0 && s.pgPorts[p.remotePort]))
	}
	return snap
}

type peer struct {
	addr       string
	path       string // a unix socket's path, "" for TCP or an unnamed one
	localPort  int
	remotePort int
	postgres   bool
}

// resolveSocket finds a socket inode in /proc/<pid>/net/{tcp,tcp6,unix}
// (the worker's own network namespace).
func (s *Sampler) resolveSocket(pid int, inode uint64) (peer, bool) {
	if conns, err := s.fs.NetTCP(pid); err == nil {
		for _, c := range conns {
			if c.Inode == inode {
				return tcpPeer(c), true
			}
		}
	}
	if socks, err := s.fs.NetUnix(pid); err == nil {
		for _, u := range socks {
			if u.Inode == inode {
				return unixPeer(u.Path), true
			}
		}
	}
	return peer{}, false
}

func tcpPeer(c procinfo.TCPConn) peer {
	return peer{
		addr:       net.JoinHostPort(c.Remote.String(), strconv.Itoa(c.RemotePort)),
		localPort:  c.LocalPort,
		remotePort: c.RemotePort,
	}
}

// unixPeer describes a unix socket; PostgreSQL's are named .s.PGSQL.<port>.
func unixPeer(path string) peer {
	if path == "" {
		return peer{addr: "unix"}
	}
	return peer{addr: "unix:" + path, path: path, postgres: strings.Contains(path, ".s.PGSQL.")}
}

// guessBackendSocket is for a worker known (from wchan alone) to wait on a
// socket without knowing which: if it holds exactly one established TCP
// connection that is neither a listener nor a client connection accepted on
// one, that is it.
func (s *Sampler) guessBackendSocket(pid int, lis listenerCache) (peer, bool) {
	fds, err := s.socketFDs(pid)
	if err != nil || len(fds) == 0 {
		return peer{}, false
	}
	conns, err := s.fs.NetTCP(pid)
	if err != nil {
		return peer{}, false
	}
	var found []procinfo.TCPConn
	for _, c := range conns {
		if fds[c.Inode] && c.State == procinfo.TCPEstablished && !lis.inodes[c.Inode] && !lis.ports[c.LocalPort] {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		return peer{}, false
	}
	return tcpPeer(found[0]), true
}

// socketFDs returns the socket inodes pid holds.
func (s *Sampler) socketFDs(pid int) (map[uint64]bool, error) {
	files, err := s.fs.OpenFiles(pid)
	if err != nil {
		return nil, err
	}
	out := map[uint64]bool{}
	for _, f := range files {
		if f.Socket {
			out[f.Inode] = true
		}
	}
	return out, nil
}

// stuckEvent is the timeline event of a new stuck episode.
func stuckEvent(app string, snap StuckSnapshot, timeout time.Duration, now time.Time) timeline.Event {
	attrs := map[string]string{
		"kind":                  snap.Kind.String(),
		"state":                 snap.State,
		"heartbeat_age_seconds": strconv.FormatFloat(snap.HeartbeatAge.Seconds(), 'f', 3, 64),
		"timeout_seconds":       strconv.FormatFloat(timeout.Seconds(), 'f', 0, 64),
	}
	if snap.Wchan != "" {
		attrs["wchan"] = snap.Wchan
	}
	if snap.Syscall != "" {
		attrs["syscall"] = snap.Syscall
	}
	if snap.Booting {
		attrs["booting"] = "true"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "worker %d stuck for %.1fs of a %gs timeout: %s", snap.PID, snap.HeartbeatAge.Seconds(), timeout.Seconds(), snap.Kind)
	if snap.Peer != "" {
		attrs["peer"] = snap.Peer
		fmt.Fprintf(&b, " from %s", snap.Peer)
		if snap.LocalPort > 0 {
			attrs["local_port"] = strconv.Itoa(snap.LocalPort)
			fmt.Fprintf(&b, " (local port %d)", snap.LocalPort)
		}
		if snap.PeerIsPostgres {
			attrs["peer_is_postgres"] = "true"
			b.WriteString(", PostgreSQL")
		}
		if snap.PeerIsClient {
			attrs["peer_is_client"] = "true"
			b.WriteString(", the app's own client: the request is still arriving")
		}
	}
	fmt.Fprintf(&b, "; state %s", snap.State)
	if snap.Wchan != "" {
		fmt.Fprintf(&b, ", wchan %s", snap.Wchan)
	}
	if snap.Syscall != "" {
		fmt.Fprintf(&b, ", syscall %s", snap.Syscall)
	}
	return timeline.Event{
		Time:   now,
		App:    app,
		Source: EventSource,
		Kind:   EventKindStuck,
		PID:    snap.PID,
		Cause:  snap.Kind.String(),
		Detail: b.String(),
		Attrs:  attrs,
	}
}
