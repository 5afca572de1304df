package incidentpage

import (
	"strconv"
	"strings"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// EngineSource reads the incident engine's incidents for the pages.
type EngineSource struct {
	Engine *incident.Engine
}

var _ Source = EngineSource{}

// Incidents implements Source. An unknown state matches nothing (the page
// refuses it before asking).
func (s EngineSource) Incidents(app, state string, limit int) []Incident {
	f := incident.Filter{App: app, Limit: limit}
	if state != "" {
		st, ok := incident.ParseState(state)
		if !ok {
			return nil
		}
		f.State = st
	}
	list := s.Engine.List(f)
	out := make([]Incident, 0, len(list))
	for _, i := range list {
		out = append(out, FromIncident(i))
	}
	return out
}

// Incident implements Source.
func (s EngineSource) Incident(id string) (Incident, bool) {
	i, ok := s.Engine.Get(id)
	if !ok {
		return Incident{}, false
	}
	return FromIncident(i), true
}

// FromIncident takes what the pages show of one of the engine's incidents.
func FromIncident(i incident.Incident) Incident {
	out := Incident{
		ID: i.ID, App: i.App, State: string(i.State), OpenedAt: i.OpenedAt,
		Cause: string(i.Cause), Confidence: i.Confidence, Summary: i.Summary, Action: i.Advice, Trigger: i.Trigger,
	}
	if i.ClosedAt != nil {
		out.ClosedAt = *i.ClosedAt
	}
	for _, e := range i.Evidence {
		out.Evidence = append(out.Evidence, Evidence{Time: e.Time, Kind: e.Kind, Text: evidenceText(e), Decisive: e.Decisive})
	}
	if i.EvidenceDropped > 0 {
		out.Evidence = append(out.Evidence, Evidence{Kind: "note",
			Text: strconv.Itoa(i.EvidenceDropped) + " more evidence item(s) left out by the cap (the decisive ones are all above)"})
	}
	for _, d := range i.Decisions {
		reason := d.Detail
		if d.Refusal != "" {
			reason = strings.TrimSuffix(d.Refusal+": "+d.Detail, ": ")
		}
		out.Decisions = append(out.Decisions, Decision{Time: d.Time, Action: d.Action, Outcome: d.Outcome, Reason: reason, Cause: string(d.Cause)})
	}
	for _, c := range i.Causes {
		span := CauseSpan{Cause: string(c.Cause), Confidence: c.Confidence, Summary: c.Summary, From: c.From}
		if c.Until != nil {
			span.Until = *c.Until
		}
		out.Causes = append(out.Causes, span)
	}
	out.CausesDropped = i.CausesDropped
	return out
}

// evidenceText is an evidence item's detail, with its pid when the detail
// does not name it.
func evidenceText(e incident.Evidence) string {
	text := e.Detail
	if e.PID > 0 && !strings.Contains(text, strconv.Itoa(e.PID)) {
		text = strings.TrimSpace(text + " (pid " + strconv.Itoa(e.PID) + ")")
	}
	if text == "" {
		text = e.Source + " " + e.Kind
	}
	return text
}

// markerKinds are the timeline events drawn as deploy markers: a code
// change seen on disk or announced, and the master's own starts, reloads
// and promotions (weaker: a HUP also rotates logs, so they say "reload",
// not "deploy").
var markerKinds = []string{timeline.KindDeploy, timeline.KindMasterStart, timeline.KindMasterReload, timeline.KindMasterPromoted}

// MaxMarkers bounds the markers drawn on one chart: a master reloaded in
// a loop must not make the page unreadable or large.
const MaxMarkers = 50

// TimelineMarkers returns PageOptions.Markers reading tl: the deploy
// markers of app in [from, to], the newest MaxMarkers.
func TimelineMarkers(tl *timeline.Timeline) func(app string, from, to time.Time) []Marker {
	return func(app string, from, to time.Time) []Marker {
		events := tl.Select(timeline.Query{App: app, From: from, To: to, Kinds: markerKinds, Limit: MaxMarkers})
		out := make([]Marker, 0, len(events))
		for _, e := range events {
			out = append(out, Marker{Time: e.Time, Kind: MarkerDeploy, Label: markerLabel(e)})
		}
		return out
	}
}

func markerLabel(e timeline.Event) string {
	switch e.Kind {
	case timeline.KindDeploy:
		label := "deploy"
		if e.Cause != "" {
			label += " (" + e.Cause + ")"
		}
		switch {
		case e.Attrs["version"] != "":
			label += " " + e.Attrs["version"]
		case e.Attrs["to"] != "":
			label += " " + e.Attrs["from"] + " -> " + e.Attrs["to"]
		case e.Detail != "":
			label += " " + e.Detail
		}
		return label
	case timeline.KindMasterStart:
		return "master started"
	case timeline.KindMasterReload:
		return "HUP reload"
	case timeline.KindMasterPromoted:
		return "USR2 upgrade promoted"
	}
	return e.Kind
}
