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
}

// validateDiscovery checks the discovery section.
func (c *Config) validateDiscovery() error {
	if c.Discovery.Interval < Duration(time.Second) {
		return &Error{Field: "discovery.interval", Msg: "must be at least 1s"}
	}
	if !filepath.IsAbs(c.Discovery.ProcPath) {
		return &Error{Field: "discovery.proc_path", Msg: "must be an absolute path"}
	}
	return nil
}
