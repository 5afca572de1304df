package workerstate

import (
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// listenerRefresh is how long a master's listening sockets are cached
// (reading /proc/<pid>/net/tcp costs on a host with many connections).
const listenerRefresh = 30 * time.Second

type listenerCache struct {
	master procKey
	at     time.Time
	inodes map[uint64]bool
	ports  map[int]bool
	tcp    []procinfo.Listener
	unix   map[string]bool // listening unix socket paths
	err    error
}

// listeners returns the master's listening socket inodes, cached for
// listenerRefresh (reading /proc/<pid>/net/tcp costs on a busy host).
func (s *Sampler) listeners(app string, master procinfo.Identity, now time.Time) listenerCache {
	mkey := procKey{master.PID, master.StartTicks}
	s.mu.Lock()
	c := s.app(app).lis
	s.mu.Unlock()
	if c.master == mkey && c.err == nil && now.Sub(c.at) < listenerRefresh && now.Sub(c.at) >= 0 {
		return c
	}
	c = listenerCache{master: mkey, at: now, inodes: map[uint64]bool{}, ports: map[int]bool{}, unix: map[string]bool{}}
	ls, err := s.fs.Listeners(master.PID)
	if err != nil {
		c.err = err
	}
	for _, l := range ls {
		c.inodes[l.Inode] = true
		switch {
		case l.Network == "tcp":
			c.ports[l.Port] = true
			c.tcp = append(c.tcp, l)
		case l.Network == "unix" && l.Addr != "":
			c.unix[l.Addr] = true
		}
	}
	s.mu.Lock()
	s.app(app).lis = c
	s.mu.Unlock()
	return c
}
