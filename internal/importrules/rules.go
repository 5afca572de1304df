// Package importrules owns the project's layering rules that a reader would
// otherwise have to enforce by eye, and the checker that enforces them:
//
//  1. Only the remediation actuator (receiver/actuator), the journal reader
//     (internal/journal, which runs journalctl) and the test harnesses start
//     programs: os/exec is imported nowhere else, directly or through another
//     package of this module. The actuator and the journal reader are
//     gateways: the receiver may import the one, the app pipelines the other. A harness is not: production code that imports
//     a harness reaches os/exec through it and is reported. _test.go files
//     may start programs.
//  2. Only internal/procinfo (the pid-reuse-safe signal primitive), the
//     actuator and the test harnesses send signals: syscall.Kill, unix.Kill,
//     unix.Tgkill, unix.Tkill, unix.PidfdSendSignal, (*os.Process).Signal and
//     (*os.Process).Kill are used nowhere else, and neither is a function of
//     this module that uses one (procinfo's primitive may be called by the
//     actuator only). Found by type-checking the source, so an aliased import
//     or a method value counts too; a call through an interface value (an
//     os.Process behind an interface of one's own) is not seen.
//  3. Only cmd/, collector and internal/accessstats import
//     github.com/prometheus/client_golang: state packages hold plain data and
//     collectors turn it into metrics at scrape time.
//  4. Only cmd/ imports kingpin: flags live in cmd/, library packages take
//     config structs.
//
// Rules 3 and 4 cover _test.go files too. The checker reads the output of
// `go list -e -export -deps -json` (which also yields the compiled export
// data the type checker needs), so it adds no dependency to the module.
package importrules

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Harnesses are the module's test-harness and test-tooling packages: they
// start and signal real Gunicorn, PostgreSQL and exporter processes for
// tests, and this package reads the module through go/build (which imports
// os/exec) for its test.
var Harnesses = []string{
	"internal/gunicorntest",
	"internal/importrules",
	"internal/journaltest",
	"internal/looptest",
	"internal/pgtest",
	// Real Prometheus and Alertmanager processes, for the rule tests, the
	// remediation tests and internal/looptest.
	"internal/promtest",
	"internal/reflextest",
	"internal/testenv",
	"internal/bench/...",
	// The demo (`make demo`) is a development tool on the harnesses.
	"internal/demo/...",
}

// Actuator is the package-to-be that performs remediation (signals and
// systemd); it is one of the two production packages allowed to start
// programs.
const Actuator = "receiver/actuator"

// JournalReader is the other: it runs journalctl, the host's own reader of
// the journal files, because a cgo binding (sdjournal) would break the
// static CGO_ENABLED=0 build and no pure-Go reader follows the journal
// format's versions, rotation and vacuuming. It starts journalctl and
// nothing else, and is a gateway: the app pipelines may import it.
const JournalReader = "internal/journal"

// ImportRule forbids importing Import (a path, or every path under it when
// it ends in "/...") outside the Allowed packages.
type ImportRule struct {
	Name   string
	Import string
	// Allowed holds module-relative package patterns; "x/..." matches x and
	// every package below it.
	Allowed []string
	// Gateways are allowed packages whose importers are not held to the
	// rule (the rule is followed through every other package of the module).
	// Without gateways the rule looks at direct imports only.
	Gateways []string
	// Transitive follows imports through third-party code and through the
	// Allowed packages of the module that are not Gateways.
	Transitive bool
	// Tests holds _test.go files to the rule too.
	Tests bool
	Why   string
}

// SignalRule forbids using the signal-sending functions outside Allowed.
type SignalRule struct {
	Funcs    []string
	Allowed  []string
	Gateways []string
	Why      string
}

// Rules are the import rules enforced on the module.
var Rules = []ImportRule{
	{
		Name:       "exec",
		Import:     "os/exec",
		Allowed:    append([]string{Actuator, JournalReader}, Harnesses...),
		Gateways:   []string{Actuator, JournalReader},
		Transitive: true,
		Why:        "only the actuator, the journal reader (journalctl) and the test harnesses start programs",
	},
	{
		Name:    "client_golang",
		Import:  "github.com/prometheus/client_golang/...",
		Allowed: []string{"cmd/...", "collector", "internal/accessstats"},
		Tests:   true,
		Why:     "only cmd, the collectors and the access stats touch Prometheus types; state packages hold plain data",
	},
	{
		Name:    "kingpin",
		Import:  "github.com/alecthomas/kingpin/...",
		Allowed: []string{"cmd/..."},
		Tests:   true,
		Why:     "flags live only in cmd/; library packages take config structs",
	},
}

// Signals is the signal-sending rule enforced on the module.
var Signals = SignalRule{
	Funcs: []string{
		"syscall.Kill",
		"syscall.Tgkill",
		"golang.org/x/sys/unix.Kill",
		"golang.org/x/sys/unix.Tgkill",
		"golang.org/x/sys/unix.Tkill",
		"golang.org/x/sys/unix.PidfdSendSignal",
		"(*os.Process).Signal",
		"(*os.Process).Kill",
	},
	Allowed:  append([]string{"internal/procinfo", Actuator}, Harnesses...),
	Gateways: []string{Actuator},
	Why:      "only procinfo's verified pidfd primitive, the actuator that calls it and the test harnesses send signals",
}

// Package is the part of `go list -json` output the checker reads.
type Package struct {
	ImportPath   string
	Dir          string
	Name         string
	Standard     bool
	GoFiles      []string
	CgoFiles     []string
	Imports      []string
	TestImports  []string
	XTestImports []string
	ImportMap    map[string]string
	Export       string
	Module       *struct {
		Path string
		Main bool
	}
	Error *struct{ Err string }
}

// Violation is one broken rule.
type Violation struct {
	Package string // module-relative
	Rule    string
	What    string // the import chain or the call, with its position
	Why     string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s breaks rule %q: %s", v.Package, v.What, v.Rule, v.Why)
}

// Decode reads the JSON stream `go list -json` writes.
func Decode(r io.Reader) ([]Package, error) {
	var pkgs []Package
	dec := json.NewDecoder(r)
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("decoding go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}

// module is a loaded module: its packages by import path, in go list's
// order (dependencies first).
type module struct {
	path  string
	order []*Package
	byIP  map[string]*Package
}

func newModule(pkgs []Package) (*module, error) {
	m := &module{byIP: make(map[string]*Package, len(pkgs))}
	for i := range pkgs {
		p := &pkgs[i]
		m.byIP[p.ImportPath] = p
		m.order = append(m.order, p)
		if p.Module != nil && p.Module.Main {
			if m.path != "" && m.path != p.Module.Path {
				return nil, fmt.Errorf("two main modules: %s and %s", m.path, p.Module.Path)
			}
			m.path = p.Module.Path
		}
	}
	if m.path == "" {
		return nil, errors.New("go list output holds no package of the main module")
	}
	return m, nil
}

func (m *module) own(p *Package) bool { return p.Module != nil && p.Module.Main }

// rel is p's import path relative to the module root ("." for the root).
func (m *module) rel(importPath string) string {
	if importPath == m.path {
		return "."
	}
	return strings.TrimPrefix(importPath, m.path+"/")
}

// matches reports whether a module-relative path matches one of patterns.
func matches(rel string, patterns []string) bool {
	for _, pat := range patterns {
		if base, ok := strings.CutSuffix(pat, "/..."); ok {
			if rel == base || strings.HasPrefix(rel, base+"/") {
				return true
			}
		} else if rel == pat {
			return true
		}
	}
	return false
}

// importMatches reports whether importPath is what a rule names.
func importMatches(importPath, rule string) bool {
	if base, ok := strings.CutSuffix(rule, "/..."); ok {
		return importPath == base || strings.HasPrefix(importPath, base+"/")
	}
	return importPath == rule
}

// CheckImports applies rules to the module in pkgs.
func CheckImports(pkgs []Package, rules []ImportRule) ([]Violation, error) {
	m, err := newModule(pkgs)
	if err != nil {
		return nil, err
	}
	var out []Violation
	for _, p := range m.order {
		if !m.own(p) {
			continue
		}
		rel := m.rel(p.ImportPath)
		for _, r := range rules {
			if matches(rel, r.Allowed) {
				continue
			}
			if chain := m.reach(p, r); chain != nil {
				out = append(out, Violation{Package: rel, Rule: r.Name, Why: r.Why,
					What: "imports " + chain[len(chain)-1] + via(m, chain)})
			}
			if !r.Tests {
				continue
			}
			for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
				if importMatches(imp, r.Import) {
					out = append(out, Violation{Package: rel, Rule: r.Name, Why: r.Why,
						What: "a _test.go file imports " + imp})
					break
				}
			}
		}
	}
	return out, nil
}

func via(m *module, chain []string) string {
	if len(chain) <= 2 {
		return ""
	}
	parts := make([]string, len(chain))
	for i, ip := range chain {
		if strings.HasPrefix(ip, m.path+"/") || ip == m.path {
			parts[i] = m.rel(ip)
		} else {
			parts[i] = ip
		}
	}
	return " through " + strings.Join(parts, " -> ")
}

// reach returns the import chain from p to a package the rule forbids, or
// nil. Non-transitive rules look at p's own imports only.
func (m *module) reach(p *Package, r ImportRule) []string {
	if !r.Transitive {
		for _, imp := range p.Imports {
			if importMatches(imp, r.Import) {
				return []string{p.ImportPath, imp}
			}
		}
		return nil
	}
	seen := map[string]bool{p.ImportPath: true}
	var walk func(q *Package, chain []string) []string
	walk = func(q *Package, chain []string) []string {
		for _, imp := range q.Imports {
			if importMatches(imp, r.Import) {
				return append(slices.Clone(chain), imp)
			}
		}
		for _, imp := range q.Imports {
			if seen[imp] {
				continue
			}
			seen[imp] = true
			next := m.byIP[imp]
			if next == nil {
				continue
			}
			// A package of the module is followed only when the rule allows
			// it without being a gateway (a harness): any other is either
			// exempt for its importers or checked, and reported, on its own.
			if m.own(next) && (matches(m.rel(imp), r.Gateways) || !matches(m.rel(imp), r.Allowed)) {
				continue
			}
			if got := walk(next, append(chain, imp)); got != nil {
				return got
			}
		}
		return nil
	}
	return walk(p, []string{p.ImportPath})
}

// CheckSignals type-checks every package of the module (non-test files) and
// reports uses of a signal-sending function outside rule.Allowed. A function
// of the module that uses one, directly or through another, is itself
// signal-sending unless its package is a gateway.
func CheckSignals(pkgs []Package, rule SignalRule) ([]Violation, error) {
	m, err := newModule(pkgs)
	if err != nil {
		return nil, err
	}
	senders := make(map[string]bool, len(rule.Funcs))
	for _, f := range rule.Funcs {
		senders[f] = true
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		p := m.byIP[path]
		if p == nil || p.Export == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(p.Export)
	})
	var out []Violation
	// go list -deps lists dependencies before their importers, so a sender
	// is known before any package that could call it is checked.
	for _, p := range m.order {
		if !m.own(p) {
			continue
		}
		if p.Error != nil {
			return nil, fmt.Errorf("%s: %s", p.ImportPath, p.Error.Err)
		}
		rel := m.rel(p.ImportPath)
		uses, declared, err := signalUses(fset, imp, p, senders)
		if err != nil {
			return nil, err
		}
		if !matches(rel, rule.Allowed) {
			for _, u := range uses {
				out = append(out, Violation{Package: rel, Rule: "signals", Why: rule.Why, What: u})
			}
		}
		if !matches(rel, rule.Gateways) {
			for _, f := range declared {
				senders[f] = true
			}
		}
	}
	return out, nil
}

// signalUses type-checks p and returns each use of a sender (as
// "file:line: uses F") and the functions of p that send signals themselves.
func signalUses(fset *token.FileSet, imp types.Importer, p *Package, senders map[string]bool) ([]string, []string, error) {
	var files []*ast.File
	for _, name := range slices.Concat(p.GoFiles, p.CgoFiles) {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, f)
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Defs: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: importerFunc(func(path string) (*types.Package, error) {
		if mapped, ok := p.ImportMap[path]; ok {
			path = mapped
		}
		return imp.Import(path)
	}), FakeImportC: true}
	if _, err := conf.Check(p.ImportPath, fset, files, info); err != nil {
		return nil, nil, fmt.Errorf("type-checking %s: %w", p.ImportPath, err)
	}

	var uses []string
	for id, obj := range info.Uses {
		if name := funcName(obj); senders[name] {
			pos := fset.Position(id.Pos())
			uses = append(uses, fmt.Sprintf("%s:%d uses %s", filepath.Base(pos.Filename), pos.Line, name))
		}
	}
	sort.Strings(uses)

	// A function of p sends signals when its body uses a sender or another
	// function of p that does: collect what each body uses, then propagate
	// until nothing changes.
	calls := map[string][]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			name := funcName(info.Defs[fd.Name])
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if id, ok := n.(*ast.Ident); ok {
					if callee := funcName(info.Uses[id]); callee != "" {
						calls[name] = append(calls[name], callee)
					}
				}
				return true
			})
		}
	}
	local := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for name, callees := range calls {
			if !local[name] && slices.ContainsFunc(callees, func(c string) bool { return senders[c] || local[c] }) {
				local[name], changed = true, true
			}
		}
	}
	declared := make([]string, 0, len(local))
	for name := range local {
		declared = append(declared, name)
	}
	return uses, declared, nil
}

// funcName is obj's full name ("pkg.F", "(*pkg.T).M") when obj is a
// function or method, else "".
func funcName(obj types.Object) string {
	if fn, ok := obj.(*types.Func); ok {
		return fn.Origin().FullName()
	}
	return ""
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
