package procinfo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ListenQueue is the accept queue of one listening socket, as the kernel's
// sock_diag netlink interface reports it (what `ss -l` shows).
type ListenQueue struct {
	Inode uint64
	// Network is "tcp" or "unix".
	Network string
	// Queued is the connections waiting to be accepted: sk_ack_backlog for
	// TCP (ss's Recv-Q, and the rx_queue column of a LISTEN row of
	// /proc/net/tcp), the length of the receive queue for unix sockets
	// (which /proc/net/unix does not show).
	Queued uint32
	// Max is the ceiling, sk_max_ack_backlog: listen(2)'s backlog argument
	// (Gunicorn's --backlog) clamped to net.core.somaxconn (ss's Send-Q).
	// /proc/net/tcp does not show it: its tx_queue column of a LISTEN row is
	// write_seq − snd_una, always 0.
	Max uint32
}

// sock_diag ABI (include/uapi/linux/inet_diag.h, unix_diag.h).
const (
	sizeofInetDiagReqV2 = 56 // family, protocol, ext, pad, states, inet_diag_sockid (48)
	sizeofInetDiagMsg   = 72 // family, state, timer, retrans, sockid (48), expires, rqueue, wqueue, uid, inode
	sizeofUnixDiagReq   = 24 // family, protocol, pad, states, ino, show, cookie[2]
	sizeofUnixDiagMsg   = 16 // family, type, state, pad, ino, cookie[2]

	udiagShowRQLen = 0x10 // UDIAG_SHOW_RQLEN
	unixDiagRQLen  = 4    // UNIX_DIAG_RQLEN: struct unix_diag_rqlen {rqueue, wqueue}

	tcpListenState = 10 // TCP_LISTEN, also the state of a listening unix socket
)

var diagSeq atomic.Uint32

// diagBufs holds receive buffers: the dump runs ten times a second.
var diagBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ListenQueues returns the accept queue of every listening TCP (IPv4 and
// IPv6) and unix socket of the caller's network namespace, by socket inode,
// from one NETLINK_SOCK_DIAG dump per family filtered to the LISTEN state
// (so the cost follows the number of listeners, not of connections). It
// needs no privilege. Sockets of another network namespace (a Gunicorn in
// a container) are not in it; socket inodes are unique host-wide, so a
// listener missing from the map is one this namespace cannot see. A kernel
// without unix_diag (CONFIG_UNIX_DIAG) answers ENOENT for the unix dump:
// the TCP entries are returned with an error wrapping it.
func ListenQueues() (map[uint64]ListenQueue, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: socket: %w", err)
	}
	defer unix.Close(fd)
	out := map[uint64]ListenQueue{}
	bp := diagBufs.Get().(*[]byte)
	defer diagBufs.Put(bp)
	buf := *bp
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		req := make([]byte, sizeofInetDiagReqV2)
		req[0], req[1] = fam, unix.IPPROTO_TCP
		binary.NativeEndian.PutUint32(req[4:], 1<<tcpListenState)
		err := dump(fd, req, buf, func(m []byte) {
			if len(m) < sizeofInetDiagMsg || m[1] != tcpListenState {
				return
			}
			ino := uint64(binary.NativeEndian.Uint32(m[68:]))
			out[ino] = ListenQueue{Inode: ino, Network: "tcp",
				Queued: binary.NativeEndian.Uint32(m[56:]), Max: binary.NativeEndian.Uint32(m[60:])}
		})
		// EAFNOSUPPORT or ENOENT: a kernel without IPv6 or inet_diag for it.
		if err != nil && !(fam == unix.AF_INET6 && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EAFNOSUPPORT))) {
			return out, fmt.Errorf("sock_diag: tcp dump: %w", err)
		}
	}
	req := make([]byte, sizeofUnixDiagReq)
	req[0] = unix.AF_UNIX
	binary.NativeEndian.PutUint32(req[4:], 1<<tcpListenState)
	binary.NativeEndian.PutUint32(req[12:], udiagShowRQLen)
	binary.NativeEndian.PutUint32(req[16:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	binary.NativeEndian.PutUint32(req[20:], ^uint32(0))
	err = dump(fd, req, buf, func(m []byte) {
		if len(m) < sizeofUnixDiagMsg || m[2] != tcpListenState {
			return
		}
		ino := uint64(binary.NativeEndian.Uint32(m[4:]))
		for attrs := m[sizeofUnixDiagMsg:]; len(attrs) >= 4; {
			n, typ := int(binary.NativeEndian.Uint16(attrs)), binary.NativeEndian.Uint16(attrs[2:])
			if n < 4 || n > len(attrs) {
				return
			}
			if typ == unixDiagRQLen && n >= 12 {
				out[ino] = ListenQueue{Inode: ino, Network: "unix",
					Queued: binary.NativeEndian.Uint32(attrs[4:]), Max: binary.NativeEndian.Uint32(attrs[8:])}
			}
			attrs = attrs[min(nlAlign(n), len(attrs)):]
		}
	})
	if err != nil {
		return out, fmt.Errorf("sock_diag: unix dump: %w", err)
	}
	return out, nil
}

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// dump sends one SOCK_DIAG_BY_FAMILY dump request and calls each with the
// payload of every answer, until NLMSG_DONE.
func dump(fd int, req, buf []byte, each func([]byte)) error {
	seq := diagSeq.Add(1)
	msg := make([]byte, unix.NLMSG_HDRLEN+len(req))
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	copy(msg[unix.NLMSG_HDRLEN:], req)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		for b := buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(b))
			typ := binary.NativeEndian.Uint16(b[4:])
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return errors.New("receive: truncated netlink message")
			}
			payload, mseq := b[unix.NLMSG_HDRLEN:l], binary.NativeEndian.Uint32(b[8:])
			b = b[min(nlAlign(l), len(b)):]
			if mseq != seq {
				continue // a late answer to an earlier request
			}
			switch typ {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(payload) < 4 {
					return errors.New("receive: short netlink error")
				}
				if e := int32(binary.NativeEndian.Uint32(payload)); e != 0 {
					return unix.Errno(-e)
				}
				return nil
			default:
				each(payload)
			}
		}
	}
}
