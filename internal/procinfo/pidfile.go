package procinfo

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadPidfile reads a Gunicorn pidfile ("<pid>\n", written by
// gunicorn/pidfile.py). A pidfile that does not hold a pid greater than 1
// is an error wrapping ErrRefused: pid 0 would mean the caller's process
// group to kill(2) and pid 1 is init, never a Gunicorn master.
func ReadPidfile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pidfile: %w", err)
	}
	s := strings.TrimSpace(string(b))
	pid, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("pidfile %s holds %q, not a process id", path, s)
	}
	if pid <= 1 {
		return 0, fmt.Errorf("pidfile %s holds %d: %w", path, pid, ErrRefused)
	}
	return pid, nil
}
