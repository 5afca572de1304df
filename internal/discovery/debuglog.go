package discovery

import (
	"regexp"
	"strconv"
	"strings"
)

// debugLogBytes is how much of the end of the error log is searched for the
// master's "Current configuration:" dump.
const debugLogBytes = 1 << 20

// debugDumpKeys are the settings taken from the dump; the log paths are
// not, because the dump is found in the error log they would name.
var debugDumpKeys = map[string]bool{
	"timeout": true, "workers": true, "worker_class": true, "threads": true,
	"pidfile": true, "access_log_format": true, "max_requests": true,
}

// parseConfigDump finds the last "Current configuration:" dump the master
// pid wrote at debug level (gunicorn arbiter.py setup, at start and on every
// HUP: 'Current configuration:\n{0}' followed by "  name: value" lines) in
// the tail of an error log, and returns the settings discovery uses. Values
// are Python's str() of each setting: None means unset. ok is false when no
// dump of that pid is in the tail.
func parseConfigDump(tail []byte, pid int) (map[string][]string, bool) {
	start := regexp.MustCompile(`^\[[^\]]*\] \[` + strconv.Itoa(pid) + `\] \[DEBUG\] Current configuration:\s*$`)
	var (
		cur    map[string][]string
		last   map[string][]string
		inside bool
	)
	for line := range strings.Lines(string(tail)) {
		line = strings.TrimRight(line, "\r\n")
		if start.MatchString(line) {
			cur, inside = map[string][]string{}, true
			continue
		}
		if !inside {
			continue
		}
		body, ok := strings.CutPrefix(line, "  ")
		name, val, hasColon := strings.Cut(body, ": ")
		if !ok || !hasColon || strings.ContainsAny(name, " \t") {
			inside, last = false, cur
			continue
		}
		if !debugDumpKeys[name] {
			continue
		}
		if val == "None" {
			cur[name] = nil
		} else {
			cur[name] = []string{val}
		}
	}
	if inside {
		last = cur
	}
	return last, last != nil
}
