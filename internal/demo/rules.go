package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Shortest compressed durations: a range must hold a few samples at the
// demo's 1 s scrape interval for rate() to have two of them, and a `for:`
// under a second is no wait at all.
const (
	minRange = 5 * time.Second
	minFor   = time.Second
)

var (
	forRE   = regexp.MustCompile(`(?m)^(\s*for:\s*)([0-9][0-9a-z]*)\s*$`)
	rangeRE = regexp.MustCompile(`\[([0-9][0-9a-z]*)((?::[0-9a-z]*)?)\]`)
	// ruleStartRE matches the first line of a rule and captures its name.
	ruleStartRE = regexp.MustCompile(`^\s*-\s*(?:alert|record):\s*(\S+)`)
)

// Compressed is one rewritten duration, for the demo to print.
type Compressed struct {
	File, What, From, To string
}

// CompressRules copies the rule files (*.yml) of src into dst with every
// `for:` and every range selector divided by scale (at least minFor and
// minRange): the shipped rules wait 30 minutes of idleness before giving a
// worker back, and look back minutes for a dry pool, which a two-minute
// demo cannot show. The rules named in keep (alert or record names) keep
// their shipped durations. The expressions, labels and guards are
// otherwise the shipped ones. It returns what it changed, sorted.
func CompressRules(src, dst string, scale int, keep ...string) ([]Compressed, error) {
	if scale < 1 {
		return nil, fmt.Errorf("compress rules: scale %d is below 1", scale)
	}
	files, err := filepath.Glob(filepath.Join(src, "*.yml"))
	if err != nil {
		return nil, fmt.Errorf("compress rules: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("compress rules: no *.yml in %s", src)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, fmt.Errorf("compress rules: %w", err)
	}
	var changed []Compressed
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("compress rules: %w", err)
		}
		name := filepath.Base(f)
		out, ch, err := compress(name, string(b), scale, keep)
		if err != nil {
			return nil, err
		}
		changed = append(changed, ch...)
		header := fmt.Sprintf("# DEMO-ONLY copy of alerts/%s written by `make demo`: every `for:` and range\n"+
			"# divided by %d (at least %s and %s). Never load this copy in production.\n", name, scale, minFor, minRange)
		if len(keep) > 0 {
			header += "# Rules kept with their shipped durations: " + strings.Join(keep, ", ") + ".\n"
		}
		if err := os.WriteFile(filepath.Join(dst, name), []byte(header+out), 0o644); err != nil {
			return nil, fmt.Errorf("compress rules: %w", err)
		}
	}
	sort.Slice(changed, func(i, j int) bool {
		a, b := changed[i], changed[j]
		return a.File+a.What+a.From < b.File+b.What+b.From
	})
	return changed, nil
}

func compress(file, text string, scale int, keep []string) (string, []Compressed, error) {
	var changed []Compressed
	var firstErr error
	seen := map[string]bool{}
	shrink := func(what, d string, floor time.Duration) string {
		md, err := model.ParseDuration(d)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("compress rules: %s: %s %q: %w", file, what, d, err)
			}
			return d
		}
		nd := max(time.Duration(md)/time.Duration(scale), floor)
		to := model.Duration(nd).String()
		if key := what + d; !seen[key] {
			seen[key] = true
			changed = append(changed, Compressed{File: file, What: what, From: d, To: to})
		}
		return to
	}
	// Each rule is compressed on its own lines (a rule starts at its
	// "- alert:" or "- record:" line), so that a kept one can be skipped.
	// The newline is not part of a line here: forRE's trailing \s* would
	// swallow it.
	lines := strings.Split(text, "\n")
	kept := false
	for i, l := range lines {
		if m := ruleStartRE.FindStringSubmatch(l); m != nil {
			kept = slices.Contains(keep, m[1])
		}
		if !kept {
			lines[i] = compressLine(l, shrink)
		}
	}
	return strings.Join(lines, "\n"), changed, firstErr
}

// compressLine rewrites the `for:` and the ranges of one line with shrink.
func compressLine(text string, shrink func(what, d string, floor time.Duration) string) string {
	text = forRE.ReplaceAllStringFunc(text, func(m string) string {
		sub := forRE.FindStringSubmatch(m)
		return sub[1] + shrink("for", sub[2], minFor)
	})
	text = rangeRE.ReplaceAllStringFunc(text, func(m string) string {
		sub := rangeRE.FindStringSubmatch(m)
		if _, err := model.ParseDuration(sub[1]); err != nil {
			return m // not a duration: a YAML list such as [alertname, app]
		}
		step := sub[2]
		if len(step) > 1 {
			step = ":" + shrink("subquery step", step[1:], time.Second)
		}
		return "[" + shrink("range", sub[1], minRange) + step + "]"
	})
	return text
}

// describe prints the compressed durations in one line per kind.
func describe(ch []Compressed) string {
	pairs := map[string]map[string]string{}
	for _, c := range ch {
		if pairs[c.What] == nil {
			pairs[c.What] = map[string]string{}
		}
		pairs[c.What][c.From] = c.To
	}
	var lines []string
	for _, what := range []string{"for", "range", "subquery step"} {
		m := pairs[what]
		if len(m) == 0 {
			continue
		}
		var from []string
		for f := range m {
			from = append(from, f)
		}
		sort.Slice(from, func(i, j int) bool {
			a, _ := model.ParseDuration(from[i])
			b, _ := model.ParseDuration(from[j])
			return a < b
		})
		var parts []string
		for _, f := range from {
			parts = append(parts, f+"→"+m[f])
		}
		lines = append(lines, fmt.Sprintf("%s: %s", what, strings.Join(parts, " ")))
	}
	return strings.Join(lines, "; ")
}
