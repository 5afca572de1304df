package appset

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/containerlog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// A master whose stderr is a pipe and whose cgroup names a Docker
// container is followed through the container's json-file log; one whose
// container log is missing is said once per master, naming the setting.
func TestDiscoveryFollowsContainerLog(t *testing.T) {
	const id = "3f1c6a2b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
	root := t.TempDir()
	proc, docker := filepath.Join(root, "proc"), filepath.Join(root, "docker")
	for pid, cg := range map[string]string{"7": "0::/system.slice/docker-" + id + ".scope\n", "8": "0::/docker/" + strings.Repeat("b", 64) + "\n", "9": "0::/user.slice\n"} {
		require.NoError(t, os.MkdirAll(filepath.Join(proc, pid), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(proc, pid, "cgroup"), []byte(cg), 0o600))
	}
	jsonLog := filepath.Join(docker, "containers", id, id+"-json.log")
	require.NoError(t, os.MkdirAll(filepath.Dir(jsonLog), 0o755))
	require.NoError(t, os.WriteFile(jsonLog, nil, 0o600))

	var logs lockedBuffer
	m, _ := newManager(t)
	m.logger = slog.New(slog.NewTextHandler(&logs, nil))
	m.Apply(parse(t, "logs:\n  poll_interval: 20ms\n"))
	m.containers = containerDiscovery{procPath: proc, roots: containerlog.Roots{DockerDataRoot: docker}}
	reported := map[string]string{}
	web := discovery.Master{Name: "web", Identity: procinfo.Identity{PID: 7}, AccessLogFormat: `%(h)s %(s)s`,
		Notes: []string{"error log goes to stderr (a pipe): set apps[].error_log", "access log goes to stdout (a pipe): set apps[].access_log"}}
	for range 2 {
		require.True(t, m.ensureContainer(web, reported, "note/7.0/"))
	}
	require.Equal(t, []string{"web"}, m.Names())
	s := snapshotOf(m, "web")
	require.Equal(t, linesource.KindDocker, s.ErrorLogSource)
	require.NotNil(t, s.Access, "the access log is on stdout, so in the same file")
	require.Equal(t, linesource.KindDocker, s.AccessLogSource)
	require.Equal(t, 1, strings.Count(logs.String(), "following the runtime's log file"), logs.String())
	require.Contains(t, logs.String(), "container_log="+jsonLog)

	gone := discovery.Master{Name: "gone", Identity: procinfo.Identity{PID: 8}}
	for range 2 {
		require.False(t, m.ensureContainer(gone, reported, "note/8.0/"))
	}
	require.Equal(t, 1, strings.Count(logs.String(), "log file was not found"), logs.String())
	require.Contains(t, logs.String(), "docker_data_root")

	logs.Reset()
	require.False(t, m.ensureContainer(discovery.Master{Name: "plain", Identity: procinfo.Identity{PID: 9}}, reported, "note/9.0/"))
	require.NotContains(t, logs.String(), "app=plain", "not in a container: nothing to say here")
}

// apps[].container_log wins: the app follows that file as a CRI log, both
// logs from it.
func TestConfiguredContainerLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	m, _ := newManager(t)
	m.Apply(parse(t, "apps:\n  - name: k\n    container_log:\n      path: "+path+"\n      format: cri\n"))
	s := snapshotOf(m, "k")
	require.Equal(t, linesource.KindCRI, s.ErrorLogSource)
	require.Equal(t, linesource.KindCRI, s.AccessLogSource)
	require.NotNil(t, s.Access)
}

// lockedBuffer is a log sink shared with the pipelines' goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}
