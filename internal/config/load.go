package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = path
		}
		return nil, err
	}
	return cfg, nil
}

// Default returns the configuration used when no file is given: discover
// every Gunicorn master on the host.
func Default() *Config {
	cfg, err := Parse(nil)
	if err != nil {
		panic("config: defaults do not validate: " + err.Error()) // a programming error, caught by tests
	}
	return cfg
}

// Parse decodes and validates YAML. Unknown keys are errors.
func Parse(data []byte) (*Config, error) {
	var root yaml.Node
	cfg := &Config{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.Unmarshal(data, &root); err != nil {
			return nil, yamlError(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil {
			return nil, yamlError(err)
		}
	}
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.Line = lineOf(&root, ce.Field)
		}
		return nil, err
	}
	return cfg, nil
}
