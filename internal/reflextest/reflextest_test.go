package reflextest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// helperEnv makes this test binary, run again by the tests below, the
// process under test: "main" runs TestHelperBinary under Main, "plain"
// under a TestMain that does not call it.
const helperEnv = "REFLEXTEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "plain" {
		os.Exit(m.Run())
	}
	Main(m)
}

// TestHelperBinary is the helper process's test: it builds the binary
// twice through Binary (the second call reuses it) and prints its path.
func TestHelperBinary(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("run by TestMainRemovesBinary and TestBinaryRequiresMain")
	}
	command = "./internal/reflextest/testdata/tiny"
	p := Binary(t)
	require.FileExists(t, p)
	require.Equal(t, p, Binary(t), "built once per process")
	t.Logf("binary=%s", p)
}

// runHelper runs TestHelperBinary in a test process of its own, with
// TMPDIR a fresh directory, and returns its output, that directory and
// how it exited.
func runHelper(t *testing.T, mode string, args ...string) (string, string, error) {
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHelperBinary$", "-test.v"}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	return string(out), tmp, err
}

// A test process whose TestMain is Main leaves no binary behind: the
// binary was built under its TMPDIR, and once it exits that is empty,
// also with -count=2, where the second repetition reuses the binary.
func TestMainRemovesBinary(t *testing.T) {
	for _, count := range []int{1, 2} {
		out, tmp, err := runHelper(t, "main", fmt.Sprintf("-test.count=%d", count))
		require.NoError(t, err, "helper with -test.count=%d:\n%s", count, out)
		require.Equal(t, count, strings.Count(out, "--- PASS: TestHelperBinary"), out)
		i := strings.Index(out, "binary=")
		require.GreaterOrEqual(t, i, 0, out)
		p := strings.Fields(out[i+len("binary="):])[0]
		require.True(t, strings.HasPrefix(p, filepath.Join(tmp, "reflextest-bin-")), "%s is built under the helper's TMPDIR %s", p, tmp)
		ents, err := os.ReadDir(tmp)
		require.NoError(t, err)
		require.Empty(t, ents, "left in the helper's TMPDIR after it exited:\n%s", out)
	}
}

// Without Main, Binary fails the test before it builds anything, so a
// package that forgets TestMain is told instead of leaving a binary.
func TestBinaryRequiresMain(t *testing.T) {
	out, tmp, err := runHelper(t, "plain")
	require.Error(t, err, out)
	require.Contains(t, out, "the package needs `func TestMain(m *testing.M) { reflextest.Main(m) }`")
	ents, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, ents, "nothing built")
}
