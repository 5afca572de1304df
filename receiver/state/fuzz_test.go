package state

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
)

// FuzzDecode: any file content is either a state that survives a save and
// a load unchanged, or an error (the fail-safe path); never a panic.
func FuzzDecode(f *testing.F) {
	good, err := encode(sample(), t0)
	require.NoError(f, err)
	empty, err := encode(policy.State{}, t0)
	require.NoError(f, err)
	for _, seed := range [][]byte{good, empty, nil, []byte("{}"), []byte(`{"version":1,"crc32c":"0","state":null}`), good[:40]} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		st, err := decode(raw)
		if err != nil {
			return
		}
		again, err := encode(st, time.Time{})
		require.NoError(t, err)
		st2, err := decode(again)
		require.NoError(t, err)
		a, _ := encode(st2, time.Time{})
		require.Equal(t, string(again), string(a))
	})
}
