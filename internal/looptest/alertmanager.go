package looptest

import (
	"testing"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/promtest"
)

// The loop's Alertmanager is promtest's; these names keep the loop's
// callers in one package.
type (
	// Webhook is one receiver Alertmanager posts to: its URL and the file
	// holding its bearer token.
	Webhook = promtest.Webhook
	// AMOptions configures an Alertmanager; StartAlertmanager reads a nil
	// Matchers as "the alerts with a reflex_action label".
	AMOptions = promtest.AMOptions
	// Alertmanager is one running Alertmanager.
	Alertmanager = promtest.Alertmanager
)

// reflexActionMatcher selects the alerts a receiver acts on, those with a
// reflex_action label, as deploy/alertmanager.example.yml routes them.
const reflexActionMatcher = `reflex_action=~".+"`

// StartAlertmanager is promtest.StartAlertmanager routing to o.Webhooks the
// alerts with a reflex_action label (when o.Matchers is nil) and every
// other alert nowhere.
func StartAlertmanager(t testing.TB, o AMOptions) *Alertmanager {
	t.Helper()
	if o.Matchers == nil {
		o.Matchers = []string{reflexActionMatcher}
	}
	return promtest.StartAlertmanager(t, o)
}
