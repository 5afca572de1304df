package errorlog

import (
	"strings"
	"testing"
	"time"
)

// step is one line fed to a Folder and what must come out.
type step struct {
	line      string
	kind      LineKind
	block     Block
	raw       RawKind
	recovered string // "" means none expected
	// closed describes Line.Closed when closedBlock is not BlockNone.
	closedBlock Block
	closedLines int
	closedExc   string
}

func runSteps(t *testing.T, steps []step) {
	t.Helper()
	f := Folder{Location: time.UTC}
	for i, s := range steps {
		l := f.Feed([]byte(s.line))
		if l.Kind != s.kind || l.Block != s.block || l.Raw != s.raw {
			t.Errorf("line %d %q: got kind=%s block=%s raw=%s, want kind=%s block=%s raw=%s",
				i, s.line, l.Kind, l.Block, l.Raw, s.kind, s.block, s.raw)
		}
		if string(l.Recovered) != s.recovered || (s.recovered == "" && l.Recovered != nil) {
			t.Errorf("line %d %q: recovered %q, want %q", i, s.line, l.Recovered, s.recovered)
		}
		if l.Closed.Block != s.closedBlock {
			t.Errorf("line %d %q: closed %s, want %s", i, s.line, l.Closed.Block, s.closedBlock)
			continue
		}
		if s.closedBlock != BlockNone && (l.Closed.Lines != s.closedLines || string(l.Closed.Exception) != s.closedExc) {
			t.Errorf("line %d %q: closed lines=%d exc=%q, want lines=%d exc=%q",
				i, s.line, l.Closed.Lines, l.Closed.Exception, s.closedLines, s.closedExc)
		}
	}
}

const (
	hdrErr  = "[2026-11-24 17:50:12 +0000] [20868] [ERROR] Error handling request /error"
	hdrNext = "[2026-11-24 17:50:14 +0000] [20865] [INFO] Handling signal: ttin"
)

func TestFolderTraceback(t *testing.T) {
	cont := func(line string) step { return step{line: line, kind: LineContinuation, block: BlockRecord} }
	runSteps(t, []step{
		{line: hdrErr, kind: LineHeader, block: BlockRecord},
		cont("Traceback (most recent call last):"),
		cont(`  File "/usr/lib/python3/dist-packages/gunicorn/workers/sync.py", line 136, in handle`),
		cont("    self.handle_request(listener, req, client, addr)"),
		cont("               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"),
		cont("RuntimeError: boom from /error"),
		{line: hdrNext, kind: LineHeader, block: BlockRecord, closedBlock: BlockRecord, closedLines: 5, closedExc: "RuntimeError: boom from /error"},
	})
}

func TestFolderChainedTraceback(t *testing.T) {
	cont := func(line string) step { return step{line: line, kind: LineContinuation, block: BlockRecord} }
	runSteps(t, []step{
		{line: hdrErr, kind: LineHeader, block: BlockRecord},
		cont("Traceback (most recent call last):"),
		cont(`  File "a.py", line 1, in f`),
		cont("KeyError: 'a'"),
		cont(""),
		cont(duringHandling),
		cont(""),
		cont("Traceback (most recent call last):"),
		cont(`  File "b.py", line 2, in g`),
		cont("ValueError: b"),
		{line: "Some later print", kind: LineRaw, block: BlockRaw, raw: RawText, closedBlock: BlockRecord, closedLines: 9, closedExc: "ValueError: b"},
	})
}

func TestFolderConfigDump(t *testing.T) {
	runSteps(t, []step{
		{line: "[2026-11-24 17:54:55 +0000] [23032] [DEBUG] Current configuration:", kind: LineHeader, block: BlockRecord},
		{line: "  config: ./gunicorn.conf.py", kind: LineContinuation, block: BlockRecord},
		{line: "  dogstatsd_tags: ", kind: LineContinuation, block: BlockRecord},
		{line: "\tworkers: 1", kind: LineContinuation, block: BlockRecord},
		{line: "[2026-11-24 17:54:55 +0000] [23032] [INFO] Starting gunicorn 20.1.0", kind: LineHeader, block: BlockRecord, closedBlock: BlockRecord, closedLines: 3},
	})
}

func TestFolderRawOutput(t *testing.T) {
	runSteps(t, []step{
		// A print after a header that expects no continuation is raw, not
		// part of the "Booting worker" record.
		{line: "[2026-11-24 17:55:11 +0000] [23247] [INFO] Booting worker with pid: 23247", kind: LineHeader, block: BlockRecord},
		{line: "Failed to find attribute 'nosuchattr' in 'app'.", kind: LineRaw, block: BlockRaw, raw: RawText, closedBlock: BlockRecord},
		{line: "[2026-11-24 17:55:11 +0000] [23247] [INFO] Worker exiting (pid: 23247)", kind: LineHeader, block: BlockRecord, closedBlock: BlockRaw},
		// A Python warning and its indented source line.
		{line: "<frozen os>:1031: RuntimeWarning: line buffering (buffering=1) isn't supported in binary mode, the default buffer size will be used", kind: LineRaw, block: BlockRaw, raw: RawWarning, closedBlock: BlockRecord},
		{line: "  warnings.warn(msg)", kind: LineContinuation, block: BlockRaw, raw: RawWarning},
		{line: "/srv/app/app.py:3: DeprecationWarning: old", kind: LineRaw, block: BlockRaw, raw: RawWarning, closedBlock: BlockRaw, closedLines: 1},
		// A blank line outside a record opens nothing.
		{line: "", kind: LineRaw, block: BlockNone, raw: RawBlank, closedBlock: BlockRaw},
		{line: "   ", kind: LineRaw, block: BlockNone, raw: RawBlank},
		// An uncaught exception in a thread, printed by the interpreter.
		{line: "Exception in thread Thread-1:", kind: LineRaw, block: BlockRaw, raw: RawText},
		{line: "Traceback (most recent call last):", kind: LineContinuation, block: BlockRaw, raw: RawText},
		{line: `  File "t.py", line 1, in run`, kind: LineContinuation, block: BlockRaw, raw: RawText},
		{line: "OSError: x", kind: LineContinuation, block: BlockRaw, raw: RawText},
		{line: "Traceback (most recent call last):", kind: LineContinuation, block: BlockRaw, raw: RawText},
		{line: "ZeroDivisionError: division by zero", kind: LineContinuation, block: BlockRaw, raw: RawText},
		{line: "next print", kind: LineRaw, block: BlockRaw, raw: RawText, closedBlock: BlockRaw, closedLines: 5, closedExc: "ZeroDivisionError: division by zero"},
		{line: "", kind: LineRaw, block: BlockNone, raw: RawBlank, closedBlock: BlockRaw},
		// A traceback with no block open.
		{line: "Traceback (most recent call last):", kind: LineRaw, block: BlockRaw, raw: RawTraceback},
		{line: "SystemExit: 1", kind: LineContinuation, block: BlockRaw, raw: RawTraceback},
	})
}

func TestFolderMalformed(t *testing.T) {
	runSteps(t, []step{
		{line: hdrErr, kind: LineHeader, block: BlockRecord},
		{line: "[2026-11-24 17:50:16 +0000] [20865] [WARN", kind: LineMalformed, closedBlock: BlockRecord},
		{line: "  indented after a malformed line", kind: LineRaw, block: BlockRaw, raw: RawText},
		{line: "\x00\x00\x00\x00[2026-11-24 17:50:16 +0000] [20865] [INFO] x", kind: LineMalformed, closedBlock: BlockRaw},
	})
}

func TestFolderLoggingErrorRecovers(t *testing.T) {
	le := func(line string) step { return step{line: line, kind: LineContinuation, block: BlockLoggingError} }
	// The shape of logging.Handler.handleError's report (Python 3.11).
	runSteps(t, []step{
		{line: hdrNext, kind: LineHeader, block: BlockRecord},
		{line: "--- Logging error ---", kind: LineLoggingError, block: BlockLoggingError, closedBlock: BlockRecord},
		le("Traceback (most recent call last):"),
		le(`  File "/usr/lib/python3.11/logging/__init__.py", line 1114, in emit`),
		le("    self.flush()"),
		le("RuntimeError: reentrant call inside <_io.BufferedWriter name='<stderr>'>"),
		le("Call stack:"),
		le(`  File "/usr/lib/python3/dist-packages/gunicorn/arbiter.py", line 530, in reap_workers`),
		le("    self.log.warning("),
		le("Message: 'Worker with pid %s was terminated due to signal %s'"),
		{line: "Arguments: (21154, 9)", kind: LineContinuation, block: BlockLoggingError, recovered: "Worker with pid 21154 was terminated due to signal 9"},
		{line: "--- Logging error ---", kind: LineLoggingError, block: BlockLoggingError, closedBlock: BlockLoggingError, closedLines: 9,
			closedExc: "RuntimeError: reentrant call inside <_io.BufferedWriter name='<stderr>'>"},
		le("Traceback (most recent call last):"),
		le("RuntimeError: reentrant call inside <_io.BufferedWriter name='<stderr>'>"),
		le("Call stack:"),
		le(`Message: "Worker (pid:21834) was sent SIGKILL! Perhaps out of memory?"`),
		{line: "Arguments: ()", kind: LineContinuation, block: BlockLoggingError, recovered: "Worker (pid:21834) was sent SIGKILL! Perhaps out of memory?"},
		{line: "--- Logging error ---", kind: LineLoggingError, block: BlockLoggingError, closedBlock: BlockLoggingError, closedLines: 5,
			closedExc: "RuntimeError: reentrant call inside <_io.BufferedWriter name='<stderr>'>"},
		le("Traceback (most recent call last):"),
		le("TypeError: not all arguments converted during string formatting"),
		le("Call stack:"),
		le("Unable to print the message and arguments - possible formatting error."),
		le("Use the traceback above to help find the error."),
		{line: "a print after the report", kind: LineRaw, block: BlockRaw, raw: RawText, closedBlock: BlockLoggingError, closedLines: 5,
			closedExc: "TypeError: not all arguments converted during string formatting"},
	})
}

func TestFolderFlush(t *testing.T) {
	var f Folder
	f.Feed([]byte(hdrErr))
	f.Feed([]byte("Traceback (most recent call last):"))
	f.Feed([]byte("RuntimeError: " + strings.Repeat("é", 100)))
	if f.Open() != BlockRecord {
		t.Fatalf("open block %s", f.Open())
	}
	r := f.Flush()
	if r.Block != BlockRecord || r.Lines != 2 || r.PID != 20868 || r.Level != LevelError {
		t.Fatalf("flushed %+v", r)
	}
	if len(r.Exception) > MaxExceptionLen || !strings.HasPrefix(string(r.Exception), "RuntimeError: éé") {
		t.Errorf("exception %q (%d bytes)", r.Exception, len(r.Exception))
	}
	if !utf8Valid(r.Exception) {
		t.Errorf("exception cut inside a rune: %q", r.Exception)
	}
	if f.Open() != BlockNone || f.Flush().Block != BlockNone {
		t.Error("flush did not close the block")
	}
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

func TestUnreprAndFormat(t *testing.T) {
	tests := []struct {
		msg, args, want string
		ok              bool
	}{
		{`'Worker with pid %s was terminated due to signal %s'`, `(21154, 9)`, "Worker with pid 21154 was terminated due to signal 9", true},
		{`'Worker (pid:%s) exited with code %s'`, `(21835, 1)`, "Worker (pid:21835) exited with code 1", true},
		{`'Worker (pid:%s) exited with code %s.'`, `(21835, 1)`, "Worker (pid:21835) exited with code 1.", true},
		{`'Handling signal: %s'`, `('hup',)`, "Handling signal: hup", true},
		{`'%d%% of %s'`, `(5, 'it\'s')`, "5% of it's", true},
		{`'%r'`, `('x',)`, "'x'", true},
		{`"it's %s"`, `('a, b',)`, "it's a, b", true},
		{`'tab\there\nnew \x41\u00e9\\'`, `()`, "tab\there\nnew Aé\\", true},
		{`'100%% literal'`, `()`, "100%% literal", true}, // no args: logging does not format
		{`'%s %s'`, `(1,)`, "", false},                   // too few arguments
		{`'%s'`, `(1, 2)`, "", false},                    // too many
		{`'%.2f'`, `(1.0,)`, "", false},                  // unsupported conversion
		{`'%d'`, `('x',)`, "", false},                    // %d of a string
		{`'%s'`, `{'a': 1}`, "", false},                  // mapping arguments
		{`'unterminated`, `()`, "", false},
		{`RuntimeError('x')`, `()`, "", false}, // a non-str message
		{`'%s'`, `(<Worker 12>,)`, "<Worker 12>", true},
		{`'bad \q escape'`, `()`, "", false},
		{`'%s'`, `('unterminated,)`, "", false},
	}
	for _, tc := range tests {
		var msg [maxRecovered]byte
		var out [maxRecovered]byte
		n := unrepr(msg[:], []byte(tc.msg))
		got, ok := "", false
		if n >= 0 {
			if m := pyFormat(out[:], msg[:n], []byte(tc.args)); m >= 0 {
				got, ok = string(out[:m]), true
			}
		}
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s %% %s = %q %v, want %q %v", tc.msg, tc.args, got, ok, tc.want, tc.ok)
		}
	}
	// Output that does not fit is refused, never truncated.
	var small [8]byte
	if n := pyFormat(small[:], []byte("%s"), []byte("('0123456789',)")); n != -1 {
		t.Errorf("overflow gave %d", n)
	}
	if n := unrepr(small[:], []byte("'0123456789'")); n != -1 {
		t.Errorf("overflow gave %d", n)
	}
}

func TestIsPythonWarning(t *testing.T) {
	yes := []string{
		"<frozen os>:1031: RuntimeWarning: line buffering (buffering=1) isn't supported in binary mode",
		"/srv/app/app.py:3: DeprecationWarning: old",
		`C:\app\x.py:12: UserWarning: y`,
	}
	no := []string{
		"Failed to find attribute 'nosuchattr' in 'app'.",
		"RuntimeError: boom",
		"x:1: RuntimeError: not a warning",
		"x:: Warning: no line number",
		"12: Warning: no file",
	}
	for _, s := range yes {
		if !isPythonWarning([]byte(s)) {
			t.Errorf("%q not recognised", s)
		}
	}
	for _, s := range no {
		if isPythonWarning([]byte(s)) {
			t.Errorf("%q taken for a warning", s)
		}
	}
}
