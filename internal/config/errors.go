package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a configuration problem tied to a field and, when known, a line.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
	// col is the column of a value this package decoded itself (a
	// Duration), so its field path can be found when only the line is known.
	col int
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// validate checks the sections in a fixed order (apps, databases,
// discovery, logs, receiver) and returns the first fault.
func (c *Config) validate() error {
	for _, check := range []func() error{c.validateApps, c.validateDatabases, c.validateDiscovery, c.validateLogs, c.validateReceiver} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)

// yamlError turns yaml.v3's "line N: msg" into an Error with a line number.
func yamlError(err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		if m := yamlLineRE.FindStringSubmatch(te.Errors[0]); m != nil {
			return &Error{Line: yamlLine(m[1]), Msg: m[2]}
		}
		return &Error{Msg: te.Errors[0]}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		return &Error{Line: yamlLine(m[1]), Msg: m[2]}
	}
	return &Error{Msg: msg}
}

// yamlLine parses the digits yamlLineRE matched; a number too large for an
// int is no usable line, so it is 0 (unknown), as for no number at all.
func yamlLine(digits string) int {
	line, err := strconv.Atoi(digits)
	if err != nil {
		return 0
	}
	return line
}

// lineOf finds the line of a dotted field path such as "apps[1].name" in the
// parsed document, or of the nearest parent that exists; 0 when unknown.
func lineOf(root *yaml.Node, field string) int {
	if root == nil || root.Kind == 0 || field == "" {
		return 0
	}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(field, ".") {
		key, idx := part, -1
		if open := strings.IndexByte(part, '['); open >= 0 {
			key = part[:open]
			// The paths come from this package's own validation; an index
			// that does not parse is treated as none (the key's line).
			if _, err := fmt.Sscanf(part[open:], "[%d]", &idx); err != nil {
				idx = -1
			}
		}
		next, keyLine := mapValue(n, key)
		if next == nil {
			return line
		}
		line = keyLine
		n = next
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

func mapValue(n *yaml.Node, key string) (*yaml.Node, int) {
	if n.Kind != yaml.MappingNode {
		return nil, 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1], n.Content[i].Line
		}
	}
	return nil, 0
}
