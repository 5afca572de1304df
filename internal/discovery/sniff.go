package discovery

import (
	"path"
	"regexp"
	"strings"
)

// logKind is what the content (or name) of a file says it is.
type logKind int

const (
	kindUnknown logKind = iota
	kindError
	kindAccess
	kindBoth // error and access lines in one file (both logs pointed at it)
)

func (k logKind) String() string {
	return [...]string{"unknown", "error", "access", "error+access"}[k]
}

var (
	// errorLineRE is Gunicorn's error-log line: the default format
	// "%(asctime)s [%(process)d] [%(levelname)s] %(message)s" with datefmt
	// "[%Y-%m-%d %H:%M:%S %z]" (gunicorn glogging.py Logger.error_fmt/datefmt).
	errorLineRE = regexp.MustCompile(`^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] `)
	// accessTimeRE is the %(t)s atom, "[24/Nov/2026:17:56:21 +0000]", and
	// accessRequestRE the quoted %(r)s request line: one of them is in
	// nearly every access-log format.
	accessTimeRE    = regexp.MustCompile(`\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]`)
	accessRequestRE = regexp.MustCompile(`"[A-Z]{3,10} \S+ HTTP/\d(\.\d)?"`)
	// usingWorkerRE is the INFO line the master logs at boot.
	usingWorkerRE = regexp.MustCompile(`\] Using worker: (\S+)`)
)

// sniffResult is the classification of a log file's tail.
type sniffResult struct {
	Kind        logKind
	ErrorLines  int
	AccessLines int
	WorkerClass string // from the last "Using worker: X" line seen
}

// sniffLog classifies the tail of a file by its lines. The first line may
// be cut by the tail window; a line that matches neither format (a
// traceback, a print) counts for nothing.
func sniffLog(tail []byte) sniffResult {
	var r sniffResult
	for line := range strings.Lines(string(tail)) {
		switch {
		case errorLineRE.MatchString(line):
			r.ErrorLines++
			if m := usingWorkerRE.FindStringSubmatch(line); m != nil {
				r.WorkerClass = m[1]
			}
		case accessTimeRE.MatchString(line) || accessRequestRE.MatchString(line):
			r.AccessLines++
		}
	}
	switch {
	case r.ErrorLines > 0 && r.AccessLines > 0:
		r.Kind = kindBoth
	case r.ErrorLines > 0:
		r.Kind = kindError
	case r.AccessLines > 0:
		r.Kind = kindAccess
	}
	return r
}

// kindByName guesses from a file name, for files with no lines yet (an
// access log before the first request): "access" in the name is the access
// log, "error" (or gunicorn.log) the error log.
func kindByName(p string) logKind {
	b := strings.ToLower(path.Base(p))
	hasAccess, hasError := strings.Contains(b, "access"), strings.Contains(b, "error") || b == "gunicorn.log"
	switch {
	case hasAccess && !hasError:
		return kindAccess
	case hasError && !hasAccess:
		return kindError
	}
	return kindUnknown
}
