package webhook

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// appNameRE is the config's rule for app names (internal/config); ValidApp
// must agree with it exactly, so that every configured app can be named by
// an alert and nothing else can.
var appNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

func fuzzValidator() validator {
	return newValidator(Options{
		Known:    func(app string) bool { return app == "web" || app == "api" || strings.HasPrefix(app, "k") },
		Identity: []string{"web1.example", "10.0.0.5"},
	})
}

// checkResult holds the invariants of a validation for any input: every
// alert lands on exactly one side, an actionable alert is firing and made
// only of checked values, and an ignored one has a reason of the closed set.
func checkResult(t *testing.T, v *validator, in template.Alerts, alerts []intent.Alert, ignored []Ignored) {
	t.Helper()
	if len(alerts)+len(ignored) != len(in) {
		t.Fatalf("%d alerts in, %d actionable + %d ignored out", len(in), len(alerts), len(ignored))
	}
	for _, a := range alerts {
		if !a.Firing() || a.StartsAt.IsZero() || !validFingerprint(a.Fingerprint) {
			t.Fatalf("actionable alert not firing or without key parts: %+v", a)
		}
		if _, ok := intent.ParseAction(string(a.Action)); !ok {
			t.Fatalf("action outside the closed set: %q", a.Action)
		}
		if !ValidApp(a.App) || !v.known(a.App) {
			t.Fatalf("app not valid and known: %q", a.App)
		}
		if a.Instance != "" && (!ValidHost(a.Instance) || !v.isThisHost(a.Instance)) {
			t.Fatalf("instance not this host: %q", a.Instance)
		}
		if a.Alertname != "" && !validAlertname(a.Alertname) {
			t.Fatalf("alertname not checked: %q", a.Alertname)
		}
	}
	for _, ig := range ignored {
		if !slices.Contains(Reasons, ig.Reason) {
			t.Fatalf("reason outside the closed set: %q", ig.Reason)
		}
		a := ig.Alert
		if a.App != "" && !ValidApp(a.App) || a.Instance != "" && !ValidHost(a.Instance) ||
			a.Alertname != "" && !validAlertname(a.Alertname) || a.Fingerprint != "" && !validFingerprint(a.Fingerprint) {
			t.Fatalf("ignored alert keeps an unchecked value: %+v", a)
		}
		if a.Status != "" && a.Status != "firing" && a.Status != "resolved" {
			t.Fatalf("ignored alert keeps an unchecked status: %q", a.Status)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the decoder and the validator: no
// panic, a decoded notification is version 4, and the validation
// invariants hold.
func FuzzDecode(f *testing.F) {
	real, err := os.ReadFile("testdata/am-0.25-firing.json")
	require.NoError(f, err)
	f.Add(real)
	f.Add(payload(f, firing(scaleUpLabels())))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":{"reflex_action":"restart","app":"api"},"startsAt":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"resolved","labels":{"reflex_action":"reload","app":"../../x","instance":"web1.example:1"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"ab"}]}`))
	f.Add([]byte(`{"version":"3"}`))
	f.Add([]byte(`{"Version":"4","ALERTS":[{}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Decode(b)
		if err != nil {
			if err != ErrMalformed && err != ErrVersion { //nolint:errorlint // Decode returns the sentinels themselves
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if n.Version != "4" {
			t.Fatalf("accepted version %q", n.Version)
		}
		v := fuzzValidator()
		alerts, ignored := v.validate(n.Alerts)
		checkResult(t, &v, n.Alerts, alerts, ignored)
	})
}

// FuzzLabels drives the validator with arbitrary values of the labels it
// reads and checks ValidApp against the config's own rule (a differential
// test: the two must never disagree).
func FuzzLabels(f *testing.F) {
	for _, s := range [][4]string{
		{"scale_up", "web", "web1.example:9100", "GunicornWorkerTimeouts"},
		{"restart", "../../x", "web2:1", "A"},
		{"reload", "a;rm -rf /", "[::1]:9100", "B\nC"},
		{"scale_down", "k8s.app-1:x", "10.0.0.5", ""},
		{"SCALE_UP", "web\n", "web1.example.evil", "$(x)"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, action, app, host, alertname string) {
		if got, want := ValidApp(app), appNameRE.MatchString(app); got != want {
			t.Fatalf("ValidApp(%q) = %v, config rule says %v", app, got, want)
		}
		if ValidApp(app) && strings.ContainsAny(app, "/ ;$`\\\"'\n\r\t\x00") {
			t.Fatalf("ValidApp accepted %q", app)
		}
		if ValidHost(host) && strings.ContainsAny(host, "/ ;$`\\\"'\n\r\t\x00") {
			t.Fatalf("ValidHost accepted %q", host)
		}
		in := template.Alerts{{
			Status:   "firing",
			StartsAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			Labels:   template.KV{LabelAction: action, LabelApp: app, "instance": host, LabelAlertname: alertname},
		}}
		v := fuzzValidator()
		alerts, ignored := v.validate(in)
		checkResult(t, &v, in, alerts, ignored)
	})
}

// TestRealAlertmanagerPayload decodes what Debian's Alertmanager 0.25 sent
// for a firing alert (testdata/am-0.25-firing.json, captured from
// prometheus-alertmanager posting to a loopback listener: no
// notification_reason, no routeLabels) and checks that the fingerprint
// computed when a sender omits it is Alertmanager's own.
func TestRealAlertmanagerPayload(t *testing.T) {
	b, err := os.ReadFile("testdata/am-0.25-firing.json")
	require.NoError(t, err)
	n, err := Decode(b)
	require.NoError(t, err)
	v := fuzzValidator()
	alerts, ignored := v.validate(n.Alerts)
	require.Empty(t, ignored)
	require.Equal(t, []intent.Alert{{
		Fingerprint: "3425a58bcd805f59", Alertname: "GunicornWorkerTimeouts", Status: "firing",
		StartsAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Action: intent.ScaleUp, App: "web",
		Instance: "web1.example:9100",
	}}, alerts)

	n.Alerts[0].Fingerprint = ""
	alerts, _ = v.validate(n.Alerts)
	require.Equal(t, "3425a58bcd805f59", alerts[0].Fingerprint)
}
