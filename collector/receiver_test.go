package collector

import (
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

type fakeRemediation receiver.Stats

func (f fakeRemediation) Stats() receiver.Stats { return receiver.Stats(f) }

// sampleRemediation is one app that scaled up once, with a duplicate and a
// webhook request of each common kind.
func sampleRemediation() fakeRemediation {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	return fakeRemediation{
		Decisions: map[receiver.DecisionKey]uint64{
			{App: "shop", Action: intent.ScaleUp, Outcome: intent.OutcomeActed}:        1,
			{App: "shop", Action: intent.ScaleUp, Outcome: intent.OutcomeVerified}:     1,
			{App: "shop", Action: intent.ScaleUp, Outcome: intent.OutcomeDeduplicated}: 2,
			{App: "shop", Action: intent.Restart, Outcome: intent.OutcomeCircuitOpen}:  0,
		},
		Alerts: map[receiver.AlertKey]uint64{
			{Status: "firing", Result: "queued"}:         1,
			{Status: "firing", Result: "deduplicated"}:   2,
			{Status: "resolved", Result: "resolved"}:     1,
			{Status: "firing", Result: "unknown_app"}:    0,
			{Status: "invalid", Result: "invalid_alert"}: 0,
		},
		Requests:   map[int]uint64{200: 3, 401: 1},
		Apps:       []receiver.AppStatus{{App: "shop", Desired: 3}},
		LastAction: map[receiver.DecisionKey]time.Time{{App: "shop", Action: intent.ScaleUp}: at},
		QueueSize:  64,
	}
}
