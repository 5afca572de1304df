package errorlog

import (
	"testing"
	"time"
)

func TestParseHeader(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		name     string
		line     string
		status   HeaderStatus
		pid      int
		level    Level
		msg      string
		hasTime  bool
		time     time.Time
		timeText string
	}{
		{
			name: "default datefmt", line: "[2026-11-24 17:49:25 +0000] [20865] [INFO] Starting gunicorn 20.1.0",
			status: HeaderOK, pid: 20865, level: LevelInfo, msg: "Starting gunicorn 20.1.0",
			hasTime: true, time: utc("2026-11-24T17:49:25Z"), timeText: "[2026-11-24 17:49:25 +0000]",
		},
		{
			name: "negative offset", line: "[2026-11-24 12:49:25 -0500] [7] [CRITICAL] WORKER TIMEOUT (pid:8)",
			status: HeaderOK, pid: 7, level: LevelCritical, msg: "WORKER TIMEOUT (pid:8)",
			hasTime: true, time: utc("2026-11-24T17:49:25Z"), timeText: "[2026-11-24 12:49:25 -0500]",
		},
		{
			name: "datefmt without brackets", line: "2026-11-24 17:49:25 +0100 [20865] [WARNING] x",
			status: HeaderOK, pid: 20865, level: LevelWarning, msg: "x",
			hasTime: true, time: utc("2026-11-24T16:49:25Z"), timeText: "2026-11-24 17:49:25 +0100",
		},
		{
			name: "ISO 8601 with T, milliseconds and Z", line: "2026-11-24T17:49:25.123Z [1] [DEBUG] 2 workers",
			status: HeaderOK, pid: 1, level: LevelDebug, msg: "2 workers",
			hasTime: true, time: utc("2026-11-24T17:49:25.123Z"), timeText: "2026-11-24T17:49:25.123Z",
		},
		{
			name: "ISO 8601 with microseconds and +01:00", line: "[2026-11-24T18:49:25.123456+01:00] [1] [ERROR] e",
			status: HeaderOK, pid: 1, level: LevelError, msg: "e",
			hasTime: true, time: utc("2026-11-24T17:49:25.123456Z"), timeText: "[2026-11-24T18:49:25.123456+01:00]",
		},
		{
			name: "Python asctime default with comma milliseconds and no zone", line: "2026-11-24 18:49:25,042 [1] [INFO] m",
			status: HeaderOK, pid: 1, level: LevelInfo, msg: "m",
			hasTime: true, time: time.Date(2026, 11, 24, 18, 49, 25, 42000000, berlin), timeText: "2026-11-24 18:49:25,042",
		},
		{
			name: "zone name", line: "[2026-11-24 17:49:25 UTC] [1] [INFO] m",
			status: HeaderOK, pid: 1, level: LevelInfo, msg: "m",
			hasTime: true, time: utc("2026-11-24T17:49:25Z"), timeText: "[2026-11-24 17:49:25 UTC]",
		},
		{
			name: "access-log style datefmt", line: "[24/Nov/2026:17:49:25 +0000] [1] [INFO] m",
			status: HeaderOK, pid: 1, level: LevelInfo, msg: "m",
			hasTime: true, time: utc("2026-11-24T17:49:25Z"), timeText: "[24/Nov/2026:17:49:25 +0000]",
		},
		{
			name: "no date at all", line: "[20865] [INFO] Booting worker with pid: 20867",
			status: HeaderOK, pid: 20865, level: LevelInfo, msg: "Booting worker with pid: 20867",
		},
		{
			name: "time of day only", line: "17:49:25 [20865] [INFO] m",
			status: HeaderOK, pid: 20865, level: LevelInfo, msg: "m", timeText: "17:49:25",
		},
		{
			name: "epoch seconds in brackets", line: "[1795542794] [20865] [INFO] m",
			status: HeaderOK, pid: 20865, level: LevelInfo, msg: "m", timeText: "[1795542794]",
		},
		{
			name: "CRLF and newline", line: "[2026-11-24 17:49:25 +0000] [2] [INFO] m\r\n",
			status: HeaderOK, pid: 2, level: LevelInfo, msg: "m",
			hasTime: true, time: utc("2026-11-24T17:49:25Z"), timeText: "[2026-11-24 17:49:25 +0000]",
		},
		{
			name: "empty message", line: "[2026-11-24 17:49:25 +0000] [2] [INFO]",
			status: HeaderOK, pid: 2, level: LevelInfo, msg: "",
			hasTime: true, time: utc("2026-11-24T17:49:25Z"), timeText: "[2026-11-24 17:49:25 +0000]",
		},
		{
			name: "message holding brackets", line: "[2026-11-24 17:49:25 +0000] [2] [INFO] [3] [ERROR] x",
			status: HeaderOK, pid: 2, level: LevelInfo, msg: "[3] [ERROR] x",
			hasTime: true, time: utc("2026-11-24T17:49:25Z"), timeText: "[2026-11-24 17:49:25 +0000]",
		},
		{
			name: "unreadable time text still a header", line: "[2026-13-45 99:99:99 +0000] [2] [INFO] x",
			status: HeaderOK, pid: 2, level: LevelInfo, msg: "x", timeText: "[2026-13-45 99:99:99 +0000]",
		},

		{name: "traceback frame", line: `  File "/srv/app/app.py", line 12, in app`, status: NotHeader},
		{name: "traceback head", line: "Traceback (most recent call last):", status: NotHeader},
		{name: "exception line", line: "RuntimeError: boom from /error", status: NotHeader},
		{name: "raw stderr print", line: "Failed to find attribute 'nosuchattr' in 'app'.", status: NotHeader},
		{name: "python warning", line: "<frozen os>:1031: RuntimeWarning: line buffering (buffering=1) isn't supported", status: NotHeader},
		{name: "list print", line: "[1, 2, 3]", status: NotHeader},
		{name: "app's own log format", line: "2026-11-24 17:49:25,123 INFO app: hello", status: NotHeader},
		{name: "empty", line: "", status: NotHeader},
		{name: "config dump line", line: "  workers: 1", status: NotHeader},

		{name: "truncated write", line: "[2026-11-24 17:49:25 +0000] [20865] [INF", status: MalformedHeader},
		{name: "truncated before pid", line: "[2026-11-24 17:49:25 +0000] [208", status: MalformedHeader},
		{name: "unknown level", line: "[2026-11-24 17:49:25 +0000] [20865] [NOTICE] x", status: MalformedHeader},
		{name: "lower-case level", line: "[20865] [info] x", status: NotHeader},
		{name: "pid zero", line: "[2026-11-24 17:49:25 +0000] [0] [INFO] x", status: MalformedHeader},
		{name: "pid too long", line: "[2026-11-24 17:49:25 +0000] [123456789012] [INFO] x", status: MalformedHeader},
		{name: "no space after level", line: "[2026-11-24 17:49:25 +0000] [1] [INFO]x", status: MalformedHeader},
		{name: "skeleton without default time", line: "garbage [12] [WARN] x", status: MalformedHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, st := ParseHeader([]byte(tc.line), berlin)
			if st != tc.status {
				t.Fatalf("status = %d, want %d", st, tc.status)
			}
			if st != HeaderOK {
				return
			}
			if h.PID != tc.pid || h.Level != tc.level || string(h.Message) != tc.msg {
				t.Errorf("got pid=%d level=%s msg=%q, want pid=%d level=%s msg=%q", h.PID, h.Level, h.Message, tc.pid, tc.level, tc.msg)
			}
			if h.HasTime != tc.hasTime || (tc.hasTime && !h.Time.Equal(tc.time)) {
				t.Errorf("time = %v (has %v), want %v (has %v)", h.Time, h.HasTime, tc.time, tc.hasTime)
			}
			if string(h.TimeText) != tc.timeText {
				t.Errorf("time text = %q, want %q", h.TimeText, tc.timeText)
			}
		})
	}
}

func TestParseHeaderNilLocationIsLocal(t *testing.T) {
	h, st := ParseHeader([]byte("2026-11-24 17:49:25 [1] [INFO] m"), nil)
	if st != HeaderOK || !h.HasTime {
		t.Fatalf("status %d has time %v", st, h.HasTime)
	}
	if want := time.Date(2026, 11, 24, 17, 49, 25, 0, time.Local); !h.Time.Equal(want) {
		t.Errorf("time = %v, want %v", h.Time, want)
	}
}

func TestLevelNames(t *testing.T) {
	want := []string{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
	for i, l := range AllLevels {
		if l.String() != want[i] {
			t.Errorf("level %d String = %q", i, l)
		}
		if got, ok := parseLevel([]byte(want[i])); !ok || got != l {
			t.Errorf("parseLevel(%q) = %v %v", want[i], got, ok)
		}
		if l.Label() == "" || l.Label() == "unknown" {
			t.Errorf("level %d has no label", i)
		}
	}
	if Level(NumLevels).String() != "UNKNOWN" || Level(NumLevels).Label() != "unknown" {
		t.Error("out-of-range level not reported as unknown")
	}
}

func TestParseHeaderDoesNotAllocate(t *testing.T) {
	line := []byte("[2026-11-24 17:49:25 +0000] [20865] [INFO] Booting worker with pid: 20867")
	iso := []byte("2026-11-24T17:49:25.123+01:00 [20865] [INFO] Booting worker with pid: 20867")
	allocs := testing.AllocsPerRun(1000, func() {
		ParseHeader(line, time.UTC)
		ParseHeader(iso, time.UTC)
	})
	if allocs != 0 {
		t.Errorf("ParseHeader allocates %.1f times per call", allocs)
	}
}
