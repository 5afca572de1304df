package config

import (
	"path/filepath"
	"time"
)

// Discovery controls finding Gunicorn masters in /proc.
type Discovery struct {
	// Enabled defaults to true when no apps are configured, false otherwise:
	// an explicit app list is authoritative unless discovery is asked for.
	Enabled  *bool    `yaml:"enabled"`
	Interval Duration `yaml:"interval"`
	ProcPath string   `yaml:"proc_path"`
	// DockerDataRoot is Docker's data-root, where json-file logs are
	// found for masters in Docker containers; "" = /var/lib/docker.
	DockerDataRoot string `yaml:"docker_data_root"`
	// KubeletLogRoot holds the kubelet's containers/ and pods/ log
	// directories, for masters in Kubernetes pods; "" = /var/log.
	KubeletLogRoot string `yaml:"kubelet_log_root"`
}

// validateDiscovery checks the discovery section.
func (c *Config) validateDiscovery() error {
	if c.Discovery.Interval < Duration(time.Second) {
		return &Error{Field: "discovery.interval", Msg: "must be at least 1s"}
	}
	if !filepath.IsAbs(c.Discovery.ProcPath) {
		return &Error{Field: "discovery.proc_path", Msg: "must be an absolute path"}
	}
	for _, r := range []struct{ field, val string }{{"discovery.docker_data_root", c.Discovery.DockerDataRoot}, {"discovery.kubelet_log_root", c.Discovery.KubeletLogRoot}} {
		if r.val != "" && !filepath.IsAbs(r.val) {
			return &Error{Field: r.field, Msg: "must be an absolute path"}
		}
	}
	return nil
}
