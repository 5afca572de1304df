package pgmon

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Error kinds. Every error pgmon returns is an *Error whose Kind is one of
// these, so callers classify with errors.Is. A timeout also matches
// context.DeadlineExceeded.
var (
	// ErrUnreachable: no connection could be established (refused, no
	// route, DNS, TLS, too many connections, server starting up).
	ErrUnreachable = errors.New("cannot connect")
	// ErrAuth: the server refused the credentials or the role may not
	// connect (SQLSTATE class 28, 42501 at connect).
	ErrAuth = errors.New("authentication or authorization failed")
	// ErrTimeout: the deadline passed (hung server, slow query), or the
	// server cancelled a statement (statement_timeout 57014, lock_timeout
	// 55P03).
	ErrTimeout = errors.New("deadline exceeded")
	// ErrConnectionLost: an established connection died (backend
	// terminated, server restarted, network reset).
	ErrConnectionLost = errors.New("connection lost")
	// ErrQuery: a query failed for another reason.
	ErrQuery = errors.New("query failed")
	// ErrInsufficientPrivilege: the role is not a member of
	// pg_read_all_stats (nor a superuser), so other roles' sessions are
	// invisible in pg_stat_activity.
	ErrInsufficientPrivilege = errors.New("role lacks pg_read_all_stats")
	// ErrAmbiguous: LinkBackend matched more than one backend (client
	// address not given and the port is used from several hosts).
	ErrAmbiguous = errors.New("more than one backend matches")
	// ErrInvalid: a bad argument or configuration.
	ErrInvalid = errors.New("invalid argument")
	// ErrClosed: the target was closed.
	ErrClosed = errors.New("target closed")
)

// Error is the error type pgmon returns. Its text never contains the DSN or
// the password: the detail of the underlying driver error is redacted
// before it is stored, and the driver error itself is not kept.
type Error struct {
	Target   string // the configured target name
	Op       string // "connect", "scrape", "link", "show pools", "wait"
	Kind     error  // one of the Err* kinds
	SQLState string // the server's SQLSTATE when the server reported the error
	detail   string // redacted text of the underlying error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("pgmon: target %q: %s: %v", e.Target, e.Op, e.Kind)
	if e.detail != "" {
		s += ": " + e.detail
	}
	return s
}

// Unwrap returns the kind, so errors.Is(err, ErrAuth) works.
func (e *Error) Unwrap() error { return e.Kind }

// Is makes a timeout match context.DeadlineExceeded too.
func (e *Error) Is(target error) bool {
	return e.Kind == ErrTimeout && target == context.DeadlineExceeded
}

// redactor removes secrets from text that may quote them.
type redactor struct{ secrets []string }

const redacted = "xxxxx"

// newRedactor returns a redactor for the raw DSN and the password in every
// spelling a message could contain: raw, URL-escaped (query and path
// forms) and keyword/value-escaped.
func newRedactor(dsn, password string) redactor {
	var s []string
	add := func(v string) {
		if v != "" {
			s = append(s, v)
		}
	}
	add(dsn)
	add(password)
	add(url.QueryEscape(password))
	add(url.PathEscape(password))
	add(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password))
	if u := url.UserPassword("x", password).String(); strings.HasPrefix(u, "x:") {
		add(strings.TrimSuffix(strings.TrimPrefix(u, "x:"), "@"))
	}
	add(rawURLPassword(dsn))
	sort.Slice(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return redactor{secrets: s}
}

// rawURLPassword returns the password of a postgres:// URL exactly as it is
// spelled there (percent-escapes and all), or "".
func rawURLPassword(dsn string) string {
	_, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	_, pw, ok := strings.Cut(rest[:at], ":")
	if !ok {
		return ""
	}
	return pw
}

func (r redactor) redact(text string) string {
	for _, s := range r.secrets {
		text = strings.ReplaceAll(text, s, redacted)
	}
	return strings.ToValidUTF8(text, "\uFFFD")
}

// newError classifies err, an error from pgx during op, and returns an
// *Error with its text redacted. connClosed tells whether the connection
// the error happened on is unusable now.
func (r redactor) newError(target, op string, err error, connClosed bool) *Error {
	e := &Error{Target: target, Op: op, Kind: classify(op, err, connClosed), detail: r.redact(err.Error())}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		e.SQLState = pgErr.Code
	}
	return e
}

// classify maps a driver error to a kind. Connect errors are ErrAuth,
// ErrTimeout or ErrUnreachable; errors on an established connection are
// ErrTimeout, ErrConnectionLost (when the connection is closed now) or
// ErrQuery.
func classify(op string, err error, connClosed bool) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		switch {
		case strings.HasPrefix(code, "28"), op == opConnect && code == "42501":
			return ErrAuth
		case code == "57014", code == "55P03":
			return ErrTimeout
		case op == opConnect:
			return ErrUnreachable
		case strings.HasPrefix(code, "57P"), strings.HasPrefix(code, "08"):
			return ErrConnectionLost
		default:
			return ErrQuery
		}
	}
	if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return ErrTimeout
	}
	if op == opConnect {
		return ErrUnreachable
	}
	if connClosed {
		return ErrConnectionLost
	}
	return ErrQuery
}
