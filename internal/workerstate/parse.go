package workerstate

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// epollTarget is one "tfd:" line of /proc/<pid>/fdinfo/<epoll fd>.
type epollTarget struct {
	FD    int
	Inode uint64
}

// parseEpollFdinfo parses the "tfd: N events: E data: D pos:P ino:I sdev:S"
// lines of an epoll instance's fdinfo (fs/eventpoll.c ep_show_fdinfo; ino is
// hex).
func parseEpollFdinfo(b []byte) []epollTarget {
	var out []epollTarget
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "tfd:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		fd, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		t := epollTarget{FD: fd}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "ino:"); ok {
				if ino, err := strconv.ParseUint(v, 16, 64); err == nil {
					t.Inode = ino
				}
			}
		}
		out = append(out, t)
	}
	return out
}

// maxWaitFDs bounds the fd_set and pollfd array read from a process: the
// classic FD_SETSIZE. A poll over more is read only in part.
const maxWaitFDs = 1024

// fdSetBytes is how many bytes of an fd_set cover nfds descriptors (the
// kernel reads whole longs).
func fdSetBytes(nfds uint64) int {
	n := min(nfds, maxWaitFDs)
	return int((n + 63) / 64 * 8)
}

// decodeFDSet returns the descriptors below nfds set in an fd_set (an array
// of native-endian 64-bit words).
func decodeFDSet(b []byte, nfds uint64) []int {
	var fds []int
	n := min(nfds, maxWaitFDs, uint64(len(b))*8)
	for w := 0; w*64 < int(n) && (w+1)*8 <= len(b); w++ {
		word := binary.NativeEndian.Uint64(b[w*8:])
		for bit := 0; bit < 64 && w*64+bit < int(n); bit++ {
			if word&(1<<bit) != 0 {
				fds = append(fds, w*64+bit)
			}
		}
	}
	return fds
}

// pollfdSize is sizeof(struct pollfd): int fd; short events; short revents.
const pollfdSize = 8

// decodePollFDs returns the non-negative fds of a struct pollfd array.
func decodePollFDs(b []byte) []int {
	var fds []int
	for i := 0; i+pollfdSize <= len(b); i += pollfdSize {
		fd := int32(binary.NativeEndian.Uint32(b[i:]))
		if fd >= 0 {
			fds = append(fds, int(fd))
		}
	}
	return fds
}
