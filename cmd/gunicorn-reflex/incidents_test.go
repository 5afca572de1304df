package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgtest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// nowLine is an error-log line stamped with the current time, as Gunicorn
// writes it.
func nowLine(msg string) string {
	return "[" + time.Now().Format("2006-01-02 15:04:05 -0700") + "] [20865] " + msg
}

func getIncidents(t *testing.T, exp *reflextest.Exporter, query string) []incident.Incident {
	t.Helper()
	status, body, err := exp.Get("/api/v1/incidents" + query)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	var out struct {
		Incidents []incident.Incident `json:"incidents"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	require.NotNil(t, out.Incidents, "an empty list is [], not null: %s", body)
	return out.Incidents
}

// Through the binary: no incident is an empty list; bad query parameters
// are 400 with the reason; a reload followed by a WORKER TIMEOUT opens one
// incident whose verdict names the reload as a (weak) deploy marker; the
// metrics and `explain` show it.
func TestIncidentsAPIAndExplain(t *testing.T) {
	dir := t.TempDir()
	errorLog := filepath.Join(dir, "one.log")
	cfg := filepath.Join(dir, "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("apps:\n  - name: one\n    error_log: "+errorLog+"\nlogs:\n  poll_interval: 50ms\n"), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)

	require.Empty(t, getIncidents(t, exp, ""))
	for _, tc := range []struct{ query, reason string }{
		{"?state=opened", `state must be open or closed, not \"opened\"`},
		{"?limit=0", "limit must be an integer between 1 and 10000"},
		{"?limit=ten", "limit must be an integer between 1 and 10000"},
		{"?app=a&app=b", `parameter \"app\" given 2 times`},
		{"?cause=capacity", `unknown parameter \"cause\"`},
	} {
		status, body, err := exp.Get("/api/v1/incidents" + tc.query)
		require.NoError(t, err)
		require.Equal(t, http.StatusBadRequest, status, tc.query)
		require.Contains(t, body, tc.reason, tc.query)
	}
	status, body, err := exp.Get("/api/v1/incidents/999")
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, status)
	require.Contains(t, body, `no incident \"999\"`)

	appendLine(t, errorLog, nowLine("[INFO] Handling signal: hup"))
	appendLine(t, errorLog, nowLine("[INFO] Hang up: Master"))
	appendLine(t, errorLog, nowLine("[CRITICAL] WORKER TIMEOUT (pid:4242)"))
	var got []incident.Incident
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if got = getIncidents(t, exp, "?app=one&state=open"); len(got) > 0 && got[0].Cause == incident.CauseDeployRegression {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Len(t, got, 1, "one incident: %+v", got)
	inc := got[0]
	require.Equal(t, "one", inc.App)
	require.Equal(t, incident.StateOpen, inc.State)
	require.Equal(t, incident.TriggerTimeout, inc.Trigger)
	require.Equal(t, incident.CauseDeployRegression, inc.Cause, inc.Summary)
	require.InDelta(t, 0.5, inc.Confidence, 1e-9)
	kinds := map[string]bool{}
	for _, e := range inc.Evidence {
		if e.Decisive {
			kinds[e.Kind] = true
		}
	}
	require.True(t, kinds["master_reload"] && kinds["worker_timeout"], "%+v", inc.Evidence)

	byID, err := json.Marshal(inc)
	require.NoError(t, err)
	status, body, err = exp.Get("/api/v1/incidents/" + inc.ID)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, string(byID), body)
	require.Empty(t, getIncidents(t, exp, "?state=closed"))
	require.Empty(t, getIncidents(t, exp, "?app=other"))

	m := exp.Scrape(t)
	v, ok := m.Value("reflex_incident_open", "app", "one")
	require.True(t, ok)
	require.Equal(t, 1.0, v)
	v, _ = m.Value("reflex_incident_cause", "app", "one", "cause", "deploy_regression")
	require.Equal(t, 1.0, v)
	v, ok = m.Value("reflex_incidents_total", "app", "one", "cause", "deploy_regression")
	require.True(t, ok)
	require.Equal(t, 0.0, v, "counted when it closes")

	out, err := exec.Command(reflextest.Binary(t), "explain", "--url", exp.URL, "--app", "one").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), fmt.Sprintf("Incident %s of one: open since", inc.ID))
	require.Contains(t, string(out), "Verdict: deploy_regression (confidence 0.50)")
	require.Contains(t, string(out), "What to do: Roll back")
	out, err = exec.Command(reflextest.Binary(t), "explain", "--url", exp.URL, "--app", "nothing").CombinedOutput()
	require.NoError(t, err, string(out))
	require.True(t, strings.HasPrefix(string(out), "No incident of nothing"), string(out))
}

// Real Gunicorn through the binary: a request blocked on a threading lock
// that is never released in time is stuck on a futex, Gunicorn kills it at
// the 3 s timeout, and that yields exactly one incident whose verdict is
// deadlock, with the stuck worker as decisive evidence.
func TestIncidentRealDeadlock(t *testing.T) {
	g := gunicorntest.Start(t, gunicorntest.Options{Workers: 2, Timeout: 3})
	cfg := filepath.Join(t.TempDir(), "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("apps:\n  - name: lockapp\n    timeout: 3s\n    pidfile: "+g.Pidfile+
		"\n    error_log: "+g.ErrorLog+"\nlogs:\n  poll_interval: 50ms\n"), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)
	exp.WaitValue(t, 15*time.Second, 1, "reflex_proc_up", "app", "lockapp")

	res := g.GetAsync("/lock?s=30")
	require.NoError(t, g.WaitLog("WORKER TIMEOUT", 1, 20*time.Second))
	<-res
	var got []incident.Incident
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if got = getIncidents(t, exp, "?app=lockapp"); len(got) == 1 && got[0].Cause == incident.CauseDeadlock {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Len(t, got, 1, "exactly one incident: %+v", got)
	inc := got[0]
	require.Equal(t, incident.CauseDeadlock, inc.Cause, "%s\n%+v", inc.Summary, inc.Evidence)
	var stuck bool
	for _, e := range inc.Evidence {
		stuck = stuck || (e.Decisive && e.Kind == "worker_stuck" && e.Attrs["kind"] == "futex")
	}
	require.True(t, stuck, "%+v", inc.Evidence)
}

// The demo's defect, through the binary on a real Gunicorn and a real
// PostgreSQL: two faults back to back on one app with no quiet period
// between them. Workers hang on an external service (external_call; the
// receiver scales up), then on a slow query (database_slow_query; the
// receiver refuses). It stays one incident whose current verdict is the
// second; its history in GET /api/v1/incidents and in `explain` keeps the
// first, and each decision names the verdict it was taken under.
func TestIncidentTwoFaultsBackToBack(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	c.Exec(t, "CREATE VIEW reflex_slow AS SELECT 1 AS one FROM pg_sleep(30)")
	port := blackhole(t)
	// A short cooldown and grace, so the second alert is decided on the
	// verdict rather than on the first scale-up's cooldown.
	receiver := strings.Replace(receiverSection(t, t.TempDir()), "      allow: [scale_up]\n",
		"      allow: [scale_up]\n      cooldown: 1s\n      grace: 1s\n", 1)
	s := startDBScenario(t, c, nil, gunicorntest.Options{Workers: 2, Timeout: 5}, receiver)

	stopExternal := s.g.Hold(t, 2, fmt.Sprintf("/recv?port=%d", port))
	first := s.waitVerdict(t, "external_call", 60*time.Second)
	s.askScaleUp(t)
	waitFor(t, 30*time.Second, "the scale-up acted under external_call", func() bool {
		for _, d := range getIncidents(t, s.exp, "?app=shop")[0].Decisions {
			if d.Outcome == "acted" {
				return true
			}
		}
		return false
	})

	// The second fault: the stuck workers end at their timeout, and the
	// next requests wait on the database.
	stopExternal()
	s.g.Hold(t, 2, "/dbview")
	second := s.waitVerdict(t, "database_slow_query", 60*time.Second)
	require.Equal(t, first.ID, second.ID, "one incident")
	s.askScaleUpAt(t, time.Now())
	s.waitRefusal(t, "verdict_database_slow_query")

	inc := getIncidents(t, s.exp, "?app=shop")[0]
	require.Equal(t, incident.CauseDatabaseSlowQuery, inc.Cause)
	var causes []incident.Cause
	for _, span := range inc.Causes {
		causes = append(causes, span.Cause)
	}
	ext := slices.Index(causes, incident.CauseExternalCall)
	require.GreaterOrEqual(t, ext, 0, "the first cause is kept: %v", causes)
	require.Equal(t, incident.CauseDatabaseSlowQuery, causes[len(causes)-1], "%v", causes)
	require.Less(t, ext, len(causes)-1)
	span := inc.Causes[ext]
	require.NotNil(t, span.Until, "external_call ended")
	require.Contains(t, span.Summary, fmt.Sprintf("127.0.0.1:%d", port))
	require.Nil(t, inc.Causes[len(causes)-1].Until, "the current cause of an open incident")

	var acted, refused *incident.Decision
	for i, d := range inc.Decisions {
		switch {
		case d.Outcome == "acted" && acted == nil:
			acted = &inc.Decisions[i]
		case d.Refusal == "verdict_database_slow_query":
			refused = &inc.Decisions[i]
		}
	}
	require.NotNil(t, acted, "%+v", inc.Decisions)
	require.NotNil(t, refused, "%+v", inc.Decisions)
	require.Equal(t, incident.CauseExternalCall, acted.Cause, "acted under external_call")
	require.Equal(t, incident.CauseDatabaseSlowQuery, refused.Cause, "refused under database_slow_query")

	out, err := exec.Command(reflextest.Binary(t), "explain", "--url", s.exp.URL, "--app", "shop").CombinedOutput()
	require.NoError(t, err, string(out))
	text := string(out)
	t.Logf("explain:\n%s", text)
	require.Contains(t, text, "Verdict: database_slow_query (confidence ")
	require.Regexp(t, `\n  before: external_call \d\d:\d\d:\d\d–\d\d:\d\d:\d\d \(0\.80\): \d+ stuck worker\(s\) of shop wait on a socket to 127\.0\.0\.1:`+strconv.Itoa(port), text)
	require.Contains(t, text, "scale_up acted under external_call")
	require.Contains(t, text, "scale_up refused under database_slow_query (verdict_database_slow_query)")
}
