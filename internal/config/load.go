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
	cfg := &Config{}
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		panic("config: defaults do not validate: " + err.Error()) // a programming error, caught by tests
	}
	return cfg
}

// EmptyMsg is the Error message for a file that holds no YAML document.
// Such a file is most often one an editor or a deploy tool truncated, and
// taking it as "all defaults" would stop following every configured app,
// so it is refused; `{}` asks for the defaults explicitly.
const EmptyMsg = "the file holds no configuration (it is empty, or only comments); refusing it so that a truncated file does not stop every configured app being followed (write {} to run on the defaults)"

// Parse decodes and validates YAML. Unknown keys are errors, and so is a
// document that is empty, only comments or null (see EmptyMsg).
func Parse(data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(err)
	}
	if isEmptyDocument(&root) {
		return nil, &Error{Msg: EmptyMsg}
	}
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return nil, explain(&root, yamlError(err))
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

// isEmptyDocument reports whether the parsed file has no document (empty,
// blank or only comments) or a null one ("---", "~", "null").
func isEmptyDocument(root *yaml.Node) bool {
	if root.Kind == 0 || len(root.Content) == 0 {
		return true
	}
	n := root.Content[0]
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}
