package webhook

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newServer serves h on loopback with Harden's settings, shortened so the
// test does not wait seconds; Harden keeps values already set.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadHeaderTimeout = 300 * time.Millisecond
	Harden(srv.Config)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestHardenFillsOnlyZeroFields(t *testing.T) {
	srv := &http.Server{ReadTimeout: time.Minute}
	Harden(srv)
	require.Equal(t, time.Minute, srv.ReadTimeout)
	require.Equal(t, 5*time.Second, srv.ReadHeaderTimeout)
	require.NotZero(t, srv.WriteTimeout)
	require.NotZero(t, srv.IdleTimeout)
	require.Equal(t, 16<<10, srv.MaxHeaderBytes)
}

// readResponse reads one response from a raw connection, failing rather
// than hanging when the server says nothing (the deadline is a liveness
// bound, not a speed assertion).
func readResponse(t *testing.T, c net.Conn) (*http.Response, error) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Second)))
	return http.ReadResponse(bufio.NewReader(c), nil)
}

// TestSlowHeadersAreCutOff is C8's slowloris: a client that never finishes
// its headers is disconnected by the header timeout, and while it hangs
// other requests are still served.
func TestSlowHeadersAreCutOff(t *testing.T) {
	in := &recIntake{}
	srv := newServer(t, newTestHandler(t, testOptions(), in))
	var slow []net.Conn
	for range 100 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testToken+"\r\nX-Slow: ")
		require.NoError(t, err)
		slow = append(slow, c)
	}
	// A well-behaved request is served while 100 connections dawdle.
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/alerts", bytes.NewReader(payload(t, firing(scaleUpLabels()))))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, c := range slow {
		// The server closes the connection (Go answers nothing, or a 408,
		// depending on its version): either way no handler ran.
		resp, err := readResponse(t, c)
		if err == nil {
			resp.Body.Close()
			require.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
		} else {
			var ne net.Error
			require.False(t, errorsAs(err, &ne) && ne.Timeout(), "the server kept a slow-header connection open: %v", err)
		}
	}
	calls, _, _ := in.snapshot()
	require.Equal(t, 1, calls)
}

func errorsAs(err error, target *net.Error) bool {
	ne, ok := err.(net.Error) //nolint:errorlint // http.ReadResponse returns the conn's error unwrapped
	if ok {
		*target = ne
	}
	return ok
}

// TestSlowBodyGets408: authenticated headers, then a body that stops
// arriving: the handler's own read deadline answers 408 and nothing is
// handed on, even behind a server with no ReadTimeout of its own.
func TestSlowBodyGets408(t *testing.T) {
	in := &recIntake{}
	opts := testOptions()
	opts.ReadTimeout = 200 * time.Millisecond
	h := newTestHandler(t, opts, in)
	srv := httptest.NewServer(h) // no server timeouts: the handler's deadline is what fires
	t.Cleanup(srv.Close)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	body := payload(t, firing(scaleUpLabels()))
	_, err = fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		testToken, len(body), body[:len(body)/2])
	require.NoError(t, err)
	resp, err := readResponse(t, c)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	require.True(t, strings.Contains(string(b), "in time"), string(b))
	calls, _, _ := in.snapshot()
	require.Zero(t, calls)
}

// TestOversizedHeaders: a header block beyond MaxHeaderBytes is refused by
// the server before the handler runs.
func TestOversizedHeaders(t *testing.T) {
	in := &recIntake{}
	srv := newServer(t, newTestHandler(t, testOptions(), in))
	req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(payload(t, firing(scaleUpLabels()))))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("X-Big", strings.Repeat("b", 64<<10))
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	calls, _, _ := in.snapshot()
	require.Zero(t, calls)
}
