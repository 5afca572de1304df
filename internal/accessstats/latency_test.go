package accessstats

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
)

func TestLatency(t *testing.T) {
	s := newStats(t, formatD, Options{})
	n, sum, ok := s.Latency()
	require.True(t, ok)
	require.Zero(t, n)
	require.Zero(t, sum)
	s.ObserveLine([]byte(line("GET", "/ok", 200, 250_000)))
	s.ObserveLine([]byte(line("GET", "/ok", 500, 1_750_000)))
	s.ObserveLine([]byte("garbage"))
	n, sum, ok = s.Latency()
	require.True(t, ok)
	require.Equal(t, uint64(2), n)
	require.InDelta(t, 2.0, sum, 1e-9)

	// A format without a duration atom observes nothing: unknown, not 0.
	_, _, ok = newStats(t, accesslog.DefaultFormat, Options{}).Latency()
	require.False(t, ok)
}
