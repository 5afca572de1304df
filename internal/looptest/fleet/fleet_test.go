// Package fleet_test is the fleet test of the remediation loop: two app
// hosts on one machine, each its own Gunicorn and gunicorn-reflex on its own
// loopback address, one Prometheus scraping both, and two Alertmanager
// peers gossiping in a cluster, each routing every remediation alert to
// both receivers. A fault on one host makes only that host's receiver act,
// exactly once.
package fleet_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/looptest"
)

// scaleUpAlert is the shipped alert that acts on workers timing out.
const scaleUpAlert = "GunicornWorkersTimingOutScaleUp"

// TestFleetActsOnlyOnTheHostTheAlertIsAbout starts host A on 127.0.0.2 and
// host B on 127.0.0.3 (the same app name on both, as in a fleet), ties up
// A's workers with requests that outlive Gunicorn's --timeout, and follows
// the shipped scale-up rule through Prometheus and the Alertmanager cluster:
//
//   - the alert fires in Prometheus for A's instance only, and both peers
//     hold it;
//   - A's receiver scales up exactly once and verifies it in /proc;
//   - B's receiver receives every notification A receives and ignores each
//     as other_host, its worker count unchanged and its audit log without
//     an action;
//   - every notification the peers sent reached A, and all but the first
//     were absorbed as duplicates.
//
// The peers run with --cluster.peer-timeout=0s, so both notify at once as
// an HA pair does when gossip lags, and the receiver, not Alertmanager's
// notification log, is what keeps the action to one.
//
// The rules are the shipped ones, unchanged.
func TestFleetActsOnlyOnTheHostTheAlertIsAbout(t *testing.T) {
	// A answers to its bare address (the instance's host part), B to its
	// default, the exporter's own host:port: both forms of the identity.
	begin := time.Now()
	a := looptest.StartHost(t, looptest.HostOptions{Addr: "127.0.0.2", Identity: []string{"127.0.0.2"}})
	b := looptest.StartHost(t, looptest.HostOptions{Addr: "127.0.0.3"})
	require.Equal(t, a.Opts.App, b.Opts.App, "the same app on both hosts: only the instance tells them apart")

	hooks := []looptest.Webhook{{URL: a.WebhookURL(), TokenFile: a.TokenFile}, {URL: b.WebhookURL(), TokenFile: b.TokenFile}}
	am1 := looptest.StartAlertmanager(t, looptest.AMOptions{Webhooks: hooks, Cluster: true, PeerTimeout: "0s"})
	am2 := looptest.StartAlertmanager(t, looptest.AMOptions{Webhooks: hooks, Cluster: true, PeerTimeout: "0s",
		Peers: []string{am1.ClusterAddr}})
	waitClusterSize(t, am1, 2)
	waitClusterSize(t, am2, 2)

	p := looptest.StartPrometheus(t, looptest.PromOptions{Targets: []string{a.Instance, b.Instance},
		Alertmanagers: []string{am1.Addr(), am2.Addr()}, RuleFiles: looptest.ShippedRules(t)})
	p.WaitSeries(t, `count(up{job="gunicorn-reflex"} == 1) == 2`, 30*time.Second)

	t.Logf("fleet up in %v", time.Since(begin).Round(time.Millisecond))
	workersA, workersB := len(a.G.WorkerPIDs()), len(b.G.WorkerPIDs())
	// The fault: A's app calls an external service that accepts and never
	// answers; more requests than workers keep every worker tied up (and
	// one waiting), and each ends in a WORKER TIMEOUT.
	port := looptest.HungService(t)
	start := time.Now()
	a.G.Hold(t, workersA+2, fmt.Sprintf("/recv?port=%d", port))

	p.WaitAlert(t, 60*time.Second, scaleUpAlert, "firing", "instance", a.Instance)
	t.Logf("%v after the fault: %s firing for %s", time.Since(start).Round(time.Millisecond), scaleUpAlert, a.Instance)
	first, ok := am1.FindAlert(t, scaleUpAlert, "instance", a.Instance)
	require.True(t, ok, "peer 1 holds A's alert")
	verified := a.WaitAudit(t, 60*time.Second, "scale_up", "verified")
	t.Logf("%v after the fault: A's scale-up verified", time.Since(start).Round(time.Millisecond))
	require.Equal(t, workersA+1, verified.Workers, "verified in /proc: one worker more")
	require.NoError(t, a.G.WaitWorkers(workersA+1, 10*time.Second))

	// Every flush of either peer posts to both receivers: wait until B has
	// ignored as many notifications as A received, and both match what the
	// peers say they sent.
	deadline := time.Now().Add(30 * time.Second)
	var got fleetCounts
	for {
		got = counts(t, a, b, am1, am2)
		if got.settled() || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%v after the fault: counts settled", time.Since(start).Round(time.Millisecond))
	t.Logf("notifications sent: peer 1 %d, peer 2 %d; A queued %d, deduplicated %d; B other_host %d",
		got.sent[0], got.sent[1], got.aQueued, got.aDedup, got.bOtherHost)
	// Both peers hold the alert, the one that fired first: had it resolved
	// and fired again (a new startsAt), A would rightly have queued two.
	for _, am := range []*looptest.Alertmanager{am1, am2} {
		now, ok := am.FindAlert(t, scaleUpAlert, "instance", a.Instance)
		require.True(t, ok, "peer %s holds A's alert", am.Addr())
		require.True(t, now.StartsAt.Equal(first.StartsAt), "the alert flapped: started %v, now %v", first.StartsAt, now.StartsAt)
	}
	require.True(t, got.settled(), "counts never agreed: %+v", got)
	require.Equal(t, 1, got.aQueued, "A queued its alert once")
	require.Equal(t, got.sent[0]+got.sent[1]-1, got.aDedup, "every further notification absorbed as a duplicate")

	require.Equal(t, 1, countAudit(a.Audit(t), "scale_up", "acted"), "A acted exactly once:\n%s", rawAudit(a.Audit(t)))
	for _, l := range b.Audit(t) {
		require.NotContains(t, []string{"acted", "verified", "dry_run"}, l.Outcome, "B decided on A's alert: %s", l.Raw)
	}
	require.Len(t, b.G.WorkerPIDs(), workersB, "B's workers untouched")
	_, ok = p.FindAlert(t, scaleUpAlert, "firing", "instance", b.Instance)
	require.False(t, ok, "no scale-up alert about B")
}

type fleetCounts struct {
	sent             [2]int
	aQueued, aDedup  int
	bOtherHost       int
	aFiring, bFiring int
}

// settled is true when every notification a peer sent was received by both
// receivers and accounted for.
func (c fleetCounts) settled() bool {
	sent := c.sent[0] + c.sent[1]
	return sent > 0 && c.aFiring == sent && c.bFiring == sent && c.aQueued+c.aDedup == sent && c.bOtherHost == sent
}

func counts(t *testing.T, a, b *looptest.Host, ams ...*looptest.Alertmanager) fleetCounts {
	t.Helper()
	var c fleetCounts
	for i, am := range ams {
		// Each flush posts the group to both webhooks; nothing has
		// resolved yet, so every notification is a firing one.
		c.sent[i] = int(sumSamples(t, get(t, am.URL+"/metrics"), "alertmanager_notifications_total", `integration="webhook"`)) / 2
	}
	ta, tb := a.Exp.Scrape(t).Text, b.Exp.Scrape(t).Text
	const name = "reflex_receiver_alerts_total"
	c.aQueued = int(sumSamples(t, ta, name, `status="firing"`, `result="queued"`))
	c.aDedup = int(sumSamples(t, ta, name, `status="firing"`, `result="deduplicated"`))
	c.bOtherHost = int(sumSamples(t, tb, name, `status="firing"`, `result="other_host"`))
	c.aFiring = int(sumSamples(t, ta, name, `status="firing"`))
	c.bFiring = int(sumSamples(t, tb, name, `status="firing"`))
	return c
}

// sumSamples sums the samples of family name in the exposition text whose
// labels contain every one of match (name="value" pairs).
func sumSamples(t *testing.T, text, name string, match ...string) float64 {
	t.Helper()
	var sum float64
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, name+"{") {
			continue
		}
		labels := l[len(name) : strings.LastIndexByte(l, '}')+1]
		ok := true
		for _, m := range match {
			ok = ok && (strings.Contains(labels, "{"+m) || strings.Contains(labels, ","+m))
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		require.NoError(t, err, l)
		sum += v
	}
	return sum
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", url, body)
	return string(body)
}

// waitClusterSize waits until am's /api/v2/status lists n peers and says
// the cluster is ready, so both peers hold every alert and share their
// notification logs before the fault starts.
func waitClusterSize(t *testing.T, am *looptest.Alertmanager, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st struct {
			Cluster struct {
				Status string            `json:"status"`
				Peers  []json.RawMessage `json:"peers"`
			} `json:"cluster"`
		}
		require.NoError(t, json.Unmarshal([]byte(get(t, am.URL+"/api/v2/status")), &st))
		if st.Cluster.Status == "ready" && len(st.Cluster.Peers) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager %s: cluster %q with %d peers, want ready with %d", am.Addr(), st.Cluster.Status, len(st.Cluster.Peers), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func countAudit(ls []looptest.AuditLine, action, outcome string) int {
	n := 0
	for _, l := range ls {
		if l.Action == action && l.Outcome == outcome {
			n++
		}
	}
	return n
}

func rawAudit(ls []looptest.AuditLine) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}
