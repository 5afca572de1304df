package promtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
)

// Webhook is one receiver Alertmanager posts to: its URL and the file
// holding its bearer token.
type Webhook struct {
	URL, TokenFile string
}

// AMOptions configures an Alertmanager: one route, grouped by alertname,
// app and instance, whose alerts go to every Webhook (one receiver, one
// webhook_config each, with send_resolved).
type AMOptions struct {
	// Addr is the loopback address of the web listener (and of the
	// cluster listener when ClusterAddr is empty); default 127.0.0.1.
	Addr string
	// Webhooks get the alerts Matchers select; at least one is required.
	Webhooks []Webhook
	// Matchers (Alertmanager's matcher syntax, e.g. `reflex_action=~".+"`)
	// select the alerts the Webhooks get; every other alert goes to a
	// receiver that sends nothing. Empty selects every alert.
	Matchers []string
	// GroupWait, GroupInterval and RepeatInterval of the route; defaults
	// 1s, 1s and 1h.
	GroupWait, GroupInterval, RepeatInterval string
	// Cluster, when true, gossips on ClusterAddr (default a free port of
	// Addr) with Peers (host:port of other peers' ClusterAddr), with
	// intervals short enough for a test.
	Cluster     bool
	ClusterAddr string
	Peers       []string
	// PeerTimeout is --cluster.peer-timeout, how long the peer at position
	// n waits (n times) for an earlier peer's notification before sending
	// its own; default 1s. "0s" makes every peer notify at once, so the
	// receivers see the duplicates an HA pair sends when gossip lags.
	PeerTimeout string
}

// Alertmanager is one running Alertmanager.
type Alertmanager struct {
	server
	// ClusterAddr is the gossip address when clustered.
	ClusterAddr string
}

// StartAlertmanager runs Alertmanager (Debian's prometheus-alertmanager)
// with a temporary storage directory and waits until it is ready; a cleanup
// stops it by pid. It skips (or fails under REFLEX_REQUIRE_REAL=1) when the
// binary is missing.
func StartAlertmanager(t testing.TB, o AMOptions) *Alertmanager {
	t.Helper()
	bin := testenv.LookPath(t, "prometheus-alertmanager")
	if len(o.Webhooks) == 0 {
		t.Fatalf("promtest: Alertmanager without a webhook")
	}
	o = amDefaults(o)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(amConfig(o)), 0o600); err != nil {
		t.Fatalf("promtest: %v", err)
	}
	addr := FreeAddr(t, o.Addr)
	args := []string{"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--log.level=debug"}
	am := &Alertmanager{server: server{name: "alertmanager", URL: "http://" + addr}}
	if !o.Cluster {
		args = append(args, "--cluster.listen-address=")
	} else {
		am.ClusterAddr = o.ClusterAddr
		if am.ClusterAddr == "" {
			am.ClusterAddr = FreeAddr(t, o.Addr)
		}
		args = append(args, "--cluster.listen-address="+am.ClusterAddr, "--cluster.advertise-address="+am.ClusterAddr,
			"--cluster.peer-timeout="+o.PeerTimeout, "--cluster.gossip-interval=100ms", "--cluster.pushpull-interval=1s",
			"--cluster.settle-timeout=2s", "--cluster.probe-interval=200ms")
		for _, p := range o.Peers {
			args = append(args, "--cluster.peer="+p)
		}
	}
	am.start(t, bin, args...)
	return am
}

func amDefaults(o AMOptions) AMOptions {
	if o.Addr == "" {
		o.Addr = "127.0.0.1"
	}
	if o.GroupWait == "" {
		o.GroupWait = "1s"
	}
	if o.GroupInterval == "" {
		o.GroupInterval = "1s"
	}
	if o.RepeatInterval == "" {
		o.RepeatInterval = "1h"
	}
	if o.PeerTimeout == "" {
		o.PeerTimeout = "1s"
	}
	return o
}

// amConfig is the configuration of o: a root route to a receiver that
// sends nothing, and below it the route of Matchers to the webhooks (a
// route without matchers takes every alert).
func amConfig(o AMOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, `route:
  receiver: none
  group_by: [alertname, app, instance]
  group_wait: %s
  group_interval: %s
  repeat_interval: %s
  routes:
    - receiver: webhooks
      matchers: [%s]
receivers:
  - name: none
  - name: webhooks
    webhook_configs:
`, o.GroupWait, o.GroupInterval, o.RepeatInterval, quoteList(o.Matchers))
	for _, w := range o.Webhooks {
		fmt.Fprintf(&b, `      - url: %q
        send_resolved: true
        http_config:
          authorization:
            credentials_file: %q
`, w.URL, w.TokenFile)
	}
	return b.String()
}

// AMAlert is one alert of /api/v2/alerts.
type AMAlert struct {
	Labels   map[string]string `json:"labels"`
	StartsAt time.Time         `json:"startsAt"`
	EndsAt   time.Time         `json:"endsAt"`
	Status   struct {
		State string `json:"state"`
	} `json:"status"`
	Receivers []struct {
		Name string `json:"name"`
	} `json:"receivers"`
}

// Alerts returns Alertmanager's alerts (/api/v2/alerts).
func (am *Alertmanager) Alerts(t testing.TB) []AMAlert {
	t.Helper()
	resp, err := client.Get(am.URL + "/api/v2/alerts")
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []AMAlert
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("promtest: /api/v2/alerts: %v: %s", err, body)
	}
	return out
}

// FindAlert returns the active alert named name whose labels include every
// given name=value pair.
func (am *Alertmanager) FindAlert(t testing.TB, name string, labels ...string) (AMAlert, bool) {
	t.Helper()
	for _, a := range am.Alerts(t) {
		if a.Labels["alertname"] == name && a.Status.State == "active" && hasLabels(a.Labels, labels) {
			return a, true
		}
	}
	return AMAlert{}, false
}

// Fire posts one alert to Alertmanager as Prometheus does, ending an hour
// after startsAt (the same startsAt to every peer of a cluster makes it
// one alert).
func (am *Alertmanager) Fire(t testing.TB, labels map[string]string, startsAt time.Time) {
	t.Helper()
	body, err := json.Marshal([]map[string]any{{
		"labels":   labels,
		"startsAt": startsAt.UTC().Format(time.RFC3339Nano),
		"endsAt":   startsAt.Add(time.Hour).UTC().Format(time.RFC3339Nano),
	}})
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	resp, err := client.Post(am.URL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("promtest: POST /api/v2/alerts: %d %s", resp.StatusCode, msg)
	}
}
