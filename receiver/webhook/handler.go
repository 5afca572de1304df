package webhook

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxTokenBytes bounds a token file: a bearer token is a short secret, and a
// large file is more likely a wrong path than a token.
const maxTokenBytes = 4096

// Handler is the webhook's http.Handler. Build it with New.
type Handler struct {
	intake   Intake
	digest   [sha256.Size]byte
	hasToken bool
	v        validator
	maxBody  int64
	readTO   time.Duration
	slots    chan struct{}
	obs      Observer
	log      *slog.Logger
	bufs     sync.Pool
}

// New builds a Handler that hands valid notifications to intake. It fails
// when intake is nil or when opts has no Token and AllowNoToken is false.
func New(opts Options, intake Intake) (*Handler, error) {
	if intake == nil {
		return nil, errors.New("webhook: nil Intake")
	}
	h := &Handler{intake: intake, obs: opts.Observer, log: opts.Logger}
	if len(opts.Token) > 0 {
		if err := checkToken(opts.Token); err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
		h.digest = sha256.Sum256(opts.Token)
		h.hasToken = true
	} else if !opts.AllowNoToken {
		return nil, errors.New("webhook: no bearer token, and AllowNoToken is not set")
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.maxBody = opts.MaxBodyBytes
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	h.readTO = opts.ReadTimeout
	if h.readTO <= 0 {
		h.readTO = DefaultReadTimeout
	}
	n := opts.MaxInFlight
	if n <= 0 {
		n = DefaultMaxInFlight
	}
	h.slots = make(chan struct{}, n)
	h.v = newValidator(opts)
	h.bufs.New = func() any { return new(bytes.Buffer) }
	return h, nil
}

// ReadTokenFile reads a bearer token from path: the whole file with
// surrounding whitespace (a trailing newline) removed. It refuses a file
// that others may read or write (mode o+r or o+w), an empty token, a token
// over 4 KiB, and bytes that cannot appear in an HTTP header token.
// Errors name the path, never the content.
func ReadTokenFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("token file %s: not a regular file", path)
	}
	if st.Mode().Perm()&0o006 != 0 {
		return nil, fmt.Errorf("token file %s: mode %v lets other users read or write it; use 0600 or 0400", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+2))
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	b = bytes.TrimSpace(b)
	if err := checkToken(b); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return b, nil
}

func checkToken(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty bearer token")
	}
	if len(b) > maxTokenBytes {
		return fmt.Errorf("bearer token longer than %d bytes", maxTokenBytes)
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return errors.New("bearer token has a space, a control or a non-ASCII byte")
		}
	}
	return nil
}

// Harden sets the timeouts and header cap an http.Server serving the
// receiver needs and that Go leaves unlimited by default, keeping any that
// are already set: ReadHeaderTimeout 5s (slow headers, a slowloris client),
// ReadTimeout 15s, WriteTimeout 15s, IdleTimeout 60s, MaxHeaderBytes 16 KiB.
// A body that arrives slower than the handler's ReadTimeout is cut off by
// the handler itself, so the handler is safe behind a server with longer
// timeouts (the exporter's main port).
func Harden(srv *http.Server) {
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = 5 * time.Second
	}
	if srv.ReadTimeout == 0 {
		srv.ReadTimeout = 15 * time.Second
	}
	if srv.WriteTimeout == 0 {
		srv.WriteTimeout = 15 * time.Second
	}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = 60 * time.Second
	}
	if srv.MaxHeaderBytes == 0 {
		srv.MaxHeaderBytes = 16 << 10
	}
}

// response is the JSON body of every answer. Error is a fixed message of
// this package, never a value taken from the request.
type response struct {
	Status string `json:"status"` // "ok" or "error"
	Error  string `json:"error,omitempty"`
	Receipt
	Ignored        int            `json:"ignored"`
	IgnoredReasons map[Reason]int `json:"ignored_reasons,omitempty"`
}

// ServeHTTP checks, in this order and before reading the body: method,
// bearer token, content type, declared length and the in-flight bound; then
// it reads the capped body under ReadTimeout, decodes and validates it, and
// calls the Intake.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, http.StatusMethodNotAllowed, "method not allowed: use POST")
		return
	}
	if h.hasToken && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gunicorn-reflex receiver"`)
		h.fail(w, r, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	if !jsonContentType(r.Header.Get("Content-Type")) {
		h.fail(w, r, http.StatusUnsupportedMediaType, "content type must be application/json")
		return
	}
	if r.ContentLength > h.maxBody {
		h.fail(w, r, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		h.fail(w, r, http.StatusServiceUnavailable, "too many requests in flight")
		return
	}

	buf := h.bufs.Get().(*bytes.Buffer)
	defer h.putBuf(buf)
	if code, msg := h.readBody(w, r, buf); code != 0 {
		h.fail(w, r, code, msg)
		return
	}
	n, err := Decode(buf.Bytes())
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if n.TruncatedAlerts > 0 && h.obs != nil {
		h.obs.Truncated(n.TruncatedAlerts)
	}
	alerts, ignored := h.v.validate(n.Alerts)
	rc, err := h.intake.Submit(r.Context(), alerts, ignored)
	if err != nil {
		code, msg := http.StatusInternalServerError, "internal error: nothing may have been recorded, retry"
		if errors.Is(err, ErrUnavailable) {
			code, msg = http.StatusServiceUnavailable, "unavailable: nothing was recorded, retry"
		}
		h.log.Warn("webhook intake failed", "code", code, "alerts", len(alerts), "ignored", len(ignored), "err", err)
		h.fail(w, r, code, msg)
		return
	}
	resp := response{Status: "ok", Receipt: rc, Ignored: len(ignored)}
	if len(ignored) > 0 {
		resp.IgnoredReasons = make(map[Reason]int, 4)
		for _, ig := range ignored {
			resp.IgnoredReasons[ig.Reason]++
		}
	}
	h.log.Debug("webhook notification", "alerts", len(alerts), "ignored", len(ignored),
		"queued", rc.Queued, "deduplicated", rc.Deduplicated, "dropped", rc.Dropped, "truncated", n.TruncatedAlerts)
	h.write(w, http.StatusOK, &resp)
}

// authorized compares the SHA-256 digests of the presented and the
// configured token: digests have a fixed length, so the constant-time
// compare does not leak the token's length either.
func (h *Handler) authorized(r *http.Request) bool {
	v := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(v[len(scheme):])))
	return subtle.ConstantTimeCompare(got[:], h.digest[:]) == 1
}

// jsonContentType accepts application/json with no charset or a UTF-8 one
// (JSON is UTF-8, RFC 8259; Alertmanager sends "application/json").
func jsonContentType(v string) bool {
	if v == "application/json" {
		return true
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, p := range params {
		if k != "charset" || !strings.EqualFold(p, "utf-8") {
			return false
		}
	}
	return true
}

// readBody reads the capped body into buf under the read deadline; a
// non-zero code is the answer to send.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) (int, string) {
	rc := http.NewResponseController(w)
	// ErrNotSupported (a ResponseWriter without deadlines, as in
	// httptest.ResponseRecorder) leaves the server's own ReadTimeout.
	_ = rc.SetReadDeadline(time.Now().Add(h.readTO))
	body := http.MaxBytesReader(w, r.Body, h.maxBody)
	if _, err := buf.ReadFrom(body); err != nil {
		// The connection is not reused, and the deadline stays in force:
		// net/http otherwise tries to read the rest of a short body before
		// sending the answer, and would wait for a stalled client forever.
		w.Header().Set("Connection", "close")
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return http.StatusRequestEntityTooLarge, "body too large"
		case errors.Is(err, os.ErrDeadlineExceeded):
			return http.StatusRequestTimeout, "body not received in time"
		default:
			return http.StatusBadRequest, "body could not be read"
		}
	}
	_ = rc.SetReadDeadline(time.Time{})
	if buf.Len() == 0 {
		return http.StatusBadRequest, "empty body"
	}
	return 0, ""
}

func (h *Handler) putBuf(b *bytes.Buffer) {
	// A buffer grown by a rare large body is dropped rather than pinned in
	// the pool.
	if b.Cap() > 256<<10 {
		return
	}
	b.Reset()
	h.bufs.Put(b)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	h.log.Debug("webhook request rejected", "code", code, "reason", msg, "remote_addr", r.RemoteAddr)
	h.write(w, code, &response{Status: "error", Error: msg})
}

func (h *Handler) write(w http.ResponseWriter, code int, resp *response) {
	if h.obs != nil {
		h.obs.Request(code)
	}
	b, err := json.Marshal(resp)
	if err != nil {
		// A response holds counts and fixed strings: marshalling cannot fail.
		b = []byte(`{"status":"error"}`)
	}
	b = append(b, '\n')
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// Compile-time check: a Handler serves HTTP.
var _ http.Handler = (*Handler)(nil)
