package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// Gunicorn's log times have whole seconds: a HUP less than a second after
// the scale-up, logged as "12:00:00", is a reset all the same (the
// receiver's real-Alertmanager test sends one right after verification).
func TestReconcileHUPInTheSameSecond(t *testing.T) {
	f := newFeeder(t)
	f.step(300 * time.Millisecond)
	want(t, f.fire(f.alert(intent.ScaleUp, time.Minute)), intent.OutcomeActed, 16)
	require.Equal(t, 3, f.obs.App.Workers)
	f.step(400 * time.Millisecond)
	f.obs.App.Workers, f.obs.App.LastReload = 2, f.now.Truncate(time.Second)
	d, ok := f.reconcile()
	require.True(t, ok, "the HUP logged at the whole second of the scale-up is a reset")
	want(t, d, intent.OutcomeActed, 16)
	require.Equal(t, 3, d.Target)
}
