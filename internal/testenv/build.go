package testenv

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
)

// BuildCommand builds the main package pkg of this module (a path relative
// to the module root, such as "./cmd/gunicorn-reflex") with the race
// detector into the executable out. It returns an error rather than taking
// a testing.TB, so a harness can build once per test process under a
// sync.Once and report the error to every test that asks.
//
// The race detector is on because the tests that run such a binary run
// with -race themselves: the binary's goroutines deserve the same check,
// and the packages it shares with the test are then already compiled for
// it in the build cache.
func BuildCommand(out, pkg string) error {
	cmd := exec.Command("go", "build", "-race", "-o", out, pkg)
	cmd.Dir = ModuleRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// ModuleRoot is the directory holding this module's go.mod, found from this
// source file's place in it (internal/testenv), so it does not depend on the
// test's working directory.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
