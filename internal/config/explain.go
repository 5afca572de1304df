package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yaml.v3 words its decoding errors in Go terms ("field eror_log not found
// in type config.App", "cannot unmarshal !!int `3` into []config.App").
// A person editing the file knows the YAML, not the Go types, so explain
// rewrites them to name the YAML field path and what belongs there.
var (
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	typeMismatchRE = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
)

// explain fills in the field path of an error that carries only a line
// (and, for values decoded by this package, a column), and rewrites
// yaml.v3's Go-typed wording.
func explain(root *yaml.Node, ce *Error) *Error {
	if ce.Field != "" || ce.Line == 0 {
		return ce
	}
	if m := unknownFieldRE.FindStringSubmatch(ce.Msg); m != nil {
		key := m[1]
		if parent, ok := findPath(root, func(n *yaml.Node, _ string, isKey bool) bool {
			return isKey && n.Line == ce.Line && n.Value == key
		}); ok {
			ce.Field = parent
			ce.Msg = unknownKeyMsg(key, knownKeys(parent))
		}
		return ce
	}
	if m := typeMismatchRE.FindStringSubmatch(ce.Msg); m != nil {
		tag, value, goType := m[1], m[2], m[3]
		// Several nodes can share the line (a list and its first item's
		// value); the one at fault is where the Go type yaml.v3 names is
		// decoded.
		if path, ok := findPath(root, func(n *yaml.Node, path string, isKey bool) bool {
			t := typeAt(path)
			return !isKey && n.Line == ce.Line && n.ShortTag() == tag && t != nil && t.String() == goType &&
				(value == "" || strings.HasPrefix(n.Value, strings.TrimSuffix(value, "...")))
		}); ok {
			ce.Field = path
			got := tag
			if value != "" {
				got += " `" + value + "`"
			}
			ce.Msg = fmt.Sprintf("must be %s, not %s", yamlKind(goType), got)
			if path == "" {
				ce.Msg = fmt.Sprintf("the file must be a mapping of sections (%s), not %s", strings.Join(knownKeys(""), ", "), got)
			}
		}
		return ce
	}
	if ce.col > 0 {
		if path, ok := findPath(root, func(n *yaml.Node, _ string, isKey bool) bool {
			return !isKey && n.Line == ce.Line && n.Column == ce.col
		}); ok {
			ce.Field = path
		}
	}
	return ce
}

// findPath walks the document in order and returns the dotted path of the
// first node match accepts, given the node and its path. For a key node the
// path is its mapping's.
func findPath(root *yaml.Node, match func(n *yaml.Node, path string, isKey bool) bool) (string, bool) {
	if root == nil || root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return "", false
	}
	var walk func(n *yaml.Node, path string) (string, bool)
	walk = func(n *yaml.Node, path string) (string, bool) {
		if match(n, path, false) {
			return path, true
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if match(k, path, true) {
					return path, true
				}
				child := k.Value
				if path != "" {
					child = path + "." + k.Value
				}
				if p, ok := walk(v, child); ok {
					return p, true
				}
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				if p, ok := walk(item, fmt.Sprintf("%s[%d]", path, i)); ok {
					return p, true
				}
			}
		}
		return "", false
	}
	return walk(root.Content[0], "")
}

// typeAt is the Go type a dotted path such as "apps[0].routes" decodes
// into, from the yaml tags of Config; nil when the path leads nowhere.
func typeAt(path string) reflect.Type {
	t := reflect.TypeFor[Config]()
	if path == "" {
		return t
	}
	for _, part := range strings.Split(path, ".") {
		name, idx, indexed := strings.Cut(part, "[")
		f, ok := fieldByTag(t, name)
		if !ok {
			return nil
		}
		t = f.Type
		for ; indexed; _, idx, indexed = strings.Cut(idx, "[") {
			if t.Kind() != reflect.Slice {
				return nil
			}
			t = t.Elem()
		}
	}
	return t
}

// knownKeys lists the keys the section at a dotted path accepts; nil when
// it is not a section.
func knownKeys(path string) []string {
	t := typeAt(path)
	if t == nil {
		return nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// unknownKeyMsg names the unknown key and the closest known one when it is
// close enough to be a typo (an edit distance of at most a third of the
// key, and at least 1 allowed); otherwise it lists the known keys.
func unknownKeyMsg(key string, known []string) string {
	best, bestDist := "", -1
	for _, k := range known {
		if d := editDistance(key, k); bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist >= 0 && bestDist <= max(1, len(key)/3) {
		return fmt.Sprintf("unknown key %q (did you mean %q?)", key, best)
	}
	if len(known) > 0 {
		return fmt.Sprintf("unknown key %q; known keys here: %s", key, strings.Join(known, ", "))
	}
	return fmt.Sprintf("unknown key %q", key)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// yamlKind says in YAML terms what a Go type accepts.
func yamlKind(goType string) string {
	goType = strings.TrimPrefix(goType, "*")
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case goType == "config.Duration":
		return "a duration (e.g. 250ms, 30s, 1m)"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "config."):
		return "a mapping"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	}
	return "a value of another kind"
}
