package promtest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/promtest"
)

// hook is a webhook receiver on loopback that records the alert names of
// every notification posted with its bearer token.
type hook struct {
	srv       *httptest.Server
	tokenFile string
	mu        sync.Mutex
	names     []string
}

func newHook(t *testing.T) *hook {
	t.Helper()
	h := &hook{tokenFile: filepath.Join(t.TempDir(), "token")}
	require.NoError(t, os.WriteFile(h.tokenFile, []byte("promtest-token\n"), 0o600))
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer promtest-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		var n struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if err := json.Unmarshal(body, &n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, a := range n.Alerts {
			h.names = append(h.names, a.Labels["alertname"])
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) webhooks() []promtest.Webhook {
	return []promtest.Webhook{{URL: h.srv.URL + "/hook", TokenFile: h.tokenFile}}
}

func (h *hook) got(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.names {
		if n == name {
			return true
		}
	}
	return false
}

// receivers maps each active alert's name to the receivers Alertmanager
// routed it to, once both named alerts are there.
func receivers(t *testing.T, am *promtest.Alertmanager, names ...string) map[string][]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := map[string][]string{}
		for _, a := range am.Alerts(t) {
			for _, r := range a.Receivers {
				out[a.Labels["alertname"]] = append(out[a.Labels["alertname"]], r.Name)
			}
		}
		if len(out) == len(names) || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Matchers decide which alerts reach the webhooks: with one, an alert
// without the label is routed to the receiver that sends nothing; without
// any, every alert goes to the webhooks, with the bearer token.
func TestAlertmanagerRoutesByMatchers(t *testing.T) {
	labels := func(name string, extra ...string) map[string]string {
		l := map[string]string{"alertname": name, "app": "shop"}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	for _, tc := range []struct {
		name     string
		matchers []string
		want     map[string][]string
	}{
		{"matcher", []string{`reflex_action=~".+"`}, map[string][]string{"Acts": {"webhooks"}, "Tells": {"none"}}},
		{"none", nil, map[string][]string{"Acts": {"webhooks"}, "Tells": {"webhooks"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHook(t)
			am := promtest.StartAlertmanager(t, promtest.AMOptions{Webhooks: h.webhooks(), Matchers: tc.matchers})
			am.Fire(t, labels("Acts", "reflex_action", "scale_up"), time.Now().Add(-time.Minute))
			am.Fire(t, labels("Tells"), time.Now().Add(-time.Minute))
			require.Equal(t, tc.want, receivers(t, am, "Acts", "Tells"))
			_, ok := am.FindAlert(t, "Acts", "app", "shop")
			require.True(t, ok)
			for name, r := range tc.want {
				if r[0] == "webhooks" {
					waitUntil(t, name+" reached the webhook", func() bool { return h.got(name) })
				}
			}
		})
	}
}

// Prometheus scrapes its targets as job Job, evaluates the rule files it
// is given and sends what fires to its Alertmanagers; the query helpers
// read every result type.
func TestPrometheusScrapesEvaluatesAndAlerts(t *testing.T) {
	h := newHook(t)
	am := promtest.StartAlertmanager(t, promtest.AMOptions{Webhooks: h.webhooks()})
	// The alert's condition is the test's to set: Prometheus drops an
	// alert that fires before it has discovered its Alertmanagers (and
	// sends it again only after its resend delay, a minute).
	var fire atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "promtest_fire %d\n", fire.Load())
	}))
	t.Cleanup(target.Close)
	rules := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte(`groups:
  - name: promtest
    rules:
      - record: promtest:fire
        expr: promtest_fire
      - alert: Fired
        expr: promtest_fire == 1
        labels:
          app: shop
`), 0o644))
	p := promtest.StartPrometheus(t, promtest.PromOptions{Targets: []string{strings.TrimPrefix(target.URL, "http://")},
		Alertmanagers: []string{am.Addr()}, RuleFiles: []string{rules}})

	s := p.WaitSeries(t, `promtest:fire{job="`+promtest.Job+`"}`, 20*time.Second)
	require.Len(t, s, 1)
	require.Equal(t, "0", s[0].Value[1])
	require.Len(t, p.QueryRaw(t, `scalar(vector(2))`), 1, "a scalar is one result")
	require.Empty(t, p.QueryRaw(t, `absent(vector(1))`))
	require.Len(t, p.QueryRange(t, `vector(1)`, time.Now().Add(-5*time.Second), time.Now(), time.Second), 1)

	waitUntil(t, "Prometheus discovered the Alertmanager", func() bool {
		resp, err := http.Get(p.URL + "/api/v1/alertmanagers")
		require.NoError(t, err)
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Active []struct {
					URL string `json:"url"`
				} `json:"activeAlertmanagers"`
			} `json:"data"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		return len(r.Data.Active) == 1
	})
	fire.Store(1)
	a := p.WaitAlert(t, 20*time.Second, "Fired", "firing", "app", "shop")
	require.False(t, a.ActiveAt.IsZero())
	waitUntil(t, "Fired reached the webhook through Alertmanager", func() bool { return h.got("Fired") })
}

// waitUntil polls cond for 20 s at most.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		require.False(t, time.Now().After(deadline), "timed out waiting until %s", what)
		time.Sleep(50 * time.Millisecond)
	}
}
