package policy

import (
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// BenchmarkDecideDuplicate is the hot path of a retry storm: an alert
// whose key was decided already.
func BenchmarkDecideDuplicate(b *testing.B) {
	f := newFeeder(&testing.T{})
	a := f.alert(intent.ScaleUp, time.Minute)
	f.fire(a)
	b.ReportAllocs()
	for b.Loop() {
		if d := Decide(f.now, a, f.rules, f.global, f.st, f.obs); d.Outcome != intent.OutcomeDeduplicated {
			b.Fatal(d.Outcome)
		}
	}
}

// BenchmarkDecideActed runs every rule down to rule 16.
func BenchmarkDecideActed(b *testing.B) {
	f := newFeeder(&testing.T{})
	a := f.alert(intent.ScaleUp, time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if d := Decide(f.now, a, f.rules, f.global, f.st, f.obs); d.Outcome != intent.OutcomeActed {
			b.Fatal(d.Outcome)
		}
	}
}
