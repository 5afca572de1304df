// Package webhook owns the remediation receiver's HTTP edge: it
// authenticates an Alertmanager webhook request before reading its body,
// caps and decodes the body (webhook payload version "4", decoded with
// Alertmanager's own template types, leniently), validates every alert on
// its own into an intent.Alert or an Ignored with a reason, and hands both
// to an Intake that records them. It decides nothing and performs nothing:
// whether and when an alert acts is the policy's business, and no action
// runs inside the request.
//
// Status codes follow Alertmanager's retry rules (notify/util.go
// Retrier.Check, notify/retry_stage.go): Alertmanager retries only 5xx and
// transport errors, so every kind of bad input is a 4xx (never retried),
// alerts that are ignored still get a 2xx, and a 5xx is sent only when the
// Intake recorded nothing and wants the notification again:
//
//	200 the notification was handed to the Intake (queued, deduplicated,
//	    dropped or ignored: the JSON summary says which, as counts)
//	400 empty or malformed JSON, or a version other than "4"
//	401 missing or wrong bearer token (checked before the body is read)
//	405 not POST
//	408 the body did not arrive within ReadTimeout
//	413 the body is larger than MaxBodyBytes
//	415 the content type is not application/json (UTF-8)
//	500 the Intake failed without saying a retry is safe (a defect)
//	503 the Intake recorded nothing and wants a retry (ErrUnavailable), or
//	    more than MaxInFlight requests are being handled
//
// Authentication here is a bearer token read from a file and compared in
// constant time (Alertmanager's http_config authorization with
// credentials_file). Basic auth and mTLS are the HTTP server's business:
// exporter-toolkit's web config (basic_auth_users, client_auth_type
// RequireAndVerifyClientCert with client_allowed_sans) authenticates before
// this handler runs, and Options.AllowNoToken says so. Header and overall
// read timeouts are the server's business too; Harden sets them.
//
// Secrets never leave the handler: the token is kept only as its SHA-256
// digest, the Authorization header and the body are never logged, and
// responses carry counts and fixed messages, never a value from the request.
package webhook

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// Defaults for zero Options fields.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultReadTimeout  = 10 * time.Second
	DefaultMaxInFlight  = 16
	DefaultHostLabel    = "instance"
)

// ErrUnavailable is what an Intake's error wraps when it recorded nothing
// from the notification and wants Alertmanager to send it again (a full
// queue, a store that cannot write): the handler answers 503 and
// Alertmanager retries with backoff.
var ErrUnavailable = errors.New("receiver unavailable")

// Intake records the alerts of one valid notification. The handler calls
// Submit once per notification that passed authentication and decoding,
// even when every alert was ignored, so the Intake can count and audit the
// ignored ones. alerts holds only firing alerts that passed validation;
// ignored holds every other alert with its reason. Submit must record
// durably before it returns and must not perform an action inside the call.
//
// An error wrapping ErrUnavailable means nothing was recorded and a retry
// is wanted (503). Any other error is answered 500, which Alertmanager also
// retries: an Intake that recorded some alerts must not return an error,
// because the retry would deliver them again (deduplicated, but counted).
type Intake interface {
	Submit(ctx context.Context, alerts []intent.Alert, ignored []Ignored) (Receipt, error)
}

// Receipt is an Intake's account of the alerts passed to Submit, returned
// to Alertmanager as counts in the response body.
type Receipt struct {
	// Queued counts alerts recorded for the worker to decide on and perform.
	Queued int `json:"queued"`
	// Deduplicated counts alerts whose idempotency key was already recorded.
	Deduplicated int `json:"deduplicated"`
	// Dropped counts alerts recorded as dropped (for example a full queue
	// when the Intake prefers 200 and a metric to a retry).
	Dropped int `json:"dropped"`
}

// Reason says why an alert is not passed on as actionable. It is a closed
// set so it can label a metric.
type Reason string

// The closed set of reasons. The first check that fails gives an alert its
// reason; the checks run roughly in this order (see the validator).
const (
	ReasonInvalidAlert  Reason = "invalid_alert"  // status not firing/resolved, no startsAt, malformed fingerprint
	ReasonResolved      Reason = "resolved"       // only firing alerts act
	ReasonNoAction      Reason = "no_action"      // no reflex_action label: not a remediation alert
	ReasonUnknownAction Reason = "unknown_action" // reflex_action outside the closed set of intent.Actions
	ReasonInvalidLabel  Reason = "invalid_label"  // a label the receiver reads has a bad charset or length
	ReasonNoApp         Reason = "no_app"         // no app label
	ReasonUnknownApp    Reason = "unknown_app"    // app names no app this host knows
	ReasonOtherHost     Reason = "other_host"     // the host label names another host
)

// Codes lists every HTTP status code the handler answers, in a fixed order
// (metrics initialise a series per code).
var Codes = []int{
	http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusMethodNotAllowed,
	http.StatusRequestTimeout, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType,
	http.StatusInternalServerError, http.StatusServiceUnavailable,
}

// Reasons lists every reason, in a fixed order (metrics initialise a series
// per reason).
var Reasons = []Reason{
	ReasonInvalidAlert, ReasonResolved, ReasonNoAction, ReasonUnknownAction,
	ReasonInvalidLabel, ReasonNoApp, ReasonUnknownApp, ReasonOtherHost,
}

// Ignored is one alert that will not act, and why. Alert holds only the
// fields that passed validation before the check that failed (the others
// are zero), so every value in it is safe to log and to audit; Alert.Status
// is "firing", "resolved", or "" when the status itself was invalid. Label
// names the label that failed for ReasonInvalidLabel (one of the fixed
// names the receiver reads), "" otherwise.
type Ignored struct {
	Alert  intent.Alert `json:"alert"`
	Reason Reason       `json:"reason"`
	Label  string       `json:"label,omitempty"`
}

// Observer receives the handler's own events, for the receiver's metrics
// (this package does not import Prometheus: the collector snapshots what an
// Observer counted). Methods are called synchronously from request
// goroutines, concurrently, and must be cheap.
type Observer interface {
	// Request is called once per request with the status code sent.
	Request(code int)
	// Truncated is called with a notification's truncatedAlerts when it is
	// above zero: Alertmanager's max_alerts left that many alerts of the
	// group out, so they were never seen here.
	Truncated(n uint64)
}

// Options configures a Handler. Zero values mean the documented defaults.
type Options struct {
	// Token is the bearer token a request must carry
	// (Authorization: Bearer <token>); ReadTokenFile reads it from a file.
	// Only its SHA-256 digest is kept. Empty means no bearer check, which
	// New accepts only with AllowNoToken.
	Token []byte
	// AllowNoToken lets New build a handler without a Token, for a server
	// that authenticates every request itself (exporter-toolkit basic auth
	// or mTLS) or an explicitly insecure receiver on loopback. The zero
	// value refuses, so forgetting the token is an error, not an open door.
	AllowNoToken bool
	// Known reports whether an app label value names an app this host
	// knows; it is called only with values that passed the label charset
	// check. Nil knows no app: every alert is ignored as unknown_app.
	Known func(app string) bool
	// HostLabel is the label that names the host an alert is about;
	// default "instance".
	HostLabel string
	// Identity lists the names this host answers to in HostLabel (host
	// names, addresses). A value matches when it equals one of them, or its
	// host part does (Prometheus's instance is usually host:port), ignoring
	// ASCII case. Nil means the host name from os.Hostname and its first
	// DNS label. An alert without HostLabel is for every host.
	Identity []string
	// MaxBodyBytes caps the request body; default 1 MiB. Larger bodies get
	// 413 and are not decoded.
	MaxBodyBytes int64
	// ReadTimeout bounds reading the body once the handler runs; default
	// 10s. The server's ReadHeaderTimeout (see Harden) bounds the headers.
	ReadTimeout time.Duration
	// MaxInFlight bounds requests handled at once after authentication;
	// default 16. Beyond it a request gets 503 and Alertmanager retries.
	MaxInFlight int
	// Observer receives request codes and truncation counts; nil discards.
	Observer Observer
	// Logger receives rejected requests (at debug: a flood must not flood
	// the log; the Observer counts them) and accepted notifications' counts,
	// never a header, a body or an unescaped label value; nil discards.
	Logger *slog.Logger
}
