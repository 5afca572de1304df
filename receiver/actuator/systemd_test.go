package actuator

import (
	"context"
	"errors"
	"testing"

	godbus "github.com/godbus/dbus/v5"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// bus stands in for systemd's D-Bus API where no system bus exists (this
// project's CI has none): it answers a restart as systemd would, with a
// job result on the channel or a D-Bus error. The real bus is exercised by
// TestRestartThroughSystemd where one is present.
type bus struct {
	units  []string
	result string
	err    error
	closed bool
}

func (b *bus) RestartUnitContext(_ context.Context, name, mode string, ch chan<- string) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	b.units = append(b.units, name+"/"+mode)
	ch <- b.result
	return 1, nil
}

func (b *bus) Close() { b.closed = true }

func TestRestartOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bus     *bus
		wantErr error
		outcome intent.Outcome
	}{
		{"done", &bus{result: "done"}, nil, intent.OutcomeActed},
		{"job failed", &bus{result: "failed"}, nil, intent.OutcomeFailed},
		{"polkit denied", &bus{err: godbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied"}}, ErrPermission, intent.OutcomeFailed},
		{"interactive auth", &bus{err: &godbus.Error{Name: "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"}}, ErrPermission, intent.OutcomeFailed},
		{"no such unit", &bus{err: godbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit"}}, nil, intent.OutcomeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(Options{Systemd: tc.bus})
			require.NoError(t, err)
			res, err := a.Perform(context.Background(), intent.Restart, Target{App: "x", Unit: "gunicorn-x.service"})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			out, _ := Outcome(err)
			require.Equal(t, tc.outcome, out, "%v", err)
			if tc.bus.err == nil {
				require.Equal(t, []string{"gunicorn-x.service/replace"}, tc.bus.units)
				require.Equal(t, tc.bus.result, res.JobResult)
			}
			require.False(t, tc.bus.closed, "a connection given in Options is kept after an error")
			a.Close()
			require.True(t, tc.bus.closed)
		})
	}
}

func TestRestartWithoutBusIsUnsupported(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/system_bus_socket")
	a, err := New(Options{})
	require.NoError(t, err)
	_, err = a.Perform(context.Background(), intent.Restart, Target{App: "x", Unit: "gunicorn-x.service"})
	require.ErrorIs(t, err, ErrUnsupported)
	require.False(t, errors.Is(err, ErrNotMaster))
}
