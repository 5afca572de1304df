package looptest_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/looptest"
)

// scaleUpRule and scaleDownRule are the shipped remediation alerts that
// act in this scenario: the fast scale-up (workers timing out with none
// idle) and the scale-down.
const (
	scaleUpRule   = "GunicornWorkersTimingOutScaleUp"
	scaleDownRule = "GunicornWorkersIdleScaleDown"
)

// stabilization is the receiver's scale-down wait after a scale-up.
const stabilization = 30 * time.Second

// stages are the instants of one pass through the loop, all read from the
// one machine clock.
type stages struct {
	faultStart     time.Time // the first request to the hung view was sent
	timeoutLine    time.Time // the test saw the first WORKER TIMEOUT line in the error log
	exporterSees   time.Time // gunicorn_worker_timeouts_total >= 1 on the exporter's /metrics
	prometheusSees time.Time // the same counter in Prometheus (a scrape took it)
	ruleActive     time.Time // the scale-up alert's activeAt (Prometheus's evaluation time; it has no for:, so it fires then)
	ruleFiring     time.Time // the test saw it firing (polled every 100 ms)
	webhook        time.Time // the receiver logged Alertmanager's first notification of it
	receiverActs   time.Time // the audit log's acted decision (TTIN sent next)
	verified       time.Time // the audit log's verified line (the new worker seen in /proc)
}

// parts are the stages as offsets from the first WORKER TIMEOUT line (a
// negative one happened before it), and the totals.
func (s stages) parts() []part {
	from := func(at time.Time) time.Duration { return at.Sub(s.timeoutLine) }
	return []part{
		{"fault starts (requests to the hung view)", from(s.faultStart)},
		{"exporter counts the timeout", from(s.exporterSees)},
		{"Prometheus has the count", from(s.prometheusSees)},
		{"scale-up rule active (activeAt)", from(s.ruleActive)},
		{"scale-up rule firing (seen)", from(s.ruleFiring)},
		{"Alertmanager's webhook reaches the receiver", from(s.webhook)},
		{"receiver decides: acted", from(s.receiverActs)},
		{"verified in /proc", from(s.verified)},
		{"total: first WORKER TIMEOUT to verified", s.verified.Sub(s.timeoutLine)},
		{"total: fault start to verified", s.verified.Sub(s.faultStart)},
		{"rule firing (seen) to verified", s.verified.Sub(s.ruleFiring)},
	}
}

type part struct {
	name string
	d    time.Duration
}

// TestLoopEndToEnd closes the whole loop with real parts and asserts each
// step from the outside: a view calling a hung external service ties up
// both workers of a real Gunicorn (--timeout 2) → WORKER TIMEOUTs → the
// exporter counts them → the shipped scale-up rule fires in a real
// Prometheus (1 s scrape and evaluation) → a real Alertmanager (group_wait
// 1s) posts it with the bearer token → the receiver checks the incident's
// verdict (external_call does not refuse), sends TTIN and verifies the third
// worker in /proc → the incident names the peer → a scale-down is refused
// inside the stabilisation → the hung service recovers and the alert
// resolves in Prometheus and Alertmanager → the scale-down
// acts after the stabilisation.
//
// The scale-down rule's expression (busy at most 25% over 30 minutes, for
// 30 minutes) cannot become true within a test, so that step is driven by
// the alert the rule would send, posted to Alertmanager: it checks the
// decision and the action, not the rule (alerts/tests check the rule).
//
// REFLEX_LOOP_RUNS=N repeats the scale-up part N times, each on a fresh
// loop, and logs the median of every stage (BENCHMARKS.md).
func TestLoopEndToEnd(t *testing.T) {
	runs := 1
	if v := os.Getenv("REFLEX_LOOP_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "REFLEX_LOOP_RUNS")
		runs = max(n, 1)
	}
	var all [][]part
	for i := range runs {
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
			s := runLoop(t, i == runs-1)
			ps := s.parts()
			for _, p := range ps {
				t.Logf("%-50s %v", p.name, p.d.Round(time.Millisecond))
			}
			all = append(all, ps)
		})
	}
	if len(all) > 1 {
		t.Logf("median of %d runs:", len(all))
		for j := range all[0] {
			ds := make([]time.Duration, 0, len(all))
			for _, ps := range all {
				ds = append(ds, ps[j].d)
			}
			slices.Sort(ds)
			t.Logf("%-50s %v (min %v, max %v)", all[0][j].name, ds[len(ds)/2].Round(time.Millisecond),
				ds[0].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
		}
	}
}

// runLoop runs one pass; full adds the resolution and scale-down steps.
func runLoop(t *testing.T, full bool) stages {
	// The shipped rules, unchanged: the scale-up has no `for:` to shorten.
	l := looptest.Start(t, looptest.Options{RuleFiles: looptest.ShippedRules(t), Host: looptest.HostOptions{
		Workers: 2, Timeout: 2, MinWorkers: 2, MaxWorkers: 3, Stabilization: stabilization.String()}})
	h, app := l.Host, l.Host.Opts.App
	// The counters are in Prometheus at 0 before the fault, so the first
	// timeout is an increase it sees.
	l.Prom.WaitSeries(t, fmt.Sprintf(`gunicorn_worker_timeouts_total{app=%q} == 0`, app), 30*time.Second)

	port := looptest.HungService(t)
	var s stages
	s.faultStart = time.Now()
	stopHold := h.G.Hold(t, 2, fmt.Sprintf("/recv?port=%d", port))

	s.timeoutLine = waitLogLine(t, h.G.ErrorLog, "WORKER TIMEOUT", 30*time.Second)
	s.exporterSees = poll(t, 30*time.Second, "the exporter counts the timeout", func() bool {
		v, _ := h.Exp.Scrape(t).Value("gunicorn_worker_timeouts_total", "app", app)
		return v >= 1
	})
	s.prometheusSees = poll(t, 30*time.Second, "Prometheus has the timeout", func() bool {
		return len(l.Prom.Query(t, fmt.Sprintf(`gunicorn_worker_timeouts_total{app=%q} >= 1`, app))) > 0
	})
	alert := l.Prom.WaitAlert(t, 60*time.Second, scaleUpRule, "firing", "app", app, "instance", h.Instance)
	s.ruleActive, s.ruleFiring = alert.ActiveAt, time.Now()
	require.Equal(t, "scale_up", alert.Labels["reflex_action"])
	_, ok := l.AM.FindAlert(t, scaleUpRule, "app", app, "instance", h.Instance)
	require.True(t, ok, "Alertmanager has the alert")
	acted := h.WaitAudit(t, 30*time.Second, "scale_up", "acted")
	s.receiverActs = acted.At
	require.Equal(t, 2, acted.Workers, acted.Raw)
	require.Equal(t, 3, acted.Target, acted.Raw)
	verified := h.WaitAudit(t, 30*time.Second, "scale_up", "verified")
	s.verified = verified.At
	s.webhook = firstWebhook(t, h)
	require.NoError(t, h.G.WaitWorkers(3, 10*time.Second), "three workers of the master in /proc")
	if !full {
		stopHold()
		return s
	}

	// The incident names the cause and the hung peer, and holds the
	// receiver's decision.
	// The incident engine takes the decision from the timeline at its next
	// step, so the incident may name the cause before it holds the decision.
	inc := waitIncident(t, h, 30*time.Second, "external_call with the scale-up", func(inc apiIncident) bool {
		return inc.Cause == "external_call" && slices.ContainsFunc(inc.Decisions, func(d incidentDecision) bool {
			return d.Action == "scale_up" && d.Outcome == "acted"
		})
	})
	require.Contains(t, inc.Summary, fmt.Sprintf("127.0.0.1:%d", port), "the hung peer is named: %+v", inc)

	// Scale-down inside the 30 s stabilisation after the scale-up is
	// refused. It is asked now, while the fault lasts: the resolution below
	// takes about a minute (the rule looks back a minute for a dry pool),
	// longer than the stabilisation.
	down := func(attempt string) {
		l.AM.Fire(t, map[string]string{"alertname": scaleDownRule, "app": app, "instance": h.Instance, "job": "gunicorn-reflex",
			"reflex_action": "scale_down", "severity": "info", "attempt": attempt}, time.Now())
	}
	until := lastActed(h.Audit(t), "scale_up").Add(stabilization)
	require.Greater(t, time.Until(until), 2*time.Second, "the incident took the whole stabilisation: the refusal cannot be checked")
	down("1")
	h.WaitAudit(t, 30*time.Second, "scale_down", "stabilizing")
	require.Len(t, h.G.WorkerPIDs(), 3)

	// The hung service recovers (the requests stop): the alert resolves in
	// Prometheus, then in Alertmanager, which sends the resolution (the
	// receiver counts it and does nothing). While the fault lasts the alert
	// stays firing (the hung requests keep timing out), and a notification
	// Alertmanager repeats is refused (cooling_down, then out_of_bounds at
	// max_workers 3): the scale-up happens once.
	stopHold()
	poll(t, 150*time.Second, "the scale-up alert resolved in Prometheus", func() bool {
		_, pending := l.Prom.FindAlert(t, scaleUpRule, "pending")
		_, firing := l.Prom.FindAlert(t, scaleUpRule, "firing")
		return !pending && !firing
	})
	poll(t, 60*time.Second, "the scale-up alert resolved in Alertmanager", func() bool {
		_, ok := l.AM.FindAlert(t, scaleUpRule, "app", app)
		return !ok
	})
	poll(t, 30*time.Second, "the receiver got the resolution", func() bool {
		v, _ := h.Exp.Scrape(t).Value("reflex_receiver_alerts_total", "status", "resolved")
		return v >= 1
	})
	require.Len(t, h.G.WorkerPIDs(), 3, "a resolution changes nothing")
	require.Equal(t, 1, countAudit(h.Audit(t), "scale_up", "acted"), "one scale-up")

	// After the stabilisation that followed the last scale-up, a scale-down
	// acts and is verified.
	time.Sleep(time.Until(lastActed(h.Audit(t), "scale_up").Add(stabilization + 100*time.Millisecond)))
	down("2")
	d := h.WaitAudit(t, 30*time.Second, "scale_down", "acted")
	require.Equal(t, 2, d.Target, d.Raw)
	h.WaitAudit(t, 30*time.Second, "scale_down", "verified")
	require.NoError(t, h.G.WaitWorkers(2, 10*time.Second))
	return s
}

func countAudit(lines []looptest.AuditLine, action, outcome string) int {
	n := 0
	for _, l := range lines {
		if l.Action == action && l.Outcome == outcome {
			n++
		}
	}
	return n
}

// lastActed is the time of the newest decision that performed action (the
// receiver's stabilisation counts from it, not from later refusals).
func lastActed(lines []looptest.AuditLine, action string) time.Time {
	var at time.Time
	for _, l := range lines {
		if l.Action == action && l.Outcome == "acted" && l.At.After(at) {
			at = l.At
		}
	}
	return at
}

// webhookRe matches the receiver's debug line for a notification with an
// alert it queued for its app.
var webhookRe = regexp.MustCompile(`(?m)^time=(\S+) .*msg="webhook notification".* queued=[1-9]`)

// firstWebhook is when the receiver logged the first notification it
// queued.
func firstWebhook(t *testing.T, h *looptest.Host) time.Time {
	t.Helper()
	m := webhookRe.FindStringSubmatch(h.Exp.Stderr.String())
	require.NotNil(t, m, "no webhook notification in the receiver's log")
	at, err := time.Parse(time.RFC3339Nano, m[1])
	require.NoError(t, err)
	return at
}

// waitLogLine polls path every 10 ms until a line contains substr and
// returns when it was first seen.
func waitLogLine(t *testing.T, path, substr string, timeout time.Duration) time.Time {
	t.Helper()
	return pollEvery(t, 10*time.Millisecond, timeout, "a "+substr+" line in "+path, func() bool {
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.Contains(sc.Text(), substr) {
				return true
			}
		}
		return false
	})
}

func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	return pollEvery(t, 20*time.Millisecond, timeout, what, cond)
}

// pollEvery calls cond every step until it holds and returns the time it
// first held.
func pollEvery(t *testing.T, step, timeout time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(step)
	}
}

type incidentDecision struct {
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
}

type apiIncident struct {
	Cause     string             `json:"cause"`
	Summary   string             `json:"summary"`
	Decisions []incidentDecision `json:"decisions"`
}

// waitIncident polls GET /api/v1/incidents until one of the app's
// incidents satisfies ok.
func waitIncident(t *testing.T, h *looptest.Host, timeout time.Duration, what string, ok func(apiIncident) bool) apiIncident {
	t.Helper()
	var found apiIncident
	var last []apiIncident
	deadline := time.Now().Add(timeout)
	for {
		code, body, err := h.Exp.Get("/api/v1/incidents?app=" + h.Opts.App)
		require.NoError(t, err)
		require.Equal(t, 200, code, body)
		var got struct {
			Incidents []apiIncident `json:"incidents"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &got), body)
		last = got.Incidents
		for _, inc := range got.Incidents {
			if ok(inc) {
				found = inc
				return found
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no incident %s after %v; incidents: %+v", what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
