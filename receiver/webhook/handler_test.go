package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

const testToken = "tok-9f2c1e7a5b3d4c8e"

var startsAt = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// recIntake is an Intake that records what it was given; err, when set, is
// returned instead.
type recIntake struct {
	mu      sync.Mutex
	calls   int
	alerts  []intent.Alert
	ignored []Ignored
	err     error
	// enter and release, when set, make Submit block: enter receives once
	// Submit runs, Submit returns after release is closed.
	enter   chan struct{}
	release chan struct{}
}

func (r *recIntake) Submit(_ context.Context, alerts []intent.Alert, ignored []Ignored) (Receipt, error) {
	if r.enter != nil {
		r.enter <- struct{}{}
		<-r.release
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.alerts = append(r.alerts, alerts...)
	r.ignored = append(r.ignored, ignored...)
	if r.err != nil {
		return Receipt{}, r.err
	}
	return Receipt{Queued: len(alerts)}, nil
}

func (r *recIntake) snapshot() (int, []intent.Alert, []Ignored) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, append([]intent.Alert(nil), r.alerts...), append([]Ignored(nil), r.ignored...)
}

// recObserver counts what the handler reports.
type recObserver struct {
	mu        sync.Mutex
	codes     []int
	truncated []uint64
}

func (o *recObserver) Request(code int) {
	o.mu.Lock()
	o.codes = append(o.codes, code)
	o.mu.Unlock()
}

func (o *recObserver) Truncated(n uint64) {
	o.mu.Lock()
	o.truncated = append(o.truncated, n)
	o.mu.Unlock()
}

func testOptions() Options {
	return Options{
		Token:    []byte(testToken),
		Known:    func(app string) bool { return app == "web" || app == "api" },
		Identity: []string{"web1.example", "10.0.0.5"},
	}
}

func newTestHandler(t *testing.T, opts Options, in Intake) *Handler {
	t.Helper()
	h, err := New(opts, in)
	require.NoError(t, err)
	return h
}

// alertJSON is one alert of a payload as Alertmanager writes it.
type alertJSON struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint,omitempty"`
}

func firing(labels map[string]string) alertJSON {
	return alertJSON{
		Status:      "firing",
		Labels:      labels,
		Annotations: map[string]string{"summary": "worker timeouts"},
		StartsAt:    startsAt.Format(time.RFC3339Nano),
		EndsAt:      "0001-01-01T00:00:00Z",
		Fingerprint: "c4d2b8a1e0f39d77",
	}
}

func scaleUpLabels() map[string]string {
	return map[string]string{
		"alertname": "GunicornWorkerTimeouts", "reflex_action": "scale_up",
		"app": "web", "instance": "web1.example:9100", "severity": "page",
	}
}

func payload(t testing.TB, alerts ...alertJSON) []byte {
	t.Helper()
	m := map[string]any{
		"receiver": "reflex", "status": "firing", "alerts": alerts,
		"groupLabels": map[string]string{}, "commonLabels": map[string]string{},
		"commonAnnotations": map[string]string{}, "externalURL": "http://am.example:9093",
		"version": "4", "groupKey": "{}:{alertname=\"GunicornWorkerTimeouts\"}", "truncatedAlerts": 0,
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func post(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/alerts", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+testToken)
	return r
}

func serve(h http.Handler, r *http.Request) (*httptest.ResponseRecorder, response) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var resp response
	_ = json.Unmarshal(w.Body.Bytes(), &resp)
	return w, resp
}

func TestAcceptsAValidFiringAlert(t *testing.T) {
	in := &recIntake{}
	h := newTestHandler(t, testOptions(), in)
	w, resp := serve(h, post(payload(t, firing(scaleUpLabels()))))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.Equal(t, "ok", resp.Status)
	require.Equal(t, 1, resp.Queued)
	require.Equal(t, 0, resp.Ignored)
	calls, alerts, ignored := in.snapshot()
	require.Equal(t, 1, calls)
	require.Empty(t, ignored)
	require.Equal(t, []intent.Alert{{
		Fingerprint: "c4d2b8a1e0f39d77", Alertname: "GunicornWorkerTimeouts", Status: "firing",
		StartsAt: startsAt, Action: intent.ScaleUp, App: "web", Instance: "web1.example:9100",
	}}, alerts)
}

// TestRejectsBadRequests covers the request-level bad input classes of C7
// (malformed JSON, version, content type, method, empty body), C8 (body
// cap) and C9 (token): each gets its 4xx, never a 5xx Alertmanager would
// retry, and the Intake is never called.
func TestRejectsBadRequests(t *testing.T) {
	good := payload(t, firing(scaleUpLabels()))
	v3 := bytes.Replace(good, []byte(`"version":"4"`), []byte(`"version":"3"`), 1)
	noVersion := bytes.Replace(good, []byte(`,"version":"4"`), nil, 1)
	require.NotEqual(t, good, v3)
	require.NotEqual(t, good, noVersion)
	big := bytes.Repeat([]byte(" "), 10<<20)
	cases := []struct {
		name   string
		method string
		ctype  string
		auth   string
		body   []byte
		chunk  bool // hide the length (Transfer-Encoding: chunked)
		code   int
	}{
		{"GET", http.MethodGet, "application/json", "Bearer " + testToken, nil, false, http.StatusMethodNotAllowed},
		{"PUT", http.MethodPut, "application/json", "Bearer " + testToken, good, false, http.StatusMethodNotAllowed},
		{"no token", http.MethodPost, "application/json", "", good, false, http.StatusUnauthorized},
		{"wrong token", http.MethodPost, "application/json", "Bearer not-the-token", good, false, http.StatusUnauthorized},
		{"token prefix", http.MethodPost, "application/json", "Bearer " + testToken[:len(testToken)-1], good, false, http.StatusUnauthorized},
		{"token plus a byte", http.MethodPost, "application/json", "Bearer " + testToken + "x", good, false, http.StatusUnauthorized},
		{"basic scheme", http.MethodPost, "application/json", "Basic " + testToken, good, false, http.StatusUnauthorized},
		{"bare scheme", http.MethodPost, "application/json", "Bearer ", good, false, http.StatusUnauthorized},
		{"text/plain", http.MethodPost, "text/plain", "Bearer " + testToken, good, false, http.StatusUnsupportedMediaType},
		{"no content type", http.MethodPost, "", "Bearer " + testToken, good, false, http.StatusUnsupportedMediaType},
		{"latin1 charset", http.MethodPost, "application/json; charset=latin1", "Bearer " + testToken, good, false, http.StatusUnsupportedMediaType},
		{"form", http.MethodPost, "application/x-www-form-urlencoded", "Bearer " + testToken, good, false, http.StatusUnsupportedMediaType},
		{"empty body", http.MethodPost, "application/json", "Bearer " + testToken, nil, false, http.StatusBadRequest},
		{"malformed JSON", http.MethodPost, "application/json", "Bearer " + testToken, good[:len(good)/2], false, http.StatusBadRequest},
		{"not an object", http.MethodPost, "application/json", "Bearer " + testToken, []byte(`["version","4"]`), false, http.StatusBadRequest},
		{"null", http.MethodPost, "application/json", "Bearer " + testToken, []byte(`null`), false, http.StatusBadRequest},
		{"trailing data", http.MethodPost, "application/json", "Bearer " + testToken, append(append([]byte{}, good...), []byte(`{"version":"4"}`)...), false, http.StatusBadRequest},
		{"alerts not a list", http.MethodPost, "application/json", "Bearer " + testToken, []byte(`{"version":"4","alerts":"x"}`), false, http.StatusBadRequest},
		{"bad startsAt", http.MethodPost, "application/json", "Bearer " + testToken, []byte(`{"version":"4","alerts":[{"status":"firing","startsAt":"yesterday"}]}`), false, http.StatusBadRequest},
		{"version 3", http.MethodPost, "application/json", "Bearer " + testToken, v3, false, http.StatusBadRequest},
		{"no version", http.MethodPost, "application/json", "Bearer " + testToken, noVersion, false, http.StatusBadRequest},
		{"10 MiB with length", http.MethodPost, "application/json", "Bearer " + testToken, big, false, http.StatusRequestEntityTooLarge},
		{"10 MiB chunked", http.MethodPost, "application/json", "Bearer " + testToken, big, true, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &recIntake{}
			obs := &recObserver{}
			opts := testOptions()
			opts.Observer = obs
			h := newTestHandler(t, opts, in)
			var body io.Reader = bytes.NewReader(tc.body)
			if tc.chunk {
				body = io.MultiReader(body) // no Len method: ContentLength stays unknown
			}
			r := httptest.NewRequest(tc.method, "/api/v1/alerts", body)
			if tc.chunk {
				r.ContentLength = -1
			}
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w, resp := serve(h, r)
			require.Equal(t, tc.code, w.Code, w.Body.String())
			require.Equal(t, "error", resp.Status)
			require.NotEmpty(t, resp.Error)
			calls, _, _ := in.snapshot()
			require.Zero(t, calls, "the Intake must not see a rejected request")
			require.Equal(t, []int{tc.code}, obs.codes)
			switch tc.code {
			case http.StatusMethodNotAllowed:
				require.Equal(t, http.MethodPost, w.Header().Get("Allow"))
			case http.StatusUnauthorized:
				require.Contains(t, w.Header().Get("WWW-Authenticate"), "Bearer")
			}
		})
	}
}

// countingReader records how many bytes were read from a request body.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestAuthBeforeBody shows that the body of an unauthenticated request is
// not read at all (C9), nor is one with a wrong content type or a declared
// length above the cap.
func TestAuthBeforeBody(t *testing.T) {
	for _, tc := range []struct {
		name, auth, ctype string
		length            int64
	}{
		{"no token", "", "application/json", -1},
		{"wrong token", "Bearer wrong", "application/json", -1},
		{"wrong content type", "Bearer " + testToken, "text/plain", -1},
		{"declared too large", "Bearer " + testToken, "application/json", 10 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &recIntake{}
			h := newTestHandler(t, testOptions(), in)
			cr := &countingReader{r: bytes.NewReader(payload(t, firing(scaleUpLabels())))}
			r := httptest.NewRequest(http.MethodPost, "/", cr)
			r.ContentLength = tc.length
			r.Header.Set("Content-Type", tc.ctype)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w, _ := serve(h, r)
			require.GreaterOrEqual(t, w.Code, 400)
			require.Less(t, w.Code, 500)
			require.Zero(t, cr.n, "body bytes read before the request was authenticated and checked")
		})
	}
}

// TestIgnoresBadAlerts covers the per-alert classes of E1 and C7: label
// injection, oversized and multi-line values, unknown actions and apps,
// other hosts, resolved alerts. Each alert is ignored with its reason, the
// request still gets 200 (Alertmanager must not retry it) and nothing is
// passed on as actionable.
func TestIgnoresBadAlerts(t *testing.T) {
	with := func(k, v string) map[string]string {
		l := scaleUpLabels()
		l[k] = v
		return l
	}
	without := func(k string) map[string]string {
		l := scaleUpLabels()
		delete(l, k)
		return l
	}
	huge := strings.Repeat("w", 64<<10)
	cases := []struct {
		name   string
		alert  alertJSON
		reason Reason
		label  string
	}{
		{"path traversal app", firing(with("app", "../../x")), ReasonInvalidLabel, "app"},
		{"shell app", firing(with("app", "a;rm -rf /")), ReasonInvalidLabel, "app"},
		{"slash in app", firing(with("app", "web/../../x")), ReasonInvalidLabel, "app"},
		{"command substitution app", firing(with("app", "$(reboot)")), ReasonInvalidLabel, "app"},
		{"newline in app", firing(with("app", "web\nInjected: yes")), ReasonInvalidLabel, "app"},
		{"64 KiB app", firing(with("app", huge)), ReasonInvalidLabel, "app"},
		{"non-ASCII app", firing(with("app", "wéb")), ReasonInvalidLabel, "app"},
		{"newline in alertname", firing(with("alertname", "X\ny")), ReasonInvalidLabel, "alertname"},
		{"64 KiB alertname", firing(with("alertname", huge)), ReasonInvalidLabel, "alertname"},
		{"64 KiB instance", firing(with("instance", huge)), ReasonInvalidLabel, "instance"},
		{"space in instance", firing(with("instance", "web1.example 9100")), ReasonInvalidLabel, "instance"},
		{"unknown app", firing(with("app", "billing")), ReasonUnknownApp, ""},
		{"dot-dot app", firing(with("app", "..")), ReasonInvalidLabel, "app"},
		{"no app", firing(without("app")), ReasonNoApp, ""},
		{"no action", firing(without("reflex_action")), ReasonNoAction, ""},
		{"empty action", firing(with("reflex_action", "")), ReasonNoAction, ""},
		{"unknown action", firing(with("reflex_action", "kill")), ReasonUnknownAction, ""},
		{"action with shell", firing(with("reflex_action", "restart; rm -rf /")), ReasonUnknownAction, ""},
		{"action in capitals", firing(with("reflex_action", "SCALE_UP")), ReasonUnknownAction, ""},
		{"64 KiB action", firing(with("reflex_action", huge)), ReasonUnknownAction, ""},
		{"other host", firing(with("instance", "web2.example:9100")), ReasonOtherHost, ""},
		{"other host by prefix", firing(with("instance", "web1.example.evil:9100")), ReasonOtherHost, ""},
		{"pending status", func() alertJSON { a := firing(scaleUpLabels()); a.Status = "pending"; return a }(), ReasonInvalidAlert, ""},
		{"no startsAt", func() alertJSON { a := firing(scaleUpLabels()); a.StartsAt = "0001-01-01T00:00:00Z"; return a }(), ReasonInvalidAlert, ""},
		{"bad fingerprint", func() alertJSON { a := firing(scaleUpLabels()); a.Fingerprint = "../x"; return a }(), ReasonInvalidAlert, ""},
		{"resolved", func() alertJSON { a := firing(scaleUpLabels()); a.Status = "resolved"; return a }(), ReasonResolved, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &recIntake{}
			h := newTestHandler(t, testOptions(), in)
			w, resp := serve(h, post(payload(t, tc.alert)))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			require.Equal(t, 1, resp.Ignored)
			require.Equal(t, map[Reason]int{tc.reason: 1}, resp.IgnoredReasons)
			calls, alerts, ignored := in.snapshot()
			require.Equal(t, 1, calls, "the Intake sees ignored alerts too, to count and audit them")
			require.Empty(t, alerts)
			require.Len(t, ignored, 1)
			require.Equal(t, tc.reason, ignored[0].Reason)
			require.Equal(t, tc.label, ignored[0].Label)
			// Whatever was kept of an ignored alert passed its check.
			ig := ignored[0].Alert
			require.True(t, ig.App == "" || ValidApp(ig.App), "%q", ig.App)
			require.True(t, ig.Instance == "" || ValidHost(ig.Instance), "%q", ig.Instance)
			require.True(t, ig.Fingerprint == "" || validFingerprint(ig.Fingerprint))
			require.True(t, ig.Alertname == "" || validAlertname(ig.Alertname))
			// Nothing of the request is echoed back.
			require.NotContains(t, w.Body.String(), "rm -rf")
			require.NotContains(t, w.Body.String(), "web1.example")
		})
	}
}

func TestHostIdentity(t *testing.T) {
	for _, tc := range []struct {
		instance string
		ok       bool
	}{
		{"web1.example:9100", true},
		{"web1.example", true},
		{"WEB1.Example:9100", true},
		{"10.0.0.5:9100", true},
		{"10.0.0.50:9100", false},
		{"[::1]:9100", false},
		{"web1:9100", false},
		{"", true}, // no host label: the alert is for every host
	} {
		t.Run(tc.instance, func(t *testing.T) {
			in := &recIntake{}
			h := newTestHandler(t, testOptions(), in)
			l := scaleUpLabels()
			if tc.instance == "" {
				delete(l, "instance")
			} else {
				l["instance"] = tc.instance
			}
			w, _ := serve(h, post(payload(t, firing(l))))
			require.Equal(t, http.StatusOK, w.Code)
			_, alerts, ignored := in.snapshot()
			if tc.ok {
				require.Len(t, alerts, 1)
				require.Equal(t, tc.instance, alerts[0].Instance)
			} else {
				require.Len(t, ignored, 1)
				require.Equal(t, ReasonOtherHost, ignored[0].Reason)
			}
		})
	}
	// In a fleet every receiver gets every host's alerts; one about another
	// host is other_host even when this host does not run that app, so the
	// reason says why it was ignored, not that the app is unknown here.
	t.Run("unknown app on another host", func(t *testing.T) {
		in := &recIntake{}
		h := newTestHandler(t, testOptions(), in)
		l := scaleUpLabels()
		l["app"] = "billing"
		l["instance"] = "web2.example:9100"
		serve(h, post(payload(t, firing(l))))
		_, alerts, ignored := in.snapshot()
		require.Empty(t, alerts)
		require.Len(t, ignored, 1)
		require.Equal(t, ReasonOtherHost, ignored[0].Reason)
	})
	t.Run("configured host label", func(t *testing.T) {
		in := &recIntake{}
		opts := testOptions()
		opts.HostLabel = "host"
		h := newTestHandler(t, opts, in)
		l := scaleUpLabels()
		l["instance"] = "prometheus.example:9090" // not the host label any more: not read
		l["host"] = "web2.example"
		serve(h, post(payload(t, firing(l))))
		_, _, ignored := in.snapshot()
		require.Len(t, ignored, 1)
		require.Equal(t, ReasonOtherHost, ignored[0].Reason)
	})
}

// TestAnnotationsChangeNothing is E2: annotations claiming another pidfile,
// unit, command or app leave the validated alert exactly as it is without
// them.
func TestAnnotationsChangeNothing(t *testing.T) {
	plain := firing(scaleUpLabels())
	plain.Annotations = nil
	evil := firing(scaleUpLabels())
	evil.Annotations = map[string]string{
		"pidfile": "/run/postgresql/postmaster.pid", "unit": "sshd.service", "command": "rm -rf /",
		"app": "api", "reflex_action": "restart", "instance": "web2.example", "signal": "KILL", "pid": "1",
	}
	var got [2][]intent.Alert
	for i, a := range []alertJSON{plain, evil} {
		in := &recIntake{}
		h := newTestHandler(t, testOptions(), in)
		w, _ := serve(h, post(payload(t, a)))
		require.Equal(t, http.StatusOK, w.Code)
		_, got[i], _ = in.snapshot()
	}
	require.Len(t, got[0], 1)
	require.Equal(t, got[0], got[1])
}

func TestMixedBatchIsPerAlert(t *testing.T) {
	in := &recIntake{}
	h := newTestHandler(t, testOptions(), in)
	resolved := firing(scaleUpLabels())
	resolved.Status = "resolved"
	resolved.Fingerprint = "00000000000000aa"
	other := scaleUpLabels()
	other["app"] = "api"
	other["reflex_action"] = "reload"
	otherA := firing(other)
	otherA.Fingerprint = "00000000000000bb"
	bad := scaleUpLabels()
	bad["app"] = "../../x"
	w, resp := serve(h, post(payload(t, firing(scaleUpLabels()), resolved, otherA, firing(bad))))
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, 2, resp.Queued)
	require.Equal(t, 2, resp.Ignored)
	require.Equal(t, map[Reason]int{ReasonResolved: 1, ReasonInvalidLabel: 1}, resp.IgnoredReasons)
	_, alerts, ignored := in.snapshot()
	require.Len(t, alerts, 2)
	require.Equal(t, intent.ScaleUp, alerts[0].Action)
	require.Equal(t, "api", alerts[1].App)
	require.Equal(t, intent.Reload, alerts[1].Action)
	require.Equal(t, "resolved", ignored[0].Alert.Status)
	require.Equal(t, "00000000000000aa", ignored[0].Alert.Fingerprint)
}

// TestLenientDecode: unknown fields, absent notification_reason,
// routeLabels, groupKey, truncatedAlerts and fingerprint are fine (older
// and newer Alertmanagers differ in exactly these); a missing fingerprint
// is computed from the labels as Alertmanager does.
func TestLenientDecode(t *testing.T) {
	body := []byte(`{"version":"4","status":"firing","futureField":{"x":[1,2]},
	 "alerts":[{"status":"firing","labels":{"alertname":"A","reflex_action":"reload","app":"web"},
	            "startsAt":"2026-11-25T10:00:00.123456789Z","somethingNew":true}]}`)
	in := &recIntake{}
	h := newTestHandler(t, testOptions(), in)
	w, _ := serve(h, post(body))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	_, alerts, _ := in.snapshot()
	require.Len(t, alerts, 1)
	require.Equal(t, intent.Reload, alerts[0].Action)
	require.Len(t, alerts[0].Fingerprint, 16)
	require.True(t, validFingerprint(alerts[0].Fingerprint))
	// Same labels, same computed fingerprint: the idempotency key is stable.
	w, _ = serve(h, post(body))
	require.Equal(t, http.StatusOK, w.Code)
	_, alerts, _ = in.snapshot()
	require.Len(t, alerts, 2)
	require.Equal(t, alerts[0].Key(), alerts[1].Key())
}

func TestTruncatedAlertsObserved(t *testing.T) {
	obs := &recObserver{}
	opts := testOptions()
	opts.Observer = obs
	h := newTestHandler(t, opts, &recIntake{})
	body := bytes.Replace(payload(t, firing(scaleUpLabels())), []byte(`"truncatedAlerts":0`), []byte(`"truncatedAlerts":7`), 1)
	w, _ := serve(h, post(body))
	require.Equal(t, http.StatusOK, w.Code)
	w, _ = serve(h, post(payload(t, firing(scaleUpLabels()))))
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, []uint64{7}, obs.truncated)
	require.Equal(t, []int{200, 200}, obs.codes)
}

func TestIntakeErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("queue full: %w", ErrUnavailable), http.StatusServiceUnavailable},
		{errors.New("state store: disk says " + testToken), http.StatusInternalServerError},
	} {
		var logs bytes.Buffer
		opts := testOptions()
		opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		h := newTestHandler(t, opts, &recIntake{err: tc.err})
		w, resp := serve(h, post(payload(t, firing(scaleUpLabels()))))
		require.Equal(t, tc.code, w.Code)
		require.Equal(t, "error", resp.Status)
		require.NotContains(t, w.Body.String(), tc.err.Error(), "an Intake's error text stays in the log")
		require.Contains(t, logs.String(), "webhook intake failed")
	}
}

// TestMaxInFlight: beyond MaxInFlight requests a request gets 503 (with
// Retry-After) without its body being read; a freed slot serves again.
func TestMaxInFlight(t *testing.T) {
	in := &recIntake{enter: make(chan struct{}), release: make(chan struct{})}
	opts := testOptions()
	opts.MaxInFlight = 1
	h := newTestHandler(t, opts, in)
	done := make(chan int)
	go func() {
		w, _ := serve(h, post(payload(t, firing(scaleUpLabels()))))
		done <- w.Code
	}()
	<-in.enter
	cr := &countingReader{r: bytes.NewReader(payload(t, firing(scaleUpLabels())))}
	r := post(nil)
	r.Body = io.NopCloser(cr)
	w, _ := serve(h, r)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.Zero(t, cr.n)
	close(in.release)
	require.Equal(t, http.StatusOK, <-done)
	in.enter = nil
	w, _ = serve(h, post(payload(t, firing(scaleUpLabels()))))
	require.Equal(t, http.StatusOK, w.Code)
}

func TestNewRefusesNoCredential(t *testing.T) {
	_, err := New(Options{}, &recIntake{})
	require.ErrorContains(t, err, "no bearer token")
	_, err = New(testOptions(), nil)
	require.Error(t, err)
	_, err = New(Options{Token: []byte("has space")}, &recIntake{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "has space")

	// AllowNoToken: the server authenticates; the handler takes any request.
	in := &recIntake{}
	h := newTestHandler(t, Options{AllowNoToken: true, Known: testOptions().Known, Identity: []string{"web1.example"}}, in)
	r := post(payload(t, firing(scaleUpLabels())))
	r.Header.Del("Authorization")
	w, _ := serve(h, r)
	require.Equal(t, http.StatusOK, w.Code)
}

func TestNilKnownKnowsNoApp(t *testing.T) {
	in := &recIntake{}
	h := newTestHandler(t, Options{Token: []byte(testToken), Identity: []string{"web1.example"}}, in)
	w, _ := serve(h, post(payload(t, firing(scaleUpLabels()))))
	require.Equal(t, http.StatusOK, w.Code)
	_, alerts, ignored := in.snapshot()
	require.Empty(t, alerts)
	require.Equal(t, ReasonUnknownApp, ignored[0].Reason)
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	tok, err := ReadTokenFile(write("ok", testToken+"\n", 0o600))
	require.NoError(t, err)
	require.Equal(t, testToken, string(tok))
	tok, err = ReadTokenFile(write("ro", "  "+testToken+"\r\n", 0o400))
	require.NoError(t, err)
	require.Equal(t, testToken, string(tok))
	_, err = ReadTokenFile(write("group", testToken, 0o640))
	require.NoError(t, err, "a group the service shares may read it")

	for _, tc := range []struct{ name, content string }{
		{"empty", "\n"},
		{"inner space", "secret-part-one secret-part-two"},
		{"two lines", "secret-line-one\nsecret-line-two\n"},
		{"huge", strings.Repeat("s", maxTokenBytes+1)},
	} {
		_, err := ReadTokenFile(write(tc.name, tc.content, 0o600))
		require.Error(t, err, tc.name)
		require.NotContains(t, err.Error(), "secret-", "an error names the file, never its content")
	}
	_, err = ReadTokenFile(write("world", "secret-world", 0o644))
	require.ErrorContains(t, err, "other users")
	require.NotContains(t, err.Error(), "secret-")
	_, err = ReadTokenFile(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = ReadTokenFile(dir)
	require.Error(t, err)
}

// TestSecretsNeverLeak sends every kind of request with the debug log on
// and checks that neither the configured token, nor a presented wrong one,
// nor anything from the body, reaches the log or a response.
func TestSecretsNeverLeak(t *testing.T) {
	var logs bytes.Buffer
	opts := testOptions()
	opts.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newTestHandler(t, opts, &recIntake{})
	const wrong = "presented-wrong-secret-3b7e"
	const bodySecret = "body-secret-a81f"
	l := scaleUpLabels()
	l["password"] = bodySecret
	a := firing(l)
	a.Annotations["dsn"] = "postgres://u:" + bodySecret + "@db/x"
	good := payload(t, a)
	var responses bytes.Buffer
	reqs := []*http.Request{post(good), post(good[:10]), post(nil)}
	r := post(good)
	r.Header.Set("Authorization", "Bearer "+wrong)
	reqs = append(reqs, r)
	r = post(good)
	r.Header.Set("Content-Type", "text/plain; secret="+bodySecret)
	reqs = append(reqs, r)
	r = post(bytes.Replace(good, []byte(`"version":"4"`), []byte(`"version":"`+bodySecret+`"`), 1))
	reqs = append(reqs, r)
	for _, r := range reqs {
		w, _ := serve(h, r)
		responses.Write(w.Body.Bytes())
		for k, v := range w.Header() {
			fmt.Fprintln(&responses, k, v)
		}
	}
	require.NotEmpty(t, logs.String())
	for _, secret := range []string{testToken, wrong, bodySecret} {
		require.NotContains(t, logs.String(), secret)
		require.NotContains(t, responses.String(), secret)
	}
}
