package webhook

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// Labels the receiver reads. No other label, and no annotation, is ever
// read.
const (
	LabelAction    = "reflex_action"
	LabelApp       = "app"
	LabelAlertname = "alertname"
)

// Length bounds of the label values the receiver reads.
const (
	maxAppLen       = 64 // as the config's app names
	maxHostLen      = 255
	maxAlertnameLen = 128
	maxFingerprint  = 32
)

// Notification is one decoded webhook payload: Alertmanager's template.Data
// plus the envelope its webhook notifier adds (notify/webhook.Message,
// which this package does not import: only the template types are used).
type Notification struct {
	template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// Errors Decode returns; each is answered 400.
var (
	ErrMalformed = errors.New("malformed JSON")
	ErrVersion   = errors.New(`webhook version must be "4"`)
)

// Decode parses a webhook payload. It is lenient where Alertmanager
// versions differ (unknown fields are ignored; notification_reason,
// routeLabels, groupKey and truncatedAlerts may be absent) and strict where
// the meaning would change: the JSON must be one well-formed object whose
// known fields have their types, and version must be "4". The error is
// ErrMalformed or ErrVersion; neither quotes the input.
func Decode(b []byte) (Notification, error) {
	var n Notification
	if err := json.Unmarshal(b, &n); err != nil {
		return Notification{}, ErrMalformed
	}
	if n.Version != "4" {
		return Notification{}, ErrVersion
	}
	return n, nil
}

// validator turns decoded alerts into intent.Alerts or Ignored.
type validator struct {
	known     func(string) bool
	hostLabel string
	identity  []string
}

func newValidator(opts Options) validator {
	v := validator{known: opts.Known, hostLabel: opts.HostLabel, identity: opts.Identity}
	if v.hostLabel == "" {
		v.hostLabel = DefaultHostLabel
	}
	if v.identity == nil {
		v.identity = DefaultIdentity()
	}
	return v
}

// DefaultIdentity is the Identity used when Options.Identity is nil: the
// host name and, when it is a dotted name, its first label. It is empty
// when the host name cannot be read, so that no alert carrying the host
// label is taken for this host.
func DefaultIdentity() []string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return []string{}
	}
	ids := []string{h}
	if i := strings.IndexByte(h, '.'); i > 0 {
		ids = append(ids, h[:i])
	}
	return ids
}

// validate splits alerts into the firing, valid ones and the ignored ones,
// keeping their order.
func (v *validator) validate(as template.Alerts) ([]intent.Alert, []Ignored) {
	var alerts []intent.Alert
	var ignored []Ignored
	for i := range as {
		a, reason, label := v.alert(&as[i])
		if reason != "" {
			ignored = append(ignored, Ignored{Alert: a, Reason: reason, Label: label})
			continue
		}
		alerts = append(alerts, a)
	}
	return alerts, ignored
}

// alert validates one alert. The checks run in this order and fill the
// result as they pass, so an ignored alert carries only values that were
// checked: status, startsAt and fingerprint (invalid_alert), status
// (resolved), reflex_action (no_action, unknown_action), alertname
// (invalid_label), app (no_app, invalid_label), host label (invalid_label,
// other_host), app (unknown_app). Annotations are not looked at.
func (v *validator) alert(a *template.Alert) (intent.Alert, Reason, string) {
	var out intent.Alert
	switch a.Status {
	case "firing", "resolved":
		out.Status = a.Status
	default:
		return out, ReasonInvalidAlert, ""
	}
	if a.StartsAt.IsZero() {
		return out, ReasonInvalidAlert, ""
	}
	out.StartsAt = a.StartsAt
	fp := a.Fingerprint
	if fp == "" {
		// Older or hand-written senders may omit it; Alertmanager's own is
		// the fingerprint of the label set (types.Alert.Fingerprint).
		fp = model.LabelSet(labelSet(a.Labels)).Fingerprint().String()
	} else if !validFingerprint(fp) {
		return out, ReasonInvalidAlert, ""
	}
	out.Fingerprint = fp
	if out.Status != "firing" {
		return out, ReasonResolved, ""
	}
	act := a.Labels[LabelAction]
	if act == "" {
		return out, ReasonNoAction, ""
	}
	action, ok := intent.ParseAction(act)
	if !ok {
		return out, ReasonUnknownAction, ""
	}
	out.Action = action
	if name, ok := a.Labels[LabelAlertname]; ok {
		if !validAlertname(name) {
			return out, ReasonInvalidLabel, LabelAlertname
		}
		out.Alertname = name
	}
	app := a.Labels[LabelApp]
	if app == "" {
		return out, ReasonNoApp, ""
	}
	if !ValidApp(app) {
		return out, ReasonInvalidLabel, LabelApp
	}
	// The host comes before the app lookup: in a fleet every receiver gets
	// every host's alerts, and one about another host is "not this host"
	// whether or not this host happens to run an app of that name.
	host := a.Labels[v.hostLabel]
	if host != "" {
		if !ValidHost(host) {
			return out, ReasonInvalidLabel, v.hostLabel
		}
		if !v.isThisHost(host) {
			return out, ReasonOtherHost, ""
		}
	}
	if v.known == nil || !v.known(app) {
		return out, ReasonUnknownApp, ""
	}
	out.App = app
	out.Instance = host
	return out, "", ""
}

func labelSet(kv template.KV) model.LabelSet {
	ls := make(model.LabelSet, len(kv))
	for k, v := range kv {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// isThisHost matches a host label value against the identity: the whole
// value, or its host part when it is host:port.
func (v *validator) isThisHost(val string) bool {
	if v.matchIdentity(val) {
		return true
	}
	if h, _, err := net.SplitHostPort(val); err == nil && h != "" {
		return v.matchIdentity(h)
	}
	return false
}

func (v *validator) matchIdentity(s string) bool {
	for _, id := range v.identity {
		if strings.EqualFold(s, id) {
			return true
		}
	}
	return false
}

// ValidApp reports whether s may be an app name: the config's rule,
// [A-Za-z0-9][A-Za-z0-9_.:-]{0,63}. No slash, space, quote, shell
// metacharacter, control byte or non-ASCII byte passes.
func ValidApp(s string) bool {
	if len(s) == 0 || len(s) > maxAppLen || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !alnum(c) && c != '_' && c != '.' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

// ValidHost reports whether s may be a host label value: a host name, an
// IPv4 or bracketed IPv6 address (with a zone), optionally with :port, at
// most 255 bytes of [A-Za-z0-9._:%[]-].
func ValidHost(s string) bool {
	if len(s) == 0 || len(s) > maxHostLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !alnum(c) && c != '.' && c != '_' && c != ':' && c != '-' && c != '[' && c != ']' && c != '%' {
			return false
		}
	}
	return true
}

// validAlertname accepts Prometheus's metric-name-like alert names:
// [A-Za-z_:][A-Za-z0-9_:.-]{0,127}.
func validAlertname(s string) bool {
	if len(s) == 0 || len(s) > maxAlertnameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// validFingerprint accepts Alertmanager's fingerprints (%016x of a 64-bit
// hash) and other short lower-case hex strings.
func validFingerprint(s string) bool {
	if len(s) == 0 || len(s) > maxFingerprint {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
