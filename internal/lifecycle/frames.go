package lifecycle

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// FactWorkerTimeoutFrame is the innermost app frame of the traceback a
// Gunicorn >= 22 worker logs when its timeout aborts it (the "Error
// handling request" record whose exception is the abort's SystemExit,
// raised by gunicorn/workers/base.py handle_abort in the frame that was
// running): where the request was stuck.
const FactWorkerTimeoutFrame = timeline.KindWorkerTimeoutFrame

// Attribute names of a worker_timeout_frame fact.
const (
	AttrAppFrame = "app_frame" // "file:line in function"
	AttrFile     = "file"
	AttrLine     = "line"
	AttrFunction = "function"
	AttrCode     = "code" // the source line Python printed under the frame
)

// maxFrameText bounds each part of a frame kept from the log.
const maxFrameText = 512

// frameScan follows the traceback of one "Error handling request" record
// of a timed-out worker.
type frameScan struct {
	pid int // 0: not following a record

	app, any frame // innermost app frame, innermost non-Gunicorn frame
	// codeFor says which frame the next continuation line is the code of.
	codeFor *frame
}

type frame struct {
	file, function, code string
	line                 int
}

func (f frame) ok() bool { return f.file != "" }

// startFrames follows the record of a timed-out worker's "Error handling
// request" (22+ logs the abort that way).
func (t *Tracker) startFrames(hp int) {
	t.frames = frameScan{}
	if w := t.workers[hp]; w != nil && w.timedOut {
		t.frames.pid = hp
	}
}

// frameLine reads one continuation line of the followed record.
func (t *Tracker) frameLine(line []byte) {
	s := &t.frames
	if s.pid == 0 {
		return
	}
	trimmed := bytes.TrimSpace(line)
	fr, isFrame := parseFrame(trimmed)
	if !isFrame {
		if s.codeFor != nil && len(trimmed) > 0 && trimmed[0] != '^' && trimmed[0] != '~' {
			s.codeFor.code = clip(string(trimmed))
		}
		s.codeFor = nil
		return
	}
	s.codeFor = nil
	switch frameClass(fr.file) {
	case classApp:
		s.app = fr
		s.any = fr
		s.codeFor = &s.app
	case classLibrary:
		s.any = fr
	}
}

// endFrames emits the frame when the followed record closes.
func (t *Tracker) endFrames(now stamp) {
	s := t.frames
	t.frames = frameScan{}
	if s.pid == 0 {
		return
	}
	fr := s.app
	if !fr.ok() {
		fr = s.any
	}
	if !fr.ok() {
		return
	}
	where := fr.file + ":" + strconv.Itoa(fr.line) + " in " + fr.function
	detail := "innermost app frame at " + where
	attrs := map[string]string{AttrAppFrame: where, AttrFile: fr.file, AttrLine: strconv.Itoa(fr.line), AttrFunction: fr.function}
	if fr.code != "" {
		attrs[AttrCode] = fr.code
	}
	t.facts = append(t.facts, Fact{Time: now.when(), Kind: FactWorkerTimeoutFrame, PID: s.pid, Detail: detail, Attrs: attrs})
}

// parseFrame reads `File "/srv/app/views.py", line 42, in index`.
func parseFrame(b []byte) (frame, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`File "`))
	if !ok {
		return frame{}, false
	}
	i := bytes.LastIndex(rest, []byte(`", line `))
	if i < 0 {
		return frame{}, false
	}
	file := string(rest[:i])
	rest = rest[i+len(`", line `):]
	num, fn, ok := bytes.Cut(rest, []byte(", in "))
	if !ok {
		return frame{}, false
	}
	n, err := strconv.Atoi(string(num))
	if err != nil || n < 0 {
		return frame{}, false
	}
	return frame{file: clip(file), line: n, function: clip(string(fn))}, true
}

type fileClass uint8

const (
	classGunicorn fileClass = iota // Gunicorn's own frames, and <frozen ...>
	classLibrary                   // the standard library and installed packages
	classApp
)

// frameClass tells the app's own code from Gunicorn's and from libraries
// by path: Gunicorn's package directory, site-packages/dist-packages, and
// the standard library (lib/pythonX.Y without a packages directory).
func frameClass(file string) fileClass {
	switch {
	case strings.HasPrefix(file, "<"), strings.Contains(file, "/gunicorn/"):
		return classGunicorn
	case strings.Contains(file, "/site-packages/"), strings.Contains(file, "/dist-packages/"):
		return classLibrary
	case strings.Contains(file, "/lib/python3"), strings.Contains(file, "/lib64/python3"), strings.Contains(file, "/lib/python2"):
		return classLibrary
	}
	return classApp
}

func clip(s string) string {
	if len(s) > maxFrameText {
		s = s[:maxFrameText]
	}
	return strings.ToValidUTF8(s, "?")
}
