package accesslog

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog/corpus"
)

// benchLines returns n realistic default+%(D)s lines from the corpus
// generator (varied paths with ids, query strings, escaped quotes in user
// agents and referers, a status mix with handle_error lines) and their
// average length.
func benchLines(b *testing.B, n int) ([][]byte, int) {
	b.Helper()
	var buf bytes.Buffer
	if err := corpus.Generate(&buf, n, 42, 2000); err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	return lines, buf.Len() / len(lines)
}

// BenchmarkParseDefaultPlusD is the ingest hot path: Gunicorn's default
// format plus %(D)s. SetBytes makes MB/s the parse throughput.
func BenchmarkParseDefaultPlusD(b *testing.B) {
	p, err := Compile(corpus.Format)
	if err != nil {
		b.Fatal(err)
	}
	lines, avg := benchLines(b, 4096)
	var rec Record
	b.SetBytes(int64(avg))
	b.ReportAllocs()
	b.ResetTimer()
	for i, k := 0, 0; i < b.N; i, k = i+1, k+1 {
		if k == len(lines) {
			k = 0
		}
		if err := p.Parse(lines[k], &rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseEveryAtom uses the 20.1 fixture format (24 atoms).
func BenchmarkParseEveryAtom(b *testing.B) {
	format, err := os.ReadFile("testdata/gunicorn/20.1-lifecycle/format.txt")
	if err != nil {
		b.Fatal(err)
	}
	p, err := Compile(strings.TrimSuffix(string(format), "\n"))
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile("testdata/gunicorn/20.1-lifecycle/access.log")
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	var rec Record
	b.SetBytes(int64(len(data) / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i, k := 0, 0; i < b.N; i, k = i+1, k+1 {
		if k == len(lines) {
			k = 0
		}
		if err := p.Parse(lines[k], &rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseBacktrack measures lines the greedy matcher cannot take: a
// user with spaces and values ending in a backslash.
func BenchmarkParseBacktrack(b *testing.B) {
	p, err := Compile(corpus.Format)
	if err != nil {
		b.Fatal(err)
	}
	line := []byte(`127.0.0.1 - ops [team] x [24/Nov/2026:17:50:12 +0000] "GET /a HTTP/1.1" 200 21 "http://x/\" "agent\" 7`)
	var rec Record
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := p.Parse(line, &rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Compile(corpus.Format); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIngestDefaultPlusD approximates the ingest target without the
// file system: split a 50,000-line buffer into lines, parse each, and put
// trusted durations into a histogram. ns/line is the figure to compare with
// the 0.8 CPU-second budget for 2,000,000 lines (400 ns/line).
func BenchmarkIngestDefaultPlusD(b *testing.B) {
	p, err := Compile(corpus.Format)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := corpus.Generate(&buf, 50000, 7, 5000); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	bounds := [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	var counts [len(bounds) + 1]uint64
	var rec Record
	lines := 0
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for rest := data; len(rest) > 0; {
			j := bytes.IndexByte(rest, '\n')
			if j < 0 {
				j = len(rest)
			}
			if p.Parse(rest[:j], &rec) == nil && rec.DurationTrusted {
				s := rec.Duration.Seconds()
				k := 0
				for k < len(bounds) && s > bounds[k] {
					k++
				}
				counts[k]++
			}
			lines++
			rest = rest[min(j+1, len(rest)):]
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lines), "ns/line")
}
