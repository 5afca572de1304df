package containerlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/linesource"
)

type gotLine struct {
	stream linesource.Stream
	text   string
}

// Partial entries are joined per stream, so interleaved stdout and stderr
// pieces make two whole lines; a line past Max is cut and counted once.
func TestJoiner(t *testing.T) {
	var got []gotLine
	j := Joiner{Max: 8, Emit: func(s linesource.Stream, l []byte) { got = append(got, gotLine{s, string(l)}) }}
	out, errs := linesource.StreamStdout, linesource.StreamStderr
	j.Add(Entry{Stream: out, Text: []byte("ab"), Partial: true})
	j.Add(Entry{Stream: errs, Text: []byte("12"), Partial: true})
	j.Add(Entry{Stream: out, Text: []byte("cd")})
	j.Add(Entry{Stream: errs, Text: []byte("34")})
	j.Add(Entry{Stream: out, Text: []byte("0123456"), Partial: true})
	j.Add(Entry{Stream: out, Text: []byte("789"), Partial: true})
	j.Add(Entry{Stream: out, Text: []byte("abc")})
	j.Add(Entry{Stream: out, Text: []byte("0123456789")})
	j.Add(Entry{Stream: errs, Text: []byte("tail"), Partial: true})
	require.Equal(t, 4, j.Pending())
	j.Flush()
	require.Equal(t, []gotLine{{out, "abcd"}, {errs, "1234"}, {out, "01234567"}, {out, "01234567"}, {errs, "tail"}}, got)
	require.Equal(t, uint64(2), j.Oversized)
	require.Equal(t, uint64(2+3+2), j.Discarded)
	require.Zero(t, j.Pending())
}

func TestFromCgroup(t *testing.T) {
	const id = "3f1c6a2b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
	const uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	uidU := strings.ReplaceAll(uid, "-", "_")
	for _, tc := range []struct {
		name, cgroup string
		runtime      Runtime
		podUID       string
	}{
		{"docker, systemd driver (v2)", "0::/system.slice/docker-" + id + ".scope\n", RuntimeDocker, ""},
		{"docker, cgroupfs driver (v1)", "12:pids:/docker/" + id + "\n11:memory:/docker/" + id + "\n", RuntimeDocker, ""},
		{"containerd under kubelet, systemd driver", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + id + ".scope\n", RuntimeCRI, uid},
		{"cri-o", "0::/kubepods.slice/kubepods-pod" + uidU + ".slice/crio-" + id + ".scope\n", RuntimeCRI, uid},
		{"seen from the exporter's own cgroup namespace", "0::/../../kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + id + ".scope\n", RuntimeCRI, uid},
		{"kubelet, cgroupfs driver", "0::/kubepods/besteffort/pod" + uid + "/" + id + "\n", RuntimeCRI, uid},
		{"cri-o conmon is not the container", "0::/kubepods.slice/crio-conmon-" + id + ".scope\n", RuntimeNone, ""},
		{"systemd service", "0::/system.slice/gunicorn.service\n", RuntimeNone, ""},
		{"own cgroup namespace", "0::/\n", RuntimeNone, ""},
		{"short id", "0::/docker/3f1c6a2b\n", RuntimeNone, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := FromCgroup([]byte(tc.cgroup))
			require.Equal(t, tc.runtime != RuntimeNone, ok)
			if !ok {
				return
			}
			require.Equal(t, tc.runtime, c.Runtime)
			require.Equal(t, id, c.ID)
			require.Equal(t, tc.podUID, c.PodUID)
		})
	}
}

func TestLocate(t *testing.T) {
	const id = "3f1c6a2b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
	const uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	root := t.TempDir()
	roots := Roots{DockerDataRoot: filepath.Join(root, "docker"), LogRoot: filepath.Join(root, "log")}

	_, _, err := Locate(Container{Runtime: RuntimeDocker, ID: id}, roots)
	require.ErrorIs(t, err, ErrNotFound)
	require.Contains(t, err.Error(), "docker_data_root")
	jsonLog := filepath.Join(roots.DockerDataRoot, "containers", id, id+"-json.log")
	require.NoError(t, os.MkdirAll(filepath.Dir(jsonLog), 0o755))
	require.NoError(t, os.WriteFile(jsonLog, nil, 0o600))
	p, f, err := Locate(Container{Runtime: RuntimeDocker, ID: id}, roots)
	require.NoError(t, err)
	require.Equal(t, jsonLog, p)
	require.Equal(t, FormatDocker, f)

	c := Container{Runtime: RuntimeCRI, ID: id, PodUID: uid}
	_, _, err = Locate(c, roots)
	require.ErrorIs(t, err, ErrNotFound)
	podDir := filepath.Join(roots.LogRoot, "pods", "shop_web-5d9f_"+uid, "gunicorn")
	require.NoError(t, os.MkdirAll(podDir, 0o755))
	for _, n := range []string{"0.log", "1.log", "1.log.20261201-192756"} {
		require.NoError(t, os.WriteFile(filepath.Join(podDir, n), nil, 0o600))
	}
	p, f, err = Locate(c, roots)
	require.NoError(t, err, "the pod's only container, newest N.log")
	require.Equal(t, filepath.Join(podDir, "1.log"), p)
	require.Equal(t, FormatCRI, f)

	link := filepath.Join(roots.LogRoot, "containers", "web-5d9f_shop_gunicorn-"+id+".log")
	require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(podDir, "1.log"), link))
	p, _, err = Locate(c, roots)
	require.NoError(t, err)
	require.Equal(t, link, p, "the kubelet's link maps the id to the file")
}
