package containerlog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Runtime is the kind of container runtime a cgroup path names.
type Runtime uint8

// Runtimes.
const (
	RuntimeNone Runtime = iota
	// RuntimeDocker writes json-file logs under its data root.
	RuntimeDocker
	// RuntimeCRI is containerd or CRI-O under the kubelet, which writes
	// CRI logs under /var/log/pods.
	RuntimeCRI
)

// Container is what a process's cgroup says about its container.
type Container struct {
	Runtime Runtime
	// ID is the 64-hex container id.
	ID string
	// PodUID is the pod's uid when the cgroup path has one (Kubernetes),
	// with dashes as in the pod's metadata.
	PodUID string
	// Cgroup is the cgroup path the id was found in.
	Cgroup string
}

// FromCgroup reads the contents of /proc/PID/cgroup (v1 or v2) and names
// the container, if a path has one of the shapes runtimes use:
//
//	/system.slice/docker-<id>.scope        Docker, systemd cgroup driver
//	/docker/<id>                            Docker, cgroupfs driver
//	.../cri-containerd-<id>.scope           containerd under Kubernetes, systemd driver
//	.../crio-<id>.scope                     CRI-O, systemd driver
//	/kubepods/<qos>/pod<uid>/<id>           Kubernetes, cgroupfs driver
//
// A conmon scope (crio-conmon-<id>) is CRI-O's monitor, not the container.
// A process in its own cgroup namespace sees "/" and names nothing.
func FromCgroup(data []byte) (Container, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if c, ok := fromPath(parts[2]); ok {
			return c, true
		}
	}
	return Container{}, false
}

func fromPath(p string) (Container, bool) {
	elems := strings.Split(strings.Trim(p, "/"), "/")
	c := Container{Cgroup: p}
	kube := false
	for _, e := range elems {
		if strings.HasPrefix(e, "kubepods") {
			kube = true
		}
		if uid, ok := podUID(e); ok {
			c.PodUID = uid
		}
	}
	for i := len(elems) - 1; i >= 0; i-- {
		e := elems[i]
		name := strings.TrimSuffix(e, ".scope")
		switch {
		case strings.HasPrefix(name, "crio-conmon-"):
			continue
		case strings.HasPrefix(name, "docker-") && isID(name[len("docker-"):]):
			c.Runtime, c.ID = RuntimeDocker, name[len("docker-"):]
		case strings.HasPrefix(name, "cri-containerd-") && isID(name[len("cri-containerd-"):]):
			c.Runtime, c.ID = RuntimeCRI, name[len("cri-containerd-"):]
		case strings.HasPrefix(name, "crio-") && isID(name[len("crio-"):]):
			c.Runtime, c.ID = RuntimeCRI, name[len("crio-"):]
		case isID(e) && kube:
			c.Runtime, c.ID = RuntimeCRI, e
		case isID(e) && i > 0 && elems[i-1] == "docker":
			c.Runtime, c.ID = RuntimeDocker, e
		default:
			continue
		}
		return c, true
	}
	return Container{}, false
}

// podUID reads "pod<uid>" (cgroupfs) or "kubepods-<qos>-pod<uid>.slice"
// (systemd, with the uid's dashes as underscores).
func podUID(e string) (string, bool) {
	e = strings.TrimSuffix(e, ".slice")
	i := strings.LastIndex(e, "pod")
	if i < 0 || (i > 0 && e[i-1] != '-') {
		return "", false
	}
	uid := strings.ReplaceAll(e[i+3:], "_", "-")
	if len(uid) != 36 || strings.Count(uid, "-") != 4 {
		return "", false
	}
	return uid, true
}

func isID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Roots are where the runtimes keep their logs, as this process sees
// them (a containerised exporter mounts them at the same paths).
type Roots struct {
	// DockerDataRoot is Docker's data-root; default /var/lib/docker.
	DockerDataRoot string
	// LogRoot holds the kubelet's containers/ and pods/ directories;
	// default /var/log.
	LogRoot string
}

func (r Roots) withDefaults() Roots {
	if r.DockerDataRoot == "" {
		r.DockerDataRoot = "/var/lib/docker"
	}
	if r.LogRoot == "" {
		r.LogRoot = "/var/log"
	}
	return r
}

// ErrNotFound is wrapped when a container's log file is not where its
// runtime keeps it.
var ErrNotFound = errors.New("container log file not found")

// Locate finds the log file of c and its format. For Docker it is
// <data-root>/containers/<id>/<id>-json.log. For the CRI it is the
// kubelet's link <log-root>/containers/<pod>_<ns>_<container>-<id>.log
// (followed as a link, so a restart of the container that swaps its
// target is seen), else the newest N.log under
// <log-root>/pods/<ns>_<pod>_<uid>/ when the pod has one container
// directory.
func Locate(c Container, roots Roots) (string, Format, error) {
	roots = roots.withDefaults()
	switch c.Runtime {
	case RuntimeDocker:
		p := filepath.Join(roots.DockerDataRoot, "containers", c.ID, c.ID+"-json.log")
		if _, err := os.Stat(p); err != nil {
			return "", 0, fmt.Errorf("%w: %s: %w (another log driver than json-file, or another data-root: set discovery.docker_data_root or apps[].container_log)", ErrNotFound, p, err)
		}
		return p, FormatDocker, nil
	case RuntimeCRI:
		return locateCRI(c, roots.LogRoot)
	}
	return "", 0, fmt.Errorf("%w: the cgroup names no container", ErrNotFound)
}

func locateCRI(c Container, logRoot string) (string, Format, error) {
	dir := filepath.Join(logRoot, "containers")
	links, err := filepath.Glob(filepath.Join(dir, "*-"+c.ID+".log"))
	if err == nil && len(links) > 0 {
		sort.Strings(links)
		return links[0], FormatCRI, nil
	}
	tried := dir + "/*-" + c.ID + ".log"
	if c.PodUID != "" {
		pods, _ := filepath.Glob(filepath.Join(logRoot, "pods", "*_"+c.PodUID))
		if len(pods) == 1 {
			if p, ok := newestCRILog(pods[0]); ok {
				return p, FormatCRI, nil
			}
		}
		tried += ", " + filepath.Join(logRoot, "pods", "*_"+c.PodUID) + " (one container directory with N.log)"
	}
	return "", 0, fmt.Errorf("%w: none of %s (mount the host's %s/containers and %s/pods at the same paths, or set discovery.kubelet_log_root or apps[].container_log)", ErrNotFound, tried, logRoot, logRoot)
}

// newestCRILog returns the highest N.log of the pod's only container.
func newestCRILog(pod string) (string, bool) {
	ents, err := os.ReadDir(pod)
	if err != nil {
		return "", false
	}
	var dirs []fs.DirEntry
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, e)
		}
	}
	if len(dirs) != 1 {
		return "", false
	}
	cdir := filepath.Join(pod, dirs[0].Name())
	logs, err := os.ReadDir(cdir)
	if err != nil {
		return "", false
	}
	best, bestN := "", -1
	for _, l := range logs {
		n, err := strconv.Atoi(strings.TrimSuffix(l.Name(), ".log"))
		if err == nil && strings.HasSuffix(l.Name(), ".log") && n > bestN {
			best, bestN = filepath.Join(cdir, l.Name()), n
		}
	}
	return best, bestN >= 0
}
