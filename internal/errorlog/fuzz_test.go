package errorlog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"
)

var fuzzSeedLines = []string{
	"[2026-11-24 17:49:25 +0000] [20865] [INFO] Starting gunicorn 20.1.0",
	"2026-11-24T17:49:25.123Z [1] [DEBUG] 2 workers",
	"[20865] [CRITICAL] WORKER TIMEOUT (pid:21151)",
	"[24/Nov/2026:17:49:25 +0000] [1] [ERROR] Worker (pid:5) was sent code 134!",
	"[2026-11-24 17:49:25 +0000] [20865] [INF",
	"--- Logging error ---",
	"Message: 'Worker with pid %s was terminated due to signal %s'",
	"Arguments: (21154, 9)",
	"<frozen os>:1031: RuntimeWarning: x",
	"\x00",
}

func addFixtureSeeds(f *testing.F, perLine bool) {
	for _, name := range fixtureFiles {
		data, err := os.ReadFile(filepath.Join("testdata", "gunicorn", name))
		if err != nil {
			f.Fatal(err)
		}
		if !perLine {
			f.Add(data)
			continue
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			f.Add(line)
		}
	}
	for _, s := range fuzzSeedLines {
		f.Add([]byte(s))
	}
}

// FuzzParseLine parses one line and classifies its message.
func FuzzParseLine(f *testing.F) {
	addFixtureSeeds(f, true)
	f.Fuzz(func(t *testing.T, line []byte) {
		h, st := ParseHeader(line, time.UTC)
		switch st {
		case NotHeader, MalformedHeader:
			if h.PID != 0 || h.Message != nil {
				t.Fatalf("non-header returned a header %+v", h)
			}
		case HeaderOK:
			if h.PID <= 0 || h.PID > maxPID {
				t.Fatalf("pid %d", h.PID)
			}
			if int(h.Level) >= NumLevels {
				t.Fatalf("level %d", h.Level)
			}
			trimmed := trimEOL(line)
			if !bytes.HasSuffix(trimmed, h.Message) {
				t.Fatalf("message %q is not the end of %q", h.Message, trimmed)
			}
			if !bytes.Contains(trimmed[:len(trimmed)-len(h.Message)], h.TimeText) || len(h.TimeText) > maxTimePrefix {
				t.Fatalf("time text %q", h.TimeText)
			}
			if h.HasTime && (h.Time.Year() < 0 || h.Time.Year() > 10000) {
				t.Fatalf("time %v", h.Time)
			}
			checkEvent(t, h.Message)
		default:
			t.Fatalf("status %d", st)
		}
		checkEvent(t, line)
	})
}

func checkEvent(t *testing.T, msg []byte) {
	t.Helper()
	ev := Classify(msg)
	if int(ev.Kind) >= NumEventKinds {
		t.Fatalf("kind %d", ev.Kind)
	}
	if ev.Arg != nil && !bytes.Contains(msg, ev.Arg) {
		t.Fatalf("arg %q not in %q", ev.Arg, msg)
	}
	switch ev.Kind {
	case EventWorkerTimeout, EventWorkerBoot, EventWorkerExiting, EventWorkerSignaled, EventWorkerExitCode, EventWorkerGracefulTimeout:
		if ev.PID <= 0 || ev.PID > maxPID {
			t.Fatalf("%s with pid %d from %q", ev.Kind, ev.PID, msg)
		}
	default:
		if ev.PID < 0 {
			t.Fatalf("negative pid")
		}
	}
	if ev.Kind == EventWorkerSignaled && (ev.Num < 0 || ev.Num > 127) {
		t.Fatalf("signal %d", ev.Num)
	}
	if ev.Num < 0 {
		t.Fatalf("num %d", ev.Num)
	}
}

// FuzzFolder feeds a whole stream, line by line.
func FuzzFolder(f *testing.F) {
	addFixtureSeeds(f, false)
	f.Fuzz(func(t *testing.T, data []byte) {
		var fo Folder
		fo.Location = time.UTC
		check := func(r Record) {
			if r.Lines < 0 || len(r.Exception) > MaxExceptionLen {
				t.Fatalf("record %+v", r)
			}
			if r.Block == BlockNone && (r.Lines != 0 || r.Exception != nil) {
				t.Fatalf("empty record with content %+v", r)
			}
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			l := fo.Feed(line)
			check(l.Closed)
			switch l.Kind {
			case LineHeader:
				if l.Header.PID <= 0 {
					t.Fatalf("header pid %d", l.Header.PID)
				}
				if _, st := ParseHeader(line, time.UTC); st != HeaderOK {
					t.Fatalf("folder header that ParseHeader rejects: %q", line)
				}
			case LineContinuation, LineRaw, LineLoggingError, LineMalformed:
			default:
				t.Fatalf("line kind %d", l.Kind)
			}
			if len(l.Recovered) > maxRecovered {
				t.Fatalf("recovered %d bytes", len(l.Recovered))
			}
			if l.Recovered != nil {
				checkEvent(t, l.Recovered)
			}
			if utf8.Valid(line) && l.Closed.Exception != nil && !utf8.Valid(l.Closed.Exception) && utf8.Valid(data) {
				t.Fatalf("exception cut inside a rune: %q", l.Closed.Exception)
			}
		}
		check(fo.Flush())
	})
}
