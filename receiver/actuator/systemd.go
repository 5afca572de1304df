package actuator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// restart restarts t.Unit through systemd's D-Bus API and waits for the
// job to finish (not for the app to serve: receiver/verify does that). The
// job mode is "replace", as `systemctl restart` uses.
func (a *Actuator) restart(ctx context.Context, t Target, res Result) (Result, error) {
	if t.Unit == "" {
		return res, fmt.Errorf("restart of app %s: %w", t.App, ErrNoUnit)
	}
	if !validUnit(t.Unit) {
		return res, fmt.Errorf("restart of app %s: unit %q is not a service name: %w", t.App, t.Unit, ErrUnsupported)
	}
	bus, err := a.conn(ctx)
	if err != nil {
		return res, fmt.Errorf("restart of app %s: %w", t.App, err)
	}
	done := make(chan string, 1)
	if _, err := bus.RestartUnitContext(ctx, t.Unit, "replace", done); err != nil {
		a.dropConn(bus)
		return res, fmt.Errorf("restart of app %s: unit %s: %w", t.App, t.Unit, classifyBus(err))
	}
	select {
	case res.JobResult = <-done:
	case <-ctx.Done():
		return res, fmt.Errorf("restart of app %s: unit %s: waiting for the job: %w", t.App, t.Unit, ctx.Err())
	}
	a.logger.Info("restarted the unit", "app", t.App, "unit", t.Unit, "job_result", res.JobResult)
	if res.JobResult != "done" {
		return res, fmt.Errorf("restart of app %s: unit %s: job %s", t.App, t.Unit, res.JobResult)
	}
	return res, nil
}

// conn returns the D-Bus connection, dialling the system bus when there is
// none.
func (a *Actuator) conn(ctx context.Context) (Systemd, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bus != nil {
		return a.bus, nil
	}
	c, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("system bus: %w: %w", ErrUnsupported, err)
	}
	a.bus = c
	return c, nil
}

// dropConn forgets a connection that failed, so the next restart dials
// again; a connection given in Options is kept.
func (a *Actuator) dropConn(c Systemd) {
	if c == a.opts.Systemd {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bus == c {
		a.bus.Close()
		a.bus = nil
	}
}

// classifyBus makes systemd's and polkit's access denials ErrPermission.
func classifyBus(err error) error {
	name := ""
	var de godbus.Error
	var dp *godbus.Error
	switch {
	case errors.As(err, &de):
		name = de.Name
	case errors.As(err, &dp):
		name = dp.Name
	}
	if strings.HasSuffix(name, ".AccessDenied") || strings.HasSuffix(name, ".InteractiveAuthorizationRequired") {
		return fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return err
}

// validUnit accepts a systemd service unit name (as systemd's
// unit_name_is_valid does, for the characters a name may hold): the unit
// comes from the configuration, and this is a last check that it names a
// service and nothing else.
func validUnit(u string) bool {
	name, ok := strings.CutSuffix(u, ".service")
	if !ok || name == "" || len(u) > 255 {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(":-_.\\@", r):
		default:
			return false
		}
	}
	return true
}
