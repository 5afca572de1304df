package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog/corpus"
)

func TestRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "access.log")
	var stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"-n", "50", "-seed", "9", "-paths", "7", "-o", out}, nil, &stderr), stderr.String())
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	var want bytes.Buffer
	require.NoError(t, corpus.Generate(&want, 50, 9, 7))
	require.Equal(t, want.Bytes(), got)

	var stdout bytes.Buffer
	require.Equal(t, 0, run([]string{"-n", "50", "-seed", "9", "-paths", "7"}, &stdout, &stderr))
	require.Equal(t, want.Bytes(), stdout.Bytes())

	require.Equal(t, 2, run([]string{"-bogus"}, &stdout, &stderr))
	require.Equal(t, 1, run([]string{"-paths", "0"}, &stdout, &stderr))
	require.Equal(t, 1, run([]string{"-o", filepath.Join(t.TempDir(), "no", "such", "dir")}, &stdout, &stderr))
}

func TestRunSiteMix(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"-n", "50", "-paths", "20", "-mix", "site"}, &stdout, &stderr), stderr.String())
	var want bytes.Buffer
	require.NoError(t, corpus.GenerateMix(&want, 50, 1, 20, corpus.MixSite))
	require.Equal(t, want.Bytes(), stdout.Bytes())
	require.Equal(t, 1, run([]string{"-mix", "bogus"}, &stdout, &stderr))
}
