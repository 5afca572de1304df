package appset

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// A Gunicorn 24.0.0 master that does not reap its workers is logged once,
// with its version, however many deaths follow.
func TestPipelineLogsMasterNotReaping(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	p, err := newPipeline(Spec{Name: "a"}, config.Logs{}, logger, timeline.New(16, 0), time.Now)
	require.NoError(t, err)
	for _, l := range []string{
		"[2026-12-01 19:27:56 +0000] [32067] [INFO] Starting gunicorn 24.0.0",
		"[2026-12-01 19:28:00 +0000] [32067] [ERROR] Unhandled signal: cld",
		"[2026-12-01 19:28:03 +0000] [32067] [ERROR] Unhandled signal: cld",
	} {
		p.observeErrorLine([]byte(l))
	}
	out := buf.String()
	require.Equal(t, 1, strings.Count(out, "does not replace dead workers"), out)
	require.Contains(t, out, "version=24.0.0")
	require.Contains(t, out, "master_pid=32067")
}
