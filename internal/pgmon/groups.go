package pgmon

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Other is the label value for everything beyond a cap or outside the
// configured groups: application names no AppGroup matches, groups beyond
// MaxGroups, databases beyond MaxDatabases, pools beyond MaxPools.
const Other = "other"

// AppGroup maps application_name values to a group label. Match is an exact
// name or a glob: '*' matches any run of characters (including none), '?'
// any one character, and '\' makes the next character literal.
type AppGroup struct {
	Match string
	Group string
}

// glob reports whether name matches pattern (see AppGroup).
func glob(pattern, name string) bool {
	// Iterative matcher with single-star backtracking: linear in practice,
	// never exponential.
	px, nx := 0, 0
	starPx, starNx := -1, -1
	for nx < len(name) || px < len(pattern) {
		if px < len(pattern) {
			c, w := utf8.DecodeRuneInString(pattern[px:])
			switch c {
			case '*':
				starPx, starNx = px, nx
				px += w
				continue
			case '?':
				if nx < len(name) {
					_, nw := utf8.DecodeRuneInString(name[nx:])
					px += w
					nx += nw
					continue
				}
			default:
				if c == '\\' && px+w < len(pattern) {
					px += w
					_, w = utf8.DecodeRuneInString(pattern[px:])
				}
				if lit := pattern[px : px+w]; strings.HasPrefix(name[nx:], lit) {
					px += w
					nx += w
					continue
				}
			}
		}
		if starPx >= 0 && starNx < len(name) {
			_, nw := utf8.DecodeRuneInString(name[starNx:])
			starNx += nw
			px, nx = starPx+1, starNx
			continue
		}
		return false
	}
	return true
}

// grouper maps application names to the closed set of group labels.
type grouper struct {
	rules  []AppGroup
	groups []string // kept groups in config order, then Other
	kept   map[string]bool
	cache  map[string]string
}

// maxGroupCache bounds the application_name -> group memo (names are
// client-chosen, so unbounded in principle).
const maxGroupCache = 4096

func newGrouper(rules []AppGroup, maxGroups int) (*grouper, error) {
	g := &grouper{kept: map[string]bool{}, cache: map[string]string{}}
	for i, r := range rules {
		if r.Group == "" {
			return nil, fmt.Errorf("app group %d (%q): empty group name", i, r.Match)
		}
		if !utf8.ValidString(r.Group) || !utf8.ValidString(r.Match) {
			return nil, fmt.Errorf("app group %d: not valid UTF-8", i)
		}
		g.rules = append(g.rules, r)
		if r.Group == Other || g.kept[r.Group] {
			continue
		}
		if len(g.groups) < maxGroups {
			g.kept[r.Group] = true
			g.groups = append(g.groups, r.Group)
		}
	}
	g.groups = append(g.groups, Other)
	return g, nil
}

// group returns the label for an application name: the first matching
// rule's group if it is within the cap, else Other.
func (g *grouper) group(app string) string {
	if v, ok := g.cache[app]; ok {
		return v
	}
	v := Other
	for _, r := range g.rules {
		if r.Match == app || (strings.ContainsAny(r.Match, `*?\`) && glob(r.Match, app)) {
			if g.kept[r.Group] {
				v = r.Group
			}
			break
		}
	}
	if len(g.cache) >= maxGroupCache {
		clear(g.cache)
	}
	g.cache[app] = v
	return v
}
