package state

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func sample() policy.State {
	return policy.State{
		Keys: map[string]time.Time{
			"scale_up|shop|abc|1":  t0.Add(15 * time.Minute),
			"reload|<&>\u2028|é|2": t0, // escaped by encoding/json: the checksum must still match
		},
		Acted: []time.Time{t0},
		Apps: map[string]policy.AppState{"shop": {
			Paused: true, CircuitOpen: true, CircuitSince: t0,
			LastActed:     map[intent.Action]time.Time{intent.Restart: t0},
			Spent:         []time.Time{t0.Add(-time.Minute), t0},
			ScaleUpWanted: t0,
			Desired:       3, DesiredAt: t0,
		}},
	}
}

func open(t *testing.T, path string, now time.Time) *Store {
	t.Helper()
	s, err := Open(path, now)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSaveAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path, t0)
	require.False(t, s.Corrupt())
	require.Equal(t, policy.State{}, s.Load(), "a missing file is the first start")

	want := sample()
	require.NoError(t, s.Save(want, t0))
	require.Equal(t, want, s.Load())
	require.NoError(t, s.Close())

	s2 := open(t, path, t0.Add(time.Hour))
	require.False(t, s2.Corrupt())
	require.Equal(t, want, s2.Load())

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	ents, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"state.json", "state.json.lock"}, names, "no temporary file left behind")
}

func TestLoadIsACopy(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.json"), t0)
	st := sample()
	require.NoError(t, s.Save(st, t0))
	st.Keys["x"] = t0
	st.Apps["shop"].LastActed[intent.ScaleUp] = t0
	got := s.Load()
	got.Acted[0] = time.Time{}
	got.Apps["shop"].Spent[0] = time.Time{}
	require.Equal(t, sample(), s.Load())
}

// A corrupt file is moved aside, byte for byte, and the store starts in
// the fail-safe state, never from a clean slate (C10).
func TestCorruptFileFailsSafe(t *testing.T) {
	good, err := encode(sample(), t0)
	require.NoError(t, err)
	tests := []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"zero bytes after a power loss", []byte("\x00\x00\x00\x00")},
		{"truncated", good[:len(good)/2]},
		{"not json", []byte("hello\n")},
		{"other version", []byte(strings.Replace(string(good), `"version":1`, `"version":2`, 1))},
		{"checksum", []byte(strings.Replace(string(good), `"desired":3`, `"desired":9`, 1))},
		{"state not an object", []byte(`{"version":1,"crc32c":"0","state":[]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			require.NoError(t, os.WriteFile(path, tt.raw, 0o600))
			now := t0.Add(time.Hour)
			s := open(t, path, now)
			require.True(t, s.Corrupt())
			require.ErrorIs(t, s.CorruptErr(), ErrCorrupt)
			require.Equal(t, policy.State{FailSafeSince: now}, s.Load())

			moved := fmt.Sprintf("%s.corrupt-%d", path, now.Unix())
			kept, err := os.ReadFile(moved)
			require.NoError(t, err, "the corrupt file is kept")
			require.Equal(t, len(tt.raw), len(kept))
			require.Equal(t, string(tt.raw), string(kept))
			require.Contains(t, s.CorruptErr().Error(), moved)

			// The fail-safe state was saved: a crash now does not lose it.
			require.NoError(t, s.Close())
			s2 := open(t, path, now.Add(time.Minute))
			require.False(t, s2.Corrupt())
			require.Equal(t, now, s2.Load().FailSafeSince)

			// And the policy cools everything down.
			d := policy.Decide(now.Add(time.Minute), alert(intent.ScaleUp, "x", now), rules(), policy.Global{}, s2.Load(), observed())
			require.Equal(t, intent.OutcomeCoolingDown, d.Outcome)
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := open(t, path, t0)
	_, err := Open(path, t0)
	require.ErrorIs(t, err, ErrLocked, "a second receiver on the same file")
	require.NoError(t, s.Close())
	s2 := open(t, path, t0)
	require.NoError(t, s2.Close())

	// A state path that cannot be read is an error, not a clean slate.
	sub := filepath.Join(dir, "isdir")
	require.NoError(t, os.Mkdir(sub, 0o700))
	_, err = Open(sub, t0)
	require.Error(t, err)

	_, err = Open(filepath.Join(dir, "missing", "state.json"), t0)
	require.Error(t, err)
}

func TestSaveFailureKeepsPrevious(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	require.NoError(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "state.json")
	s := open(t, path, t0)
	require.NoError(t, s.Save(sample(), t0))
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	// Make the directory unusable (root ignores permission bits): move it
	// away and put a plain file in its place, so no temporary file can be
	// created there.
	require.NoError(t, os.Rename(dir, dir+".moved"))
	require.NoError(t, os.WriteFile(dir, nil, 0o600))
	require.Error(t, s.Save(policy.State{}, t0))
	require.Equal(t, sample(), s.Load(), "Load still returns the saved state")
	require.NoError(t, os.Remove(dir))
	require.NoError(t, os.Rename(dir+".moved", dir))
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, before, after)

	require.NoError(t, s.Close())
	require.Error(t, s.Save(sample(), t0), "save after close")
}

// D13: a receiver that crashes and restarts while the alert keeps firing
// (a new alert each time, as after a re-fire) is still bounded by the
// budget it saved before each crash.
func TestCrashLoopKeepsBudget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	r, g := rules(), policy.Global{}
	now := t0
	acted := 0
	for i := range 40 {
		s, err := Open(path, now)
		require.NoError(t, err)
		st := s.Load()
		d := policy.Decide(now, alert(intent.Restart, string(rune('a'+i%26))+now.String(), now), r, g, st, observed())
		policy.Apply(&st, d, r, g)
		require.NoError(t, s.Save(st, now)) // durably before acting
		if d.Perform() {
			acted++
		}
		require.NoError(t, s.Close()) // the crash
		now = now.Add(3 * time.Minute)
	}
	require.Equal(t, policy.DefaultBudget, acted)
	s := open(t, path, now)
	require.True(t, s.Load().App("shop").CircuitOpen)
}

func rules() policy.Rules {
	return policy.Rules{MinWorkers: 1, MaxWorkers: 4, Allow: intent.Actions}
}

func alert(a intent.Action, fp string, at time.Time) intent.Alert {
	return intent.Alert{Fingerprint: fp, Status: "firing", StartsAt: at, Action: a, App: "shop"}
}

func observed() policy.Observed {
	return policy.Observed{App: intent.AppView{Name: "shop", Master: procinfo.Identity{PID: 100}, Workers: 2, DataFresh: true}}
}
