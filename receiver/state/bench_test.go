package state

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSave measures one durable save (temp file, fsync, rename, fsync
// of the directory) of a state holding 1000 idempotency keys, about what a
// busy day's alerts leave before their keys expire.
func BenchmarkSave(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "state.json"), t0)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	st := sample()
	for i := range 1000 {
		st.Keys[fmt.Sprintf("scale_up|shop|%016x|%d", i, i)] = t0.Add(time.Duration(i) * time.Second)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Save(st, t0); err != nil {
			b.Fatal(err)
		}
	}
}
