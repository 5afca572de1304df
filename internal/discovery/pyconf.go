package discovery

import (
	"strconv"
	"strings"
)

// pyConfig is what a best-effort read of a Gunicorn Python config file
// found: top-level assignments of literals to the settings discovery uses.
type pyConfig struct {
	// values maps a setting to its literal value(s): a string or number is
	// one value, a list or tuple of strings (bind) several.
	values map[string][]string
	// nonLiteral lists settings assigned something this reader cannot
	// evaluate (os.path.join(...), a variable, an f-string, ...).
	nonLiteral map[string]bool
}

// pyConfigKeys are the settings discovery reads from a config file.
var pyConfigKeys = map[string]bool{
	"errorlog": true, "accesslog": true, "timeout": true, "access_log_format": true,
	"proc_name": true, "pidfile": true, "bind": true, "workers": true,
	"worker_class": true, "threads": true, "wsgi_app": true, "logconfig": true,
	"logconfig_dict": true, "syslog": true, "chdir": true, "daemon": true,
}

// parsePyConfig reads simple top-level assignments such as
//
//	errorlog = "/var/log/app/error.log"
//	timeout = 60
//	bind = ["127.0.0.1:8000", "unix:/run/app.sock"]
//
// A later assignment replaces an earlier one, as when Python runs the file.
// Indented lines (inside if/def/with) are ignored: which branch runs is not
// knowable here.
func parsePyConfig(src string) pyConfig {
	c := pyConfig{values: map[string][]string{}, nonLiteral: map[string]bool{}}
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" || line[0] == ' ' || line[0] == '\t' || line[0] == '#' {
			continue
		}
		name, rhs, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if colon := strings.IndexByte(name, ':'); colon >= 0 { // annotated: timeout: int = 30
			name = name[:colon]
		}
		name = strings.TrimSpace(name)
		if !pyConfigKeys[name] || strings.HasPrefix(rhs, "=") {
			continue // not ours, or a comparison (==)
		}
		rhs = strings.TrimSpace(rhs)
		// A bracketed value may continue on the following lines.
		if strings.HasPrefix(rhs, "[") || strings.HasPrefix(rhs, "(") {
			for depth(rhs) > 0 && i+1 < len(lines) {
				i++
				rhs += " " + strings.TrimSpace(lines[i])
			}
		}
		vals, ok := pyLiteral(rhs)
		if !ok {
			delete(c.values, name)
			c.nonLiteral[name] = true
			continue
		}
		c.values[name] = vals
		delete(c.nonLiteral, name)
	}
	return c
}

// depth counts unclosed brackets outside string literals.
func depth(s string) int {
	d := 0
	var q byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case q != 0:
			switch ch {
			case '\\':
				i++
			case q:
				q = 0
			}
		case ch == '\'' || ch == '"':
			q = ch
		case ch == '#':
			return d
		case ch == '[' || ch == '(':
			d++
		case ch == ']' || ch == ')':
			d--
		}
	}
	return d
}

// pyLiteral evaluates a string, number, boolean, None, or a flat list or
// tuple of strings, followed by an optional comment.
func pyLiteral(s string) ([]string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, false
	}
	if s[0] == '[' || s[0] == '(' {
		closer := map[byte]byte{'[': ']', '(': ')'}[s[0]]
		rest := strings.TrimSpace(s[1:])
		var out []string
		for {
			rest = strings.TrimSpace(rest)
			if rest != "" && rest[0] == closer {
				return out, trailingOK(rest[1:])
			}
			v, r, ok := pyString(rest)
			if !ok {
				return nil, false
			}
			out = append(out, v)
			rest = strings.TrimSpace(r)
			if rest != "" && rest[0] == ',' {
				rest = rest[1:]
			} else if rest == "" || rest[0] != closer {
				return nil, false
			}
		}
	}
	if v, rest, ok := pyString(s); ok {
		if !trailingOK(rest) {
			return nil, false
		}
		return []string{v}, true
	}
	tok, _, _ := strings.Cut(s, "#")
	tok = strings.TrimSpace(tok)
	switch tok {
	case "True":
		return []string{"true"}, true
	case "False":
		return []string{"false"}, true
	case "None":
		return []string{}, true
	}
	clean := strings.ReplaceAll(tok, "_", "")
	if _, err := strconv.ParseInt(clean, 10, 64); err == nil {
		return []string{clean}, true
	}
	if f, err := strconv.ParseFloat(clean, 64); err == nil {
		return []string{strconv.FormatFloat(f, 'f', -1, 64)}, true
	}
	return nil, false
}

func trailingOK(rest string) bool {
	rest = strings.TrimSpace(rest)
	return rest == "" || rest[0] == '#'
}

// pyString reads one Python string literal (optionally r/b/u-prefixed, not
// f-strings, single or triple quoted) from the start of s; it returns the
// value and the remainder. Adjacent literals are concatenated.
func pyString(s string) (string, string, bool) {
	var out strings.Builder
	n := 0
	for {
		s = strings.TrimLeft(s, " \t")
		raw := false
		p := 0
		for p < len(s) && p < 2 && strings.ContainsRune("rRbBuU", rune(s[p])) {
			if s[p] == 'r' || s[p] == 'R' {
				raw = true
			}
			p++
		}
		if p >= len(s) || (s[p] != '\'' && s[p] != '"') {
			break
		}
		q := s[p : p+1]
		if strings.HasPrefix(s[p:], q+q+q) {
			q = q + q + q
		}
		body := s[p+len(q):]
		var v strings.Builder
		closed := false
		for i := 0; i < len(body); i++ {
			if strings.HasPrefix(body[i:], q) {
				s = body[i+len(q):]
				closed = true
				break
			}
			ch := body[i]
			if ch == '\\' && i+1 < len(body) {
				if raw {
					v.WriteByte(ch)
					v.WriteByte(body[i+1])
				} else {
					v.WriteString(unescape(body[i+1]))
				}
				i++
				continue
			}
			v.WriteByte(ch)
		}
		if !closed {
			return "", "", false
		}
		out.WriteString(v.String())
		n++
	}
	return out.String(), s, n > 0
}

func unescape(c byte) string {
	switch c {
	case 'n':
		return "\n"
	case 't':
		return "\t"
	case 'r':
		return "\r"
	case '0':
		return "\x00"
	case '\\', '\'', '"':
		return string(c)
	}
	return "\\" + string(c)
}
