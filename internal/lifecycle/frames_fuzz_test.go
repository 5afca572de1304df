package lifecycle

import (
	"strings"
	"testing"
)

// FuzzTimeoutFrames feeds arbitrary traceback lines after a timed-out
// worker's "Error handling request": never a panic, at most one frame
// fact, and its parts bounded and valid UTF-8.
func FuzzTimeoutFrames(f *testing.F) {
	f.Add("  File \"/srv/app/views.py\", line 42, in index\n    time.sleep(9)\n")
	f.Add("  File \"/usr/lib/python3.11/socket.py\", line 7, in recv\n    ^^^^\n")
	f.Add("  File \"\", line , in \n")
	f.Add("  File \"/a\xff.py\", line 99999999999999999999, in f\n")
	f.Fuzz(func(t *testing.T, body string) {
		tr := NewTracker(Options{})
		var facts []Fact
		feed := func(s string) {
			for _, l := range strings.Split(s, "\n") {
				facts = append(facts, tr.ObserveLine([]byte(l))...)
			}
		}
		feed("[2026-12-01 10:00:00 +0000] [2] [INFO] Booting worker with pid: 2\n" +
			"[2026-12-01 10:00:05 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:2)\n" +
			"[2026-12-01 10:00:05 +0000] [2] [ERROR] Error handling request /x\nTraceback (most recent call last):")
		feed(body)
		feed("SystemExit: 1\n[2026-12-01 10:00:05 +0000] [2] [INFO] Worker exiting (pid: 2)")
		n := 0
		for _, fa := range facts {
			if fa.Kind != FactWorkerTimeoutFrame {
				continue
			}
			n++
			for k, v := range fa.Attrs {
				if len(v) > maxFrameText+16 || !utf8Valid(v) {
					t.Fatalf("attr %s = %q", k, v)
				}
			}
		}
		if n > 1 {
			t.Fatalf("%d frame facts for one timeout", n)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }
