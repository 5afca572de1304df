package discovery

import (
	"cmp"
	"path"
	"slices"
	"strconv"
	"strings"
)

// maxNameLen is the longest app name the config accepts.
const maxNameLen = 64

// sanitizeName makes s a valid app name (^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$,
// the rule internal/config applies to apps[].name): other characters become
// "_", leading non-alphanumerics are dropped, the result is cut to 64
// characters. It returns "" when nothing usable is left.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == ':', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.TrimLeftFunc(b.String(), func(r rune) bool { return !isAlnum(r) })
	if len(out) > maxNameLen {
		out = out[:maxNameLen]
	}
	return out
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// withSuffix appends "-suffix" to name, shortening name so the result stays
// within maxNameLen.
func withSuffix(name, suffix string) string {
	suffix = strings.TrimLeft(sanitizeName(suffix), "-")
	if keep := maxNameLen - 1 - len(suffix); len(name) > keep {
		name = name[:max(keep, 1)]
	}
	return sanitizeName(name + "-" + suffix)
}

// discriminator is a stable way to tell apart masters that share a name:
// the first TCP listen port, else the base name of its unix socket, its
// pidfile (without extension) or its error log's directory. It is never a
// pid.
func discriminator(m *Master) string {
	for _, l := range m.Listen {
		if _, port, ok := cutPort(l); ok {
			return port
		}
	}
	for _, l := range m.Listen {
		if p, ok := strings.CutPrefix(l, "unix:"); ok && p != "" {
			return baseNoExt(p)
		}
	}
	if m.Pidfile != "" {
		return baseNoExt(m.Pidfile)
	}
	if m.ErrorLog != "" {
		return path.Base(path.Dir(m.ErrorLog))
	}
	return ""
}

// cutPort splits "host:port" (also "[v6]:port" and a bare ":port").
func cutPort(addr string) (string, string, bool) {
	if strings.HasPrefix(addr, "unix:") || strings.HasPrefix(addr, "fd://") {
		return "", "", false
	}
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "tcp://"), "http://")
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", false
	}
	port := addr[i+1:]
	if _, err := strconv.Atoi(port); err != nil {
		return "", "", false
	}
	return addr[:i], port, true
}

func baseNoExt(p string) string {
	b := path.Base(p)
	return strings.TrimSuffix(b, path.Ext(b))
}

// dedupeNames gives every master of a group sharing a name the suffix
// "-<discriminator>"; all of them, so a name does not depend on which
// master started first. Masters whose names still collide (same or no
// discriminator) get "-2", "-3", ... in start-time order after the first.
func dedupeNames(ms []Master) {
	groups := map[string][]int{}
	for i := range ms {
		groups[ms[i].Name] = append(groups[ms[i].Name], i)
	}
	for name, idx := range groups {
		if len(idx) < 2 {
			continue
		}
		for _, i := range idx {
			d := discriminator(&ms[i])
			if d == "" {
				continue
			}
			ms[i].Name = withSuffix(name, d)
			ms[i].Notes = append(ms[i].Notes, "another master is also named "+strconv.Quote(name)+": suffixed with "+strconv.Quote(d))
		}
	}
	// Last resort: ordinals by start time, skipping names already taken.
	taken := map[string]bool{}
	order := make([]int, len(ms))
	for i := range order {
		order[i] = i
	}
	sortByStart(ms, order)
	for _, i := range order {
		base := ms[i].Name
		if !taken[base] {
			taken[base] = true
			continue
		}
		for n := 2; ; n++ {
			cand := withSuffix(base, strconv.Itoa(n))
			if !taken[cand] {
				ms[i].Name = cand
				ms[i].Notes = append(ms[i].Notes, "name "+strconv.Quote(base)+" is still shared: numbered "+strconv.Quote(cand)+" by start time")
				taken[cand] = true
				break
			}
		}
	}
}

func sortByStart(ms []Master, order []int) {
	slices.SortStableFunc(order, func(a, b int) int {
		x, y := ms[a].Identity, ms[b].Identity
		if c := cmp.Compare(x.StartTicks, y.StartTicks); c != 0 {
			return c
		}
		return cmp.Compare(x.PID, y.PID)
	})
}
