package workerstate

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// BenchmarkAtScrape measures what a scrape costs per app now that
// heartbeat ages are read at scrape time: one stat(2) of
// /proc/<pid>/fd/3 per worker. The workers are real processes (sleep)
// holding a file open as fd 3, like a Gunicorn worker its wgunicorn-* file.
func BenchmarkAtScrape(b *testing.B) {
	sleep := testenv.LookPath(b, "sleep")
	fs, err := procinfo.NewFS("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			st := AppState{scrape: &heartbeatRefs{fs: fs, now: time.Now, timeout: 30 * time.Second}}
			for i := range n {
				path := filepath.Join(b.TempDir(), "wgunicorn-bench")
				f, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				cmd := exec.Command(sleep, "600")
				cmd.ExtraFiles = []*os.File{f}
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				var sb syscall.Stat_t
				if err := syscall.Fstat(int(f.Fd()), &sb); err != nil {
					b.Fatal(err)
				}
				_ = f.Close()
				st.PerWorker = append(st.PerWorker, WorkerSample{PID: cmd.Process.Pid, HeartbeatRead: true, Activity: ActivityBusy})
				st.scrape.workers = append(st.scrape.workers, heartbeatRef{
					index: i, pid: cmd.Process.Pid, counted: true,
					hb: procinfo.HeartbeatFD{FD: 3, Path: path, Inode: sb.Ino, Dev: sb.Dev},
				})
			}
			if got := st.AtScrape(); got.HeartbeatsRead != n {
				b.Fatalf("read %d heartbeats of %d", got.HeartbeatsRead, n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				st.AtScrape()
			}
		})
	}
}

// backlogBench opens n listening sockets in the test process, which then
// stands for a master holding them, and returns its identity.
func backlogBench(b *testing.B, n int) (procinfo.FS, procinfo.Identity) {
	fs, err := procinfo.NewFS("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = l.Close() })
	}
	id, err := fs.Identify(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	return fs, id
}

// BenchmarkReadBacklog is what a scrape adds per app for the listen
// backlog (AtScrape calls ReadBacklog): one sock_diag dump of the host's
// listeners, the master's listener set being cached.
func BenchmarkReadBacklog(b *testing.B) {
	fs, id := backlogBench(b, 1)
	s := NewSampler(fs, Options{})
	if got := s.ReadBacklog("app", id); !got.Readable() || !got.MaxKnown {
		b.Fatalf("backlog not read: %+v", got)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.ReadBacklog("app", id)
	}
}

// BenchmarkObserveBacklog is one pass of the 100 ms peak loop: one dump for
// all apps.
func BenchmarkObserveBacklog(b *testing.B) {
	for _, apps := range []int{1, 8} {
		b.Run(fmt.Sprintf("apps=%d", apps), func(b *testing.B) {
			fs, id := backlogBench(b, 1)
			s := NewSampler(fs, Options{})
			masters := map[string]procinfo.Identity{}
			for i := range apps {
				masters[fmt.Sprintf("app%d", i)] = id
			}
			s.ObserveBacklog(masters)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				s.ObserveBacklog(masters)
			}
		})
	}
}

// BenchmarkBacklogFromNetTCP is the fallback for a master in another
// network namespace: /proc/<pid>/net/tcp and tcp6 read and parsed whole,
// whose cost grows with the host's connections.
func BenchmarkBacklogFromNetTCP(b *testing.B) {
	fs, id := backlogBench(b, 1)
	s := NewSampler(fs, Options{})
	s.listenQueues = nil
	if got := s.ReadBacklog("app", id); !got.Readable() || got.MaxKnown {
		b.Fatalf("backlog not read from net/tcp: %+v", got)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.ReadBacklog("app", id)
	}
}
