package appset

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/containerlog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
)

// containerDiscovery is where discovery looks for the logs of masters that
// run in containers.
type containerDiscovery struct {
	procPath string
	roots    containerlog.Roots
}

func newContainerDiscovery(cfg *config.Config) containerDiscovery {
	return containerDiscovery{procPath: cfg.Discovery.ProcPath,
		roots: containerlog.Roots{DockerDataRoot: cfg.Discovery.DockerDataRoot, LogRoot: cfg.Discovery.KubeletLogRoot}}
}

// configuredOutput is the Output of an apps[] entry with container_log.
func configuredOutput(a config.App) (Output, bool) {
	if a.ContainerLog.Path == "" {
		return Output{}, false
	}
	f, err := containerlog.ParseFormat(a.ContainerLog.Format)
	if err != nil {
		return Output{}, false // config validation has said so
	}
	return Output{Kind: f.Kind(), Path: a.ContainerLog.Path}, true
}

// ensureContainer follows the runtime's log file of a master whose error
// log is not a file, when its cgroup names a container. It says once per
// master what it found, or why it found nothing, and reports whether the
// master is now followed.
func (m *Manager) ensureContainer(ms discovery.Master, reported map[string]string, master string) bool {
	path, format, err := m.locateContainerLog(ms.Identity.PID)
	say := func(level, msg string, args ...any) {
		if _, done := reported[master+msg]; done {
			return
		}
		reported[master+msg] = ""
		args = append([]any{"app", ms.Name, "pid", ms.Identity.PID}, args...)
		if level == "warn" {
			m.logger.Warn(msg, args...)
		} else {
			m.logger.Info(msg, args...)
		}
	}
	switch {
	case errors.Is(err, errNoContainer):
		return false
	case err != nil:
		say("warn", "discovery: the master runs in a container whose log file was not found; its error log is not followed", "err", err)
		return false
	}
	spec := Spec{Name: ms.Name, Source: SourceDiscovery, ErrorLog: "-", Output: Output{Kind: format.Kind(), Path: path},
		Routes: config.Routes{MaxRoutes: config.DefaultMaxRoutes}}
	if accessOnStdout(ms) {
		spec.AccessLog, spec.AccessLogFormat = "-", ms.AccessLogFormat
	}
	say("info", "discovery: the master runs in a container; following the runtime's log file", "container_log", path, "format", format.String(),
		"access_log", nonEmptyOr(spec.AccessLog, "not on stdout"))
	if m.proc != nil {
		m.proc.setMaster(ms.Name, ms, m.configuredTimeout(ms.Name))
	}
	m.Ensure(spec)
	return true
}

var errNoContainer = errors.New("not in a container")

func (m *Manager) locateContainerLog(pid int) (string, containerlog.Format, error) {
	cd := m.containers
	data, err := os.ReadFile(filepath.Join(cd.procPath, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", 0, errNoContainer
	}
	c, ok := containerlog.FromCgroup(data)
	if !ok {
		return "", 0, errNoContainer
	}
	path, format, err := containerlog.Locate(c, cd.roots)
	if err != nil {
		return "", 0, fmt.Errorf("container %.12s: %w", c.ID, err)
	}
	return path, format, nil
}

// accessOnStdout reads discovery's note that the access log goes to
// stdout ("-") and that stdout is not a file: in a container, the access
// lines are then in the runtime's log with the error log's.
func accessOnStdout(ms discovery.Master) bool {
	if ms.AccessLog != "" {
		return false
	}
	for _, n := range ms.Notes {
		if strings.HasPrefix(n, "access log goes to stdout") {
			return true
		}
	}
	return false
}

// FollowStdin makes app the one whose output (stderr and stdout, "2>&1")
// is piped into this process: its lines are read from r, told apart by
// shape, and, when tee is not nil, copied to tee as read. accessFormat is
// Gunicorn's access_log_format of the access lines ("" = the default). A
// configured app of that name wins. Call it after Start.
func (m *Manager) FollowStdin(app, accessFormat string, r io.Reader, tee io.Writer) {
	m.mu.Lock()
	maxLine := m.logs.MaxLineBytes
	m.mu.Unlock()
	rd := linesource.NewReader(r, linesource.ReaderOptions{MaxLineBytes: maxLine, Tee: tee, Logger: m.logger.With("app", app, "log", "stdin")})
	go rd.Run()
	m.Ensure(Spec{Name: app, Source: SourceStdin, ErrorLog: "-", AccessLog: "-", AccessLogFormat: accessFormat,
		Routes: config.Routes{MaxRoutes: config.DefaultMaxRoutes}, Output: Output{Kind: linesource.KindStdin, Reader: rd}})
}

// sharedFile reads one file that holds both logs (supervisord's
// redirect_stderr, or "2>&1" into a file, or the same path given for
// both) as one source whose lines are told apart by shape: two followers
// of it would each count the other log's lines as raw or unparsable.
func sharedFile(spec Spec) Spec {
	if spec.Output.Kind != "" || spec.ErrorLog == "" || spec.ErrorLog == "-" || spec.ErrorLog != spec.AccessLog {
		return spec
	}
	spec.Output = Output{Kind: linesource.KindFile, Path: spec.ErrorLog}
	spec.AccessLog = "-"
	return spec
}
