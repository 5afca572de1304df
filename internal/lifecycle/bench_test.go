package lifecycle

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkObserveLine is one op per line of the 20.1 lifecycle fixture,
// replayed in a loop (pids repeat, so boots also exercise pid reuse).
func BenchmarkObserveLine(b *testing.B) {
	data := readFixtureB(b, "20.1-lifecycle/error.log")
	lines := strings.Split(strings.TrimSpace(data), "\n")
	raw := make([][]byte, len(lines))
	for i, l := range lines {
		raw[i] = []byte(l)
	}
	tr := NewTracker(Options{Now: func() time.Time { return wallStart }})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr.ObserveLine(raw[i%len(raw)])
	}
}
