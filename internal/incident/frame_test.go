package incident

import (
	"strings"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// The app frame of a timeout's traceback comes as its own error-log event
// (logged after the WORKER TIMEOUT line); the verdict names it and keeps
// it as decisive evidence.
func TestJudgeNamesTheTimeoutFrameEvent(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	in := Input{App: "shop", OpenedAt: t0, Events: []timeline.Event{
		{Seq: 1, Time: t0, App: "shop", Source: timeline.SourceErrorLog, Kind: timeline.KindWorkerTimeout, PID: 7},
		{Seq: 2, Time: t0, App: "shop", Source: timeline.SourceErrorLog, Kind: timeline.KindWorkerTimeoutFrame, PID: 7,
			Detail: "innermost app frame at /srv/shop/views.py:88 in checkout",
			Attrs:  map[string]string{AttrAppFrame: "/srv/shop/views.py:88 in checkout", "code": "resp = urlopen(url)"}},
	}}
	v := Judge(in)
	if !strings.Contains(v.Summary, "/srv/shop/views.py:88 in checkout") {
		t.Errorf("summary %q does not name the frame", v.Summary)
	}
	found := false
	for _, d := range v.Decisive {
		if d.Kind == FactAppFrame && d.Seq == 2 && d.Detail == "/srv/shop/views.py:88 in checkout" && d.Attrs["code"] == "resp = urlopen(url)" {
			found = true
		}
	}
	if !found {
		t.Errorf("decisive %+v has no app frame from event 2", v.Decisive)
	}
}
