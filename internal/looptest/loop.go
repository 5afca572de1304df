package looptest

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// Options configures Start: one host, one Prometheus, one Alertmanager.
type Options struct {
	Host HostOptions
	// RuleFiles as in PromOptions (default: the shipped rules).
	RuleFiles []string
	// GroupWait, GroupInterval, RepeatInterval as in AMOptions.
	GroupWait, GroupInterval, RepeatInterval string
}

// Loop is the whole loop of one host.
type Loop struct {
	Host *Host
	Prom *Prometheus
	AM   *Alertmanager
}

// Start starts a host, an Alertmanager routing to its receiver, and a
// Prometheus scraping its exporter and sending to the Alertmanager, all on
// Options.Host.Addr (default 127.0.0.1), and waits until Prometheus has
// scraped the exporter once.
func Start(t testing.TB, o Options) *Loop {
	t.Helper()
	h := StartHost(t, o.Host)
	am := StartAlertmanager(t, AMOptions{Addr: h.Opts.Addr, Webhooks: []Webhook{{URL: h.WebhookURL(), TokenFile: h.TokenFile}},
		GroupWait: o.GroupWait, GroupInterval: o.GroupInterval, RepeatInterval: o.RepeatInterval})
	p := StartPrometheus(t, PromOptions{Addr: h.Opts.Addr, Targets: []string{h.Instance}, Alertmanagers: []string{am.Addr()},
		RuleFiles: o.RuleFiles})
	p.WaitSeries(t, `up{job="gunicorn-reflex"} == 1`, 30*time.Second)
	return &Loop{Host: h, Prom: p, AM: am}
}

// AuditLine is one decision of the receiver's audit log (the fields the
// loop reads).
type AuditLine struct {
	ID       string    `json:"id"`
	Verifies string    `json:"verifies"` // a verification line: the ID of the acted line it verifies
	At       time.Time `json:"at"`
	App      string    `json:"app"`
	Action   string    `json:"action"`
	Outcome  string    `json:"outcome"`
	Refusal  string    `json:"refusal"`
	Reason   string    `json:"reason"`
	Evidence string    `json:"evidence"`
	Workers  int       `json:"workers"`
	Target   int       `json:"target"`
	Raw      string    `json:"-"`
}

// Audit reads the host's audit log (nil before the first decision).
func (h *Host) Audit(t testing.TB) []AuditLine {
	t.Helper()
	f, err := os.Open(h.AuditLog)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("looptest: %v", err)
	}
	defer f.Close()
	var out []AuditLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l AuditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("looptest: audit line %q: %v", sc.Text(), err)
		}
		l.Raw = sc.Text()
		out = append(out, l)
	}
	return out
}

// WaitAudit polls the audit log until a line has action and outcome, and
// returns it.
func (h *Host) WaitAudit(t testing.TB, timeout time.Duration, action, outcome string) AuditLine {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range h.Audit(t) {
			if l.Action == action && l.Outcome == outcome {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("looptest: no %s %s in the audit log after %v", action, outcome, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
