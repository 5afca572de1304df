package workerstate

import (
	"fmt"
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
