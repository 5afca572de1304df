package lifecycle

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzTracker feeds arbitrary streams and checks the invariants the
// collectors rely on.
func FuzzTracker(f *testing.F) {
	names, err := filepath.Glob(filepath.Join("testdata", "gunicorn", "*", "*.log"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[1] [CRITICAL] WORKER TIMEOUT (pid:2)\n[1] [ERROR] Worker (pid:2) was sent SIGKILL! Perhaps out of memory?\n[3] [INFO] Booting worker with pid: 3\n"))
	f.Add([]byte("--- Logging error ---\nMessage: 'Worker with pid %s was terminated due to signal %s'\nArguments: (7, 9)\n"))
	kinds := map[string]bool{}
	for _, k := range AllFactKinds {
		kinds[k] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wall := wallStart
		tr := NewTracker(Options{Now: func() time.Time { return wall }, MaxTrackedPIDs: 32, Location: time.UTC})
		exited := map[int]bool{}
		check := func(fs []Fact) {
			for _, fa := range fs {
				if !kinds[fa.Kind] {
					t.Fatalf("fact kind %q", fa.Kind)
				}
				if fa.Kind == FactWorkerExit && fa.PID != 0 {
					if exited[fa.PID] && !bytes.Contains(data, []byte("Booting worker")) {
						t.Fatalf("pid %d exited twice without a boot in between", fa.PID)
					}
					exited[fa.PID] = true
				}
			}
		}
		for i, line := range bytes.Split(data, []byte("\n")) {
			check(tr.ObserveLine(line))
			if i%7 == 0 {
				wall = wall.Add(time.Second)
				check(tr.Flush(wall))
			}
		}
		check(tr.Flush(wall.Add(time.Hour)))
		if tr.Pending() != 0 {
			t.Fatalf("%d pending after the final flush", tr.Pending())
		}
		c := tr.Snapshot()
		var sigs uint64
		for _, s := range AllSignals {
			sigs += c.WorkerSignals[s]
		}
		if sigs != c.Exits[ExitSIGKILL]+c.Exits[ExitSignal] {
			t.Fatalf("signals %v for exits %v", c.WorkerSignals, c.Exits)
		}
		if len(tr.workers) > 32 {
			t.Fatalf("%d workers kept", len(tr.workers))
		}
	})
}
