package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// POST /api/v1/deploys through the binary: the receiver's bearer token is
// required, bad bodies are 400 with the field at fault, an unknown app is
// 404, and an accepted announcement is a deploy event in the timeline.
func TestDeployAnnouncement(t *testing.T) {
	dir := t.TempDir()
	const token = "deploy-test-token-41c2"
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	errLog := filepath.Join(dir, "error.log")
	require.NoError(t, os.WriteFile(errLog, nil, 0o644))
	cfg := filepath.Join(dir, "reflex.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`apps:
  - name: shop
    error_log: %s
receiver:
  enabled: true
  bearer_token_file: %s
  state_file: %s
  audit_log: %s
  apps:
    - name: shop
      allow: [reload]
`, errLog, tokenFile, filepath.Join(dir, "state.json"), filepath.Join(dir, "audit.jsonl"))), 0o600))
	exp := reflextest.Start(t, "--config.file="+cfg)

	post := func(auth, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, exp.URL+"/api/v1/deploys", strings.NewReader(body))
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	good := `{"app":"shop","version":"v2.4.1","commit":"9f1c2ab","by":"ci"}`
	for _, tc := range []struct {
		name, auth, body string
		code             int
		msg              string
	}{
		{"no token", "", good, http.StatusUnauthorized, "Unauthorized"},
		{"wrong token", "nope", good, http.StatusUnauthorized, "Unauthorized"},
		{"not JSON", token, "version=1", http.StatusBadRequest, "one JSON object"},
		{"unknown field", token, `{"app":"shop","version":"1","env":"prod"}`, http.StatusBadRequest, `unknown field "env"`},
		{"two objects", token, good + good, http.StatusBadRequest, "not several"},
		{"no app", token, `{"version":"1"}`, http.StatusBadRequest, "app is required"},
		{"no version", token, `{"app":"shop"}`, http.StatusBadRequest, "version is required"},
		{"multi-line version", token, `{"app":"shop","version":"1\n2"}`, http.StatusBadRequest, "version must be one line"},
		{"long version", token, `{"app":"shop","version":"` + strings.Repeat("v", 300) + `"}`, http.StatusBadRequest, "version is longer than 256 bytes"},
		{"future", token, `{"app":"shop","version":"1","time":"` + time.Now().Add(time.Hour).Format(time.RFC3339) + `"}`, http.StatusBadRequest, "in the future"},
		{"huge body", token, `{"app":"shop","version":"1","description":"` + strings.Repeat("x", 20000) + `"}`, http.StatusBadRequest, "larger than"},
		{"unknown app", token, `{"app":"cart","version":"1"}`, http.StatusNotFound, `"cart" is not followed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(tc.auth, tc.body)
			require.Equal(t, tc.code, code, body)
			require.Contains(t, body, tc.msg)
		})
	}
	_, events, err := exp.Get("/api/v1/events?kind=deploy")
	require.NoError(t, err)
	require.Contains(t, events, `"events": []`, "no refused announcement is recorded")

	code, body := post(token, good)
	require.Equal(t, http.StatusAccepted, code, body)
	_, events, err = exp.Get("/api/v1/events?kind=deploy&app=shop")
	require.NoError(t, err)
	var got struct {
		Events []struct {
			Source, Kind, Cause, Detail string
			Attrs                       map[string]string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(events), &got))
	require.Len(t, got.Events, 1, events)
	ev := got.Events[0]
	require.Equal(t, "deploy", ev.Source)
	require.Equal(t, "deploy", ev.Kind)
	require.Equal(t, "api", ev.Cause)
	require.Equal(t, "v2.4.1", ev.Attrs["version"])
	require.Equal(t, "9f1c2ab", ev.Attrs["commit"])
	require.Contains(t, ev.Detail, "version v2.4.1 by ci")
}
