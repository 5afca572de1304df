package discovery

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultUnitDirs are the system unit directories, in systemd's order of
// precedence (systemd.unit(5), "System Unit Search Path"): a unit file in
// an earlier directory masks one of the same name in a later one.
var DefaultUnitDirs = []string{
	"/etc/systemd/system.control",
	"/run/systemd/system.control",
	"/run/systemd/transient",
	"/etc/systemd/system",
	"/run/systemd/system",
	"/usr/local/lib/systemd/system",
	"/lib/systemd/system",
	"/usr/lib/systemd/system",
}

// unitInfo is what a service's unit files say about how it starts.
type unitInfo struct {
	Name       string   // "app.service", "app@blue.service"
	Fragment   string   // the unit file read
	DropIns    []string // drop-in files applied, in order
	ExecStart  []string // the last ExecStart= command line, split, prefixes removed
	Env        map[string]string
	WorkingDir string
}

// cgroupUnit returns the system service a process runs in, from the lines
// of /proc/<pid>/cgroup: the cgroup v2 line ("0::/system.slice/app.service")
// or, on a v1 or hybrid host, the name=systemd line. The deepest
// "*.service" path element names it (a service may put processes in
// sub-cgroups of its own). Services under user@UID.service are user units,
// whose files live in the user's home: "" is returned for them, and for
// processes not in a service (a login session's scope).
func cgroupUnit(cgroup []byte) string {
	var v2, v1 string
	for line := range strings.Lines(string(cgroup)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case parts[1] == "name=systemd":
			v1 = parts[2]
		}
	}
	p := v2
	if p == "" || p == "/" {
		p = v1
	}
	unit := ""
	for el := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(el, "user@") && strings.HasSuffix(el, ".service") {
			return ""
		}
		if strings.HasSuffix(el, ".service") && validUnitName(el) {
			unit = el
		}
	}
	return unit
}

func validUnitName(s string) bool {
	if s == "" || len(s) > 255 || strings.ContainsAny(s, "/\x00") || s[0] == '.' {
		return false
	}
	return true
}

// readUnit finds unit's fragment in dirs (for an instance "a@b.service",
// its own file or the template "a@.service") and applies its drop-ins
// ("<unit>.d/*.conf", then the template's), merged as systemd does: a
// drop-in name in an earlier directory masks the same name in a later one,
// and they apply in lexical order of file name. ok is false when no
// fragment is found.
func readUnit(dirs []string, unit string) (unitInfo, bool) {
	u := unitInfo{Name: unit, Env: map[string]string{}}
	prefix, instance, isInstance := "", "", false
	if at := strings.IndexByte(unit, '@'); at >= 0 {
		prefix = unit[:at]
		instance = strings.TrimSuffix(unit[at+1:], ".service")
		isInstance = instance != ""
	} else {
		prefix = strings.TrimSuffix(unit, ".service")
	}
	template := prefix + "@.service"
	names := []string{unit}
	if isInstance {
		names = append(names, template)
	}
	var body []byte
	for _, name := range names {
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if b, err := readLimited(p, maxConfigBytes); err == nil {
				u.Fragment, body = p, b
				break
			}
		}
		if u.Fragment != "" {
			break
		}
	}
	if u.Fragment == "" {
		return u, false
	}
	spec := specifiers{unit: unit, prefix: prefix, instance: instance}
	u.apply(body, spec)

	dropDirs := []string{template + ".d", unit + ".d"}
	if !isInstance {
		dropDirs = []string{unit + ".d"}
	}
	for _, dd := range dropDirs {
		chosen := map[string]string{} // file name -> path, first directory wins
		for _, d := range dirs {
			entries, err := os.ReadDir(filepath.Join(d, dd))
			if err != nil {
				continue
			}
			for _, e := range entries {
				if !strings.HasSuffix(e.Name(), ".conf") {
					continue
				}
				if _, seen := chosen[e.Name()]; !seen {
					chosen[e.Name()] = filepath.Join(d, dd, e.Name())
				}
			}
		}
		files := make([]string, 0, len(chosen))
		for name := range chosen {
			files = append(files, name)
		}
		slices.Sort(files)
		for _, name := range files {
			if b, err := readLimited(chosen[name], maxConfigBytes); err == nil {
				u.DropIns = append(u.DropIns, chosen[name])
				u.apply(b, spec)
			}
		}
	}
	return u, len(u.ExecStart) > 0
}

// apply reads the [Service] section of one unit file or drop-in: the last
// ExecStart= (an empty one resets it, as in a drop-in that replaces the
// command), Environment=, EnvironmentFile= and WorkingDirectory=.
func (u *unitInfo) apply(body []byte, spec specifiers) {
	section := ""
	for _, line := range unitLines(body) {
		if strings.HasPrefix(line, "[") {
			section = strings.TrimSpace(strings.Trim(line, "[]"))
			continue
		}
		if section != "Service" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "ExecStart":
			if val == "" {
				u.ExecStart = nil
				continue
			}
			words := splitUnitWords(spec.expand(val))
			if len(words) > 0 {
				words[0] = strings.TrimLeft(words[0], "@-:+!|")
				if words[0] == "" {
					words = words[1:]
				}
			}
			u.ExecStart = words
		case "Environment":
			if val == "" {
				clear(u.Env)
			}
			for _, kv := range splitUnitWords(spec.expand(val)) {
				if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
					u.Env[k] = v
				}
			}
		case "EnvironmentFile":
			p := strings.TrimPrefix(spec.expand(val), "-")
			if b, err := readLimited(p, maxConfigBytes); err == nil {
				for k, v := range parseEnvFile(b) {
					u.Env[k] = v
				}
			}
		case "WorkingDirectory":
			wd := strings.TrimPrefix(spec.expand(val), "-")
			if path.IsAbs(wd) {
				u.WorkingDir = path.Clean(wd)
			}
		}
	}
}

// unitLines returns the logical lines of a unit file: comments dropped,
// backslash-continued lines joined.
func unitLines(body []byte) []string {
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), maxConfigBytes)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// splitUnitWords splits a command line or Environment= value the way
// systemd does for the common cases: whitespace separation, "..." and '...'
// quoting, and backslash escapes.
func splitUnitWords(s string) []string { return splitShell(s) }

// parseEnvFile reads KEY=VALUE lines (optionally quoted), as systemd's
// EnvironmentFile= does.
func parseEnvFile(b []byte) map[string]string {
	out := map[string]string{}
	for _, line := range unitLines(b) {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(k), "export "))
		v = strings.TrimSpace(v)
		if w := splitShell(v); len(w) == 1 && len(v) > 1 && (v[0] == '"' || v[0] == '\'') {
			v = w[0]
		}
		out[k] = v
	}
	return out
}

// specifiers expands the unit specifiers a Gunicorn ExecStart plausibly
// uses (%n, %N, %p, %i, %I, %%); others are left as written.
type specifiers struct{ unit, prefix, instance string }

func (s specifiers) expand(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' || i+1 == len(v) {
			b.WriteByte(v[i])
			continue
		}
		i++
		switch v[i] {
		case 'n':
			b.WriteString(s.unit)
		case 'N':
			b.WriteString(strings.TrimSuffix(s.unit, ".service"))
		case 'p':
			b.WriteString(s.prefix)
		case 'i':
			b.WriteString(s.instance)
		case 'I':
			b.WriteString(unescapeUnit(s.instance))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

// unescapeUnit undoes systemd-escape: "-" is "/", "\xNN" a byte.
func unescapeUnit(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '-':
			b.WriteByte('/')
		case s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x':
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// unitSettings is a titled master's command line as its unit starts it.
type unitSettings struct {
	argv, env  options
	workingDir string
}

// unit finds the systemd service the master runs in and parses its
// ExecStart= as Gunicorn's command line; ok is false when there is none, it
// cannot be read, or its ExecStart= does not run Gunicorn directly (a
// wrapper script, sh -c).
func (in *inspection) unit() (unitSettings, bool) {
	b, err := os.ReadFile(filepath.Join(in.fs.Root(), strconv.Itoa(in.pid), "cgroup"))
	if err != nil {
		return unitSettings{}, false
	}
	name := cgroupUnit(b)
	if name == "" {
		return unitSettings{}, false
	}
	u, ok := readUnit(in.opts.UnitDirs, name)
	if !ok {
		if u.Fragment == "" {
			in.m.note("runs in %s, whose unit file is not in %s: its settings are not visible", name, strings.Join(in.opts.UnitDirs, ", "))
		} else {
			in.m.note("runs in %s, whose unit file %s has no ExecStart=", name, u.Fragment)
		}
		return unitSettings{}, false
	}
	inv, ok := parseInvocation(u.ExecStart)
	if !ok || inv.Titled {
		in.m.note("runs in %s, whose ExecStart= (%s) does not run gunicorn directly: its settings are not visible", name, strings.Join(u.ExecStart, " "))
		return unitSettings{}, false
	}
	in.m.Unit = name
	from := u.Fragment
	if len(u.DropIns) > 0 {
		from += " + " + strings.Join(u.DropIns, ", ")
	}
	in.m.note("argv overwritten by setproctitle: settings read from the ExecStart= of %s (%s)", name, from)
	s := unitSettings{argv: parseOptions(inv.Args), workingDir: u.WorkingDir}
	if v := u.Env["GUNICORN_CMD_ARGS"]; v != "" {
		s.env = parseOptions(splitShell(v))
	}
	return s, true
}

// CgroupUnit returns the system service a process runs in, from the
// contents of /proc/<pid>/cgroup; "" when it runs in none (see cgroupUnit).
func CgroupUnit(cgroup []byte) string { return cgroupUnit(cgroup) }
