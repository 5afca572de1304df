// Package demo owns `make demo`: it starts the whole remediation loop on
// loopback in a temporary directory (a real Gunicorn with the test app, a
// real PostgreSQL, gunicorn-reflex with the receiver enabled, a real
// Prometheus loading a time-compressed copy of alerts/ with 1 s scrape and
// evaluation intervals, a real Alertmanager routing reflex_action alerts to
// the receiver) and drives a short narrative through it, printing each
// step as it happens with the command a person would run to see it.
//
// It is a development tool built on the test harnesses, never part of the
// release binary; its test runs the narrative once so it cannot rot.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/gunicorntest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/looptest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgtest"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// Steps are the headings Run prints, in order; the test requires each.
var Steps = []string{
	"1. Normal traffic",
	"2. A hung external service ties up the workers",
	"3. A slow database query: the receiver refuses to scale up",
	"4. Recovery: scale-down after stabilisation",
}

// Options configures Run. The zero value is the demo `make demo` runs.
type Options struct {
	// AlertsDir holds the shipped rule files; default: the module's
	// alerts/.
	AlertsDir string
	// TimeScale divides every `for:` and range of the rules; default 120.
	TimeScale int
	// StepTimeout bounds each wait; default 60 s.
	StepTimeout time.Duration
}

const (
	app   = "shop"
	token = "demo-token-4b7e1a"
	// scaleUpAlert is the shipped alert that asks for a worker when
	// workers time out with none idle.
	scaleUpAlert = "GunicornWorkersTimingOutScaleUp"
	// slowScaleUpAlert is the shipped alert that asks for a worker after
	// 10 minutes of saturation without timeouts.
	slowScaleUpAlert = "GunicornWorkersSaturatedScaleUp"
)

// Run starts everything, drives the narrative and writes it to w. It
// returns when the narrative is done or ctx is cancelled; the processes
// stop in tb's cleanups. Harness failures end it through tb.
func Run(ctx context.Context, tb testing.TB, w io.Writer, o Options) error {
	if o.AlertsDir == "" {
		o.AlertsDir = filepath.Dir(looptest.ShippedRules(tb)[0])
	}
	if o.TimeScale == 0 {
		o.TimeScale = 120
	}
	if o.StepTimeout == 0 {
		o.StepTimeout = 60 * time.Second
	}
	d := &driver{ctx: ctx, tb: tb, n: &narrator{w: w, start: time.Now()}, o: o}
	return d.run()
}

type driver struct {
	ctx context.Context
	tb  testing.TB
	n   *narrator
	o   Options

	dir  string
	loop *looptest.Loop
	g    *gunicorntest.Gunicorn
	exp  *reflextest.Exporter
}

func (d *driver) run() error {
	if err := d.start(); err != nil {
		return err
	}
	for _, step := range []func() error{d.normal, d.hungExternal, d.slowDatabase, d.recovery} {
		if err := step(); err != nil {
			return err
		}
	}
	d.n.title("Done")
	d.n.say("the loop closed: timeouts → alert → verified scale-up → incident → refusal on the database → scale-down.")
	d.n.say("next: every process is stopped by pid and the temporary directories are removed.")
	return nil
}

func (d *driver) start() error {
	tb := d.tb
	d.dir = tb.TempDir()
	d.n.title("Starting the loop on loopback")
	rules := filepath.Join(d.dir, "rules")
	// The slow scale-up path (saturated for 10 minutes without timeouts)
	// keeps its shipped `for:`: compressed to seconds it would add a second
	// worker on top of the fast path's within the same fault, which is not
	// what ten minutes of it mean.
	changed, err := CompressRules(d.o.AlertsDir, rules, d.o.TimeScale, slowScaleUpAlert)
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(rules, "*.yml"))
	if err != nil {
		return err
	}
	d.n.say("DEMO-ONLY RULES: %s holds a copy of alerts/ with every `for:` and range divided by %d,", rules, d.o.TimeScale)
	d.n.say("  so this runs in two minutes (%s). Production loads alerts/ unchanged.", describe(changed))
	d.n.say("  %s (the slow path: saturated 10 minutes without timeouts) keeps its shipped for: 10m.", slowScaleUpAlert)

	pg := pgtest.Start(tb, pgtest.Options{})
	d.n.say("PostgreSQL      %s:%d", pg.Host, pg.Port)
	pgDSN := filepath.Join(d.dir, "pg.dsn")
	if err := os.WriteFile(pgDSN, []byte(pg.DSN(pgtest.Superuser)), 0o600); err != nil {
		return err
	}
	// The receiver's knobs are short for the same reason as the rules'
	// durations; the CPU guard is off (looptest's default), because the
	// demo shares its machine with its own Prometheus and PostgreSQL.
	d.loop = looptest.Start(tb, looptest.Options{
		Host: looptest.HostOptions{App: app, Workers: 2, Timeout: 3, MinWorkers: 2, MaxWorkers: 4,
			Cooldown: "5s", Grace: "2s", Stabilization: "15s",
			GunicornEnv: []string{gunicorntest.PgDSNEnv + "=" + pg.DSN(pgtest.Superuser)},
			ExtraConfig: fmt.Sprintf("postgres:\n  - name: main\n    dsn_file: %s\n    age_thresholds: [1s]\n", pgDSN)},
		RuleFiles: files, GroupWait: "1s", GroupInterval: "1s", RepeatInterval: "2s",
	})
	h := d.loop.Host
	d.g, d.exp = h.G, h.Exp
	d.n.say("Gunicorn        %s  (app %s, 2 workers, --timeout 3, master pid %d)", d.g.BaseURL, app, d.g.MasterPID())
	d.n.say("gunicorn-reflex %s  (receiver enabled, config %s)", d.exp.URL, h.Config)
	d.n.say("Alertmanager    %s  (group_wait 1s, reflex_action alerts → %s)", d.loop.AM.URL, h.WebhookURL())
	d.n.say("Prometheus      %s  (1s scrape and evaluation)", d.loop.Prom.URL)
	d.n.say("everything lives in %s and temporary directories beside it", d.dir)
	return nil
}

func (d *driver) normal() error {
	d.n.title(Steps[0])
	stop := d.g.Hold(d.tb, 2, "/ok")
	defer stop()
	if err := d.waitFor("requests in the access log", func() (bool, string) {
		v, _ := d.scrape().Value("gunicorn_http_requests_total", "app", app, "method", "GET", "status_class", "2xx")
		return v >= 20, ""
	}); err != nil {
		return err
	}
	m := d.scrape()
	ok, _ := m.Value("gunicorn_http_requests_total", "app", app, "method", "GET", "status_class", "2xx")
	to, _ := m.Value("gunicorn_worker_timeouts_total", "app", app)
	d.n.cmd("curl -s %s/metrics | grep -E '^gunicorn_(http_requests_total|worker_timeouts_total)'", d.exp.URL)
	d.n.saw("%.0f requests answered 2xx, %.0f WORKER TIMEOUTs, %d workers in /proc", ok, to, len(d.g.WorkerPIDs()))
	return nil
}

func (d *driver) hungExternal() error {
	d.n.title(Steps[1])
	hole := pgtest.NewBlackhole(d.tb)
	d.n.say("a service on %s accepts connections and never answers; /recv?port=%d calls it without a timeout.", hole.Addr, hole.Port())
	stop := d.g.Hold(d.tb, 4, fmt.Sprintf("/recv?port=%d", hole.Port()))
	defer func() { stop(); hole.Close() }()

	if err := d.g.WaitLog("WORKER TIMEOUT", 1, d.o.StepTimeout); err != nil {
		return err
	}
	d.n.cmd("grep 'WORKER TIMEOUT' %s", d.g.ErrorLog)
	d.n.saw("Gunicorn killed a worker held past --timeout 3")
	if err := d.waitFor("the exporter counts the timeout", func() (bool, string) {
		v, _ := d.scrape().Value("gunicorn_worker_timeouts_total", "app", app)
		return v >= 1, ""
	}); err != nil {
		return err
	}
	d.n.cmd("curl -s %s/metrics | grep '^gunicorn_worker_timeouts_total'", d.exp.URL)
	d.n.saw("the exporter counted it")
	if err := d.waitAlert(scaleUpAlert, "firing"); err != nil {
		return err
	}
	d.n.cmd("curl -s %s/api/v1/alerts", d.loop.Prom.URL)
	d.n.saw("%s is firing (reflex_action=scale_up)", scaleUpAlert)
	if err := d.waitFor("Alertmanager has the alert", func() (bool, string) {
		return d.amHas(scaleUpAlert), ""
	}); err != nil {
		return err
	}
	d.n.cmd("curl -s %s/api/v2/alerts", d.loop.AM.URL)
	d.n.saw("Alertmanager holds it and posts it to the receiver")
	var up looptest.AuditLine
	if err := d.waitFor("a verified scale-up", func() (bool, string) {
		l, ok := d.lastAudit("scale_up", "verified")
		up = l
		return ok, ""
	}); err != nil {
		return err
	}
	d.n.cmd("tail -n 3 %s", d.loop.Host.AuditLog)
	acted := d.auditByID(up.Verifies)
	d.n.saw("scale_up verified: %d → %d workers; /proc shows %d workers under master %d", acted.Workers, acted.Target, len(d.g.WorkerPIDs()), d.g.MasterPID())
	var inc incident
	if err := d.waitFor("the incident names the external call", func() (bool, string) {
		i, ok := d.openIncident()
		inc = i
		return ok && i.Cause == "external_call" && strings.Contains(i.Summary, hole.Addr), i.Cause
	}); err != nil {
		return err
	}
	d.n.cmd("gunicorn-reflex explain --app %s --url %s", app, d.exp.URL)
	d.explain()
	d.n.saw("incident %s: %s (%s): %s", inc.ID, inc.Cause, hole.Addr, inc.Summary)
	d.n.say("incident page: %s/incidents/%s", d.exp.URL, inc.ID)
	return nil
}

func (d *driver) slowDatabase() error {
	d.n.title(Steps[2])
	d.n.say("the hung service is gone; /db?s=20 runs SELECT pg_sleep(20) on PostgreSQL.")
	if err := d.waitAlert(scaleUpAlert, ""); err != nil {
		return err
	}
	d.n.saw("the scale-up alert resolved")
	stop := d.g.Hold(d.tb, 5, "/db?s=20")
	defer stop()
	var ref looptest.AuditLine
	if err := d.waitFor("the receiver refuses a scale-up", func() (bool, string) {
		l, ok := d.lastAudit("scale_up", "refused")
		ref = l
		return ok, ""
	}); err != nil {
		return err
	}
	d.n.cmd("curl -s %s/api/v1/alerts | grep -o %s", d.loop.Prom.URL, scaleUpAlert)
	d.n.saw("the alert fired again, and Alertmanager sent it")
	d.n.cmd("grep refused %s", d.loop.Host.AuditLog)
	d.n.saw("refused (%s): %s", ref.Refusal, ref.Reason)
	if ref.Evidence != "" {
		d.n.say("  evidence: %s", ref.Evidence)
	}
	d.n.saw("/proc still shows %d workers: more workers would only run more of the slow query", len(d.g.WorkerPIDs()))
	// The incident engine takes the decision from the timeline at its
	// next step: wait until the incident holds the refusal.
	var inc incident
	if err := d.waitFor("the incident holds the refusal", func() (bool, string) {
		i, ok := d.openIncident()
		inc = i
		return ok && strings.Contains(i.underWhich("scale_up"), "refused under "), i.underWhich("scale_up")
	}); err != nil {
		return err
	}
	d.n.cmd("gunicorn-reflex explain --app %s --url %s", app, d.exp.URL)
	d.n.saw("incident %s: %s: %s", inc.ID, inc.Cause, inc.Summary)
	if before := inc.earlier(); before != "" {
		d.n.saw("the same incident was %s before", before)
	}
	d.n.saw("its scale_up decisions: %s", inc.underWhich("scale_up"))
	return nil
}

func (d *driver) recovery() error {
	d.n.title(Steps[3])
	d.n.say("traffic stops; the workers go idle. The scale-down rule waits for the idle window, then the receiver")
	d.n.say("waits for its stabilisation after the scale-up.")
	var down looptest.AuditLine
	if err := d.waitFor("a verified scale-down", func() (bool, string) {
		l, ok := d.lastAudit("scale_down", "verified")
		down = l
		return ok, ""
	}); err != nil {
		return err
	}
	d.n.cmd("curl -s %s/api/v1/alerts | grep -o GunicornWorkersIdleScaleDown", d.loop.Prom.URL)
	d.n.cmd("tail -n 2 %s", d.loop.Host.AuditLog)
	acted := d.auditByID(down.Verifies)
	d.n.saw("scale_down verified: %d → %d workers; /proc shows %d workers", acted.Workers, acted.Target, len(d.g.WorkerPIDs()))
	d.n.cmd("curl -s %s/metrics | grep '^reflex_remediation_decisions_total' | grep -v ' 0$'", d.exp.URL)
	return nil
}

// explain runs `gunicorn-reflex explain` as a person would and prints the
// first lines of what it says.
func (d *driver) explain() {
	out, err := exec.CommandContext(d.ctx, reflextest.Binary(d.tb), "explain", "--app", app, "--url", d.exp.URL).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 6 {
		lines = append(lines[:6], "...")
	}
	for _, l := range lines {
		d.n.say("  | %s", l)
	}
	if err != nil {
		d.n.say("  (explain: %v)", err)
	}
}

func (d *driver) waitFor(what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(d.o.StepTimeout)
	last := ""
	for {
		ok, seen := cond()
		if ok {
			return nil
		}
		if seen != "" {
			last = seen
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not seen after %s (last seen %q)\n%s", what, d.o.StepTimeout, last, d.tail())
		}
		select {
		case <-d.ctx.Done():
			return fmt.Errorf("%s: %w", what, d.ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *driver) tail() string {
	audit, _ := os.ReadFile(d.loop.Host.AuditLog)
	return fmt.Sprintf("audit log:\n%s\ngunicorn-reflex log (tail):\n%s", audit, d.exp.Stderr.Tail(20))
}

func (d *driver) scrape() *reflextest.Metrics { return d.exp.Scrape(d.tb) }

func getJSON(u string, v any) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitAlert waits until Prometheus shows alertname for the app in state
// ("firing"), or no longer shows it at all (state "").
func (d *driver) waitAlert(alertname, state string) error {
	what := alertname + " " + state
	if state == "" {
		what = alertname + " resolved"
	}
	return d.waitFor(what, func() (bool, string) {
		var r struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if err := getJSON(d.loop.Prom.URL+"/api/v1/alerts", &r); err != nil {
			return false, err.Error()
		}
		got := ""
		for _, a := range r.Data.Alerts {
			if a.Labels["alertname"] == alertname && a.Labels["app"] == app {
				got = a.State
			}
		}
		return got == state, got
	})
}

func (d *driver) amHas(alertname string) bool {
	var alerts []struct {
		Labels map[string]string `json:"labels"`
	}
	if err := getJSON(d.loop.AM.URL+"/api/v2/alerts?active=true", &alerts); err != nil {
		return false
	}
	for _, a := range alerts {
		if a.Labels["alertname"] == alertname && a.Labels["app"] == app {
			return true
		}
	}
	return false
}

func (d *driver) lastAudit(action, outcome string) (looptest.AuditLine, bool) {
	return d.findAudit(func(l looptest.AuditLine) bool { return l.Action == action && l.Outcome == outcome })
}

// auditByID is the audit line named id: the acted line a verification
// line verifies (the last acted line of the file may be another decision's).
func (d *driver) auditByID(id string) looptest.AuditLine {
	l, _ := d.findAudit(func(l looptest.AuditLine) bool { return id != "" && l.ID == id })
	return l
}

// findAudit is the last audit line that match accepts.
func (d *driver) findAudit(match func(looptest.AuditLine) bool) (looptest.AuditLine, bool) {
	lines := d.loop.Host.Audit(d.tb)
	for i := len(lines) - 1; i >= 0; i-- {
		if match(lines[i]) {
			return lines[i], true
		}
	}
	return looptest.AuditLine{}, false
}

type incident struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Cause   string `json:"cause"`
	Summary string `json:"summary"`
	// Causes is the verdict's history, oldest first (the last is Cause).
	Causes []struct {
		Cause string `json:"cause"`
	} `json:"causes"`
	// Decisions are the receiver's, each with the verdict it was taken
	// under.
	Decisions []struct {
		Action  string `json:"action"`
		Outcome string `json:"outcome"`
		Cause   string `json:"cause"`
	} `json:"decisions"`
}

// earlier names the causes the incident held before its current one.
func (i incident) earlier() string {
	var names []string
	for _, c := range i.Causes[:max(len(i.Causes)-1, 0)] {
		names = append(names, c.Cause)
	}
	return strings.Join(names, ", ")
}

// underWhich says which verdict the first decision of each outcome of
// action was taken under ("acted under external_call, refused under
// database_slow_query").
func (i incident) underWhich(action string) string {
	var parts []string
	seen := map[string]bool{}
	for _, d := range i.Decisions {
		if d.Action != action || d.Cause == "" || seen[d.Outcome] || (d.Outcome != "acted" && d.Outcome != "refused") {
			continue
		}
		seen[d.Outcome] = true
		parts = append(parts, d.Outcome+" under "+d.Cause)
	}
	return strings.Join(parts, ", ")
}

func (d *driver) openIncident() (incident, bool) {
	var r struct {
		Incidents []incident `json:"incidents"`
	}
	if err := getJSON(d.exp.URL+"/api/v1/incidents?app="+app+"&state=open", &r); err != nil || len(r.Incidents) == 0 {
		return incident{}, false
	}
	return r.Incidents[0], true
}

// narrator prints the story: headings, what happens, the command to see
// it, and what was seen, each with the time since the start.
type narrator struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (n *narrator) printf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, format+"\n", args...)
}

func (n *narrator) title(s string) {
	n.printf("\n[%5.1fs] == %s ==", time.Since(n.start).Seconds(), s)
}

func (n *narrator) say(format string, args ...any) {
	n.printf("          "+format, args...)
}

func (n *narrator) cmd(format string, args ...any) { n.printf("          $ "+format, args...) }

func (n *narrator) saw(format string, args ...any) {
	n.printf("[%5.1fs]   → "+format, append([]any{time.Since(n.start).Seconds()}, args...)...)
}
