package errorlog

import (
	"testing"
	"time"
)

func benchLines(b *testing.B) [][]byte {
	var lines [][]byte
	for _, name := range fixtureFiles {
		lines = append(lines, fixtureLines(b, name)...)
	}
	return lines
}

// BenchmarkParseClassify is one op per physical fixture line: header parse,
// then classification of the message when it is a header.
func BenchmarkParseClassify(b *testing.B) {
	lines := benchLines(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h, st := ParseHeader(lines[i%len(lines)], time.UTC)
		if st == HeaderOK {
			Classify(h.Message)
		}
	}
}

// BenchmarkFolderClassify adds record folding (tracebacks, raw lines).
func BenchmarkFolderClassify(b *testing.B) {
	lines := benchLines(b)
	f := Folder{Location: time.UTC}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l := f.Feed(lines[i%len(lines)])
		if l.Kind == LineHeader {
			Classify(l.Header.Message)
		}
	}
}

// BenchmarkParseDefaultHeader is the common case alone.
func BenchmarkParseDefaultHeader(b *testing.B) {
	line := []byte("[2026-11-24 17:50:29 +0000] [20865] [WARNING] Worker with pid 21154 was terminated due to signal 9")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h, _ := ParseHeader(line, time.UTC)
		Classify(h.Message)
	}
}
