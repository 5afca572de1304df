package importrules

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// goList runs `go list -e -export -deps -json ./...` in dir.
func goList(t *testing.T, dir string) []Package {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts GOROOT/bin first on PATH
	require.NoError(t, err)
	cmd := exec.Command(goTool, "list", "-e", "-export", "-deps", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	pkgs, err := Decode(bytes.NewReader(out))
	require.NoError(t, err)
	return pkgs
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	gomod := strings.TrimSpace(string(out))
	require.NotEmpty(t, gomod)
	return filepath.Dir(gomod)
}

func lines(vs []Violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

// TestModuleFollowsRules checks the whole module against Rules and Signals.
func TestModuleFollowsRules(t *testing.T) {
	pkgs := goList(t, moduleRoot(t))
	for _, p := range pkgs {
		if p.Module != nil && p.Module.Main && p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
	}

	imports, err := CheckImports(pkgs, Rules)
	require.NoError(t, err)
	signals, err := CheckSignals(pkgs, Signals)
	require.NoError(t, err)
	if all := append(imports, signals...); len(all) > 0 {
		allowed := []string{"signals: " + strings.Join(Signals.Allowed, ", ")}
		for _, r := range Rules {
			allowed = append(allowed, r.Name+" ("+r.Import+"): "+strings.Join(r.Allowed, ", "))
		}
		t.Errorf("the import rules (internal/importrules/rules.go) are broken:\n%s\nallowed in:\n%s",
			strings.Join(lines(all), "\n"), strings.Join(allowed, "\n"))
	}

	// The checks are not vacuous: with nothing allowed, the harnesses that
	// really start programs and send signals today are reported.
	strict := slices.Clone(Rules)
	for i := range strict {
		strict[i].Allowed, strict[i].Gateways = nil, nil
	}
	imports, err = CheckImports(pkgs, strict)
	require.NoError(t, err)
	require.Contains(t, strings.Join(lines(imports), "\n"), `internal/testenv: imports os/exec breaks rule "exec"`)
	require.Contains(t, strings.Join(lines(imports), "\n"), `collector: imports github.com/prometheus/client_golang/`)
	signals, err = CheckSignals(pkgs, SignalRule{Funcs: Signals.Funcs, Why: "-"})
	require.NoError(t, err)
	require.Contains(t, strings.Join(lines(signals), "\n"), "internal/gunicorntest: proc.go:")
}

// TestCheckerCatchesViolations runs the checker over a small module that
// breaks each rule once and keeps each exemption once.
func TestCheckerCatchesViolations(t *testing.T) {
	dir := t.TempDir()
	write := func(path, src string) {
		t.Helper()
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, path)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, path), []byte(src), 0o644))
	}
	write("go.mod", "module example.com/m\n\ngo 1.26\n")
	write("collector/c.go", "package collector\n\nimport \"os/exec\"\n\nvar _ = exec.Command\n")
	write("collector/c_test.go", "package collector\n\nimport \"os/exec\"\n\nvar _ = exec.LookPath\n")
	write("internal/testenv/t.go", "package testenv\n\nimport \"os/exec\"\n\nvar _ = exec.Command\n")
	write("internal/leak/l.go", "package leak\n\nimport _ \"example.com/m/internal/testenv\"\n")
	write("internal/procinfo/p.go", `package procinfo

import "syscall"

// Send is the primitive.
func Send(pid int) error { return kill(pid) }

func kill(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }
`)
	write("receiver/actuator/a.go", `package actuator

import (
	"os/exec"

	"example.com/m/internal/procinfo"
)

// Do remediates.
func Do(pid int) error { _ = exec.Command; return procinfo.Send(pid) }
`)
	write("cmd/tool/main.go", `package main

import "example.com/m/receiver/actuator"

func main() { _ = actuator.Do(2) }
`)
	write("internal/appset/a.go", `package appset

import "example.com/m/internal/procinfo"

// Stop is what the rule forbids: a decider that signals.
func Stop(pid int) error { return procinfo.Send(pid) }
`)
	write("internal/workerstate/w.go", `package workerstate

import goos "os"

// Kill takes a method value through an aliased import.
func Kill(p *goos.Process) func() error { return p.Kill }
`)

	pkgs := goList(t, dir)
	imports, err := CheckImports(pkgs, Rules)
	require.NoError(t, err)
	require.Equal(t, []string{
		`collector: imports os/exec breaks rule "exec": ` + Rules[0].Why,
		`internal/leak: imports os/exec through internal/leak -> internal/testenv -> os/exec breaks rule "exec": ` + Rules[0].Why,
	}, sorted(lines(imports)))

	signals, err := CheckSignals(pkgs, Signals)
	require.NoError(t, err)
	require.Equal(t, []string{
		`internal/appset: a.go:6 uses example.com/m/internal/procinfo.Send breaks rule "signals": ` + Signals.Why,
		`internal/workerstate: w.go:6 uses (*os.Process).Kill breaks rule "signals": ` + Signals.Why,
	}, sorted(lines(signals)))
}

// TestDirectAndTestImports covers the rules that look at a package's own
// imports, its _test.go files included.
func TestDirectAndTestImports(t *testing.T) {
	main := &struct {
		Path string
		Main bool
	}{"example.com/m", true}
	pkgs := []Package{
		{ImportPath: "example.com/m/collector", Module: main, Imports: []string{"github.com/prometheus/client_golang/prometheus"}},
		{ImportPath: "example.com/m/internal/workerstate", Module: main,
			TestImports: []string{"github.com/prometheus/client_golang/prometheus/testutil"}},
		{ImportPath: "example.com/m/internal/config", Module: main, Imports: []string{"github.com/alecthomas/kingpin/v2"}},
		{ImportPath: "example.com/m/cmd/gunicorn-reflex", Module: main,
			Imports: []string{"github.com/alecthomas/kingpin/v2", "github.com/prometheus/client_golang/prometheus"}},
		// A path that merely starts with the same letters is not the module.
		{ImportPath: "example.com/m/internal/pgmon", Module: main, Imports: []string{"github.com/prometheus/client_golang_fork"}},
	}
	got, err := CheckImports(pkgs, Rules)
	require.NoError(t, err)
	require.Equal(t, []string{
		`internal/config: imports github.com/alecthomas/kingpin/v2 breaks rule "kingpin": ` + Rules[2].Why,
		`internal/workerstate: a _test.go file imports github.com/prometheus/client_golang/prometheus/testutil breaks rule "client_golang": ` + Rules[1].Why,
	}, sorted(lines(got)))
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
