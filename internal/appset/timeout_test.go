package appset

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// A by-name apps[] entry sets the timeout of the discovered app of that
// name (source "configured"), starts no pipeline of its own, and silences
// the "assumed 30s" warning, which is otherwise said once per master.
func TestByNameTimeoutOverlaysDiscoveredApp(t *testing.T) {
	var logs bytes.Buffer
	m, _ := newManager(t)
	m.logger = slog.New(slog.NewTextHandler(&logs, nil))
	fs, err := procinfo.NewFS("/proc")
	require.NoError(t, err)
	m.proc = newProcTracker(fs, m.timeline, m.logger)

	titled := discovery.Master{Name: "shop", Identity: procinfo.Identity{PID: 4242, StartTicks: 7},
		Timeout: discovery.DefaultTimeout, TimeoutSource: discovery.FromAssumed,
		TimeoutNote: "timeout not visible (argv overwritten by setproctitle): assumed Gunicorn's default 30s"}
	reported := map[string]string{}

	// No config: assumed, and said once however many passes see it.
	m.reportTimeout(titled, reported)
	m.reportTimeout(titled, reported)
	require.Equal(t, 1, strings.Count(logs.String(), "assumed Gunicorn's default 30s"), logs.String())
	m.proc.setMaster("shop", titled, m.configuredTimeout("shop"))
	require.Equal(t, discovery.FromAssumed, m.proc.masters["shop"].TimeoutSource)

	// The by-name entry applies at once to the known master.
	m.Apply(parse(t, "apps:\n  - name: shop\n    timeout: 3s\n"))
	require.Empty(t, m.Names(), "a by-name entry follows no log of its own")
	require.Equal(t, 3*time.Second, m.proc.masters["shop"].Timeout)
	require.Equal(t, discovery.FromConfigured, m.proc.masters["shop"].TimeoutSource)

	// A new master of that app: configured, and nothing said.
	logs.Reset()
	next := titled
	next.Identity.PID = 4343
	m.reportTimeout(next, reported)
	m.proc.setMaster("shop", next, m.configuredTimeout("shop"))
	require.Empty(t, logs.String())
	require.Equal(t, 3*time.Second, m.proc.masters["shop"].Timeout)
	require.Equal(t, discovery.FromConfigured, m.proc.masters["shop"].TimeoutSource)
}
