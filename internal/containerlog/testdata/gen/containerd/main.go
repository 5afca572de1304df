package main

import (
	"io"
	"os"
	"sync"

	criio "github.com/containerd/containerd/pkg/cri/io"
)

// main copies stdout.log and stderr.log (Gunicorn captures) into one CRI
// log with containerd's own CRI logger (16 KiB splits, P/F tags).
func main() {
	f, err := os.OpenFile(os.Args[3], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	w := lockedWriter{f: f, mu: &mu}
	var wg sync.WaitGroup
	for _, s := range []struct {
		path   string
		stream criio.StreamType
	}{{os.Args[1], criio.Stdout}, {os.Args[2], criio.Stderr}} {
		in, err := os.Open(s.path)
		if err != nil {
			panic(err)
		}
		wc, done := criio.NewCRILogger(os.Args[3], w, s.stream, 16*1024)
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(wc, in)
			wc.Close()
			<-done
		}()
	}
	wg.Wait()
	f.Close()
}

type lockedWriter struct {
	f  *os.File
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}
