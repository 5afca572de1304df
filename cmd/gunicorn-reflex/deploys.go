package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/deploy"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// deploysPath is where a release pipeline says "version X of app Y is
// deployed". It is served with the receiver, behind the receiver's bearer
// token (or, with none, only on loopback listeners), because it writes to
// the timeline that incident verdicts read.
const deploysPath = "/api/v1/deploys"

// Bounds of a deploy announcement.
const (
	maxDeployBody  = 16 << 10
	maxDeployField = 256
	// maxDeployAge bounds how far back an announcement may be dated: the
	// timeline's evidence windows are minutes, and an old date is more
	// likely a wrong clock than a late pipeline.
	maxDeployAge = 24 * time.Hour
	// maxDeploySkew is how far in the future a date may be (clock skew
	// between the pipeline's host and this one).
	maxDeploySkew = time.Minute
)

// deployRequest is the body of POST /api/v1/deploys. App and Version are
// required; Time (RFC 3339) defaults to when the request arrived.
type deployRequest struct {
	App         string    `json:"app"`
	Version     string    `json:"version"`
	Commit      string    `json:"commit,omitempty"`
	Description string    `json:"description,omitempty"`
	By          string    `json:"by,omitempty"`
	Time        time.Time `json:"time,omitzero"`
}

// serveDeploy records an announced deploy as a deploy marker (source
// deploy, cause api) and answers 202 with the event.
func (d *daemon) serveDeploy(r *remediation) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if !r.authorized(req) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gunicorn-reflex"`)
			http.Error(w, "Unauthorized.", http.StatusUnauthorized)
			return
		}
		now := time.Now()
		dr, err := decodeDeploy(io.LimitReader(req.Body, maxDeployBody+1), now)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, ok := d.apps.Lookup(dr.App); !ok {
			http.Error(w, fmt.Sprintf("app %q is not followed on this host", dr.App), http.StatusNotFound)
			return
		}
		attrs := map[string]string{"version": dr.Version}
		for k, v := range map[string]string{"commit": dr.Commit, "description": dr.Description, "by": dr.By} {
			if v != "" {
				attrs[k] = v
			}
		}
		detail := "deploy announced: version " + dr.Version
		if dr.By != "" {
			detail += " by " + dr.By
		}
		ev := deploy.Event(dr.App, deploy.KindAPI, detail, attrs)
		ev.Time = dr.Time
		ev.Seq = d.timeline.Append(ev)
		d.logger.Info("deploy marker", "app", dr.App, "how", deploy.KindAPI, "version", dr.Version)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]timeline.Event{"event": ev})
	}
}

// decodeDeploy reads and checks one announcement; every fault is a
// sentence naming the field.
func decodeDeploy(body io.Reader, now time.Time) (deployRequest, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return deployRequest{}, fmt.Errorf("reading the body: %w", err)
	}
	if len(b) > maxDeployBody {
		return deployRequest{}, fmt.Errorf("the body is larger than %d bytes", maxDeployBody)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var dr deployRequest
	if err := dec.Decode(&dr); err != nil {
		return deployRequest{}, fmt.Errorf("the body must be one JSON object {app, version, commit, description, by, time}: %w", err)
	}
	if dec.More() {
		return deployRequest{}, errors.New("the body must be one JSON object, not several")
	}
	for _, f := range []struct{ name, val string }{
		{"app", dr.App}, {"version", dr.Version}, {"commit", dr.Commit}, {"description", dr.Description}, {"by", dr.By},
	} {
		if len(f.val) > maxDeployField {
			return deployRequest{}, fmt.Errorf("%s is longer than %d bytes", f.name, maxDeployField)
		}
		if !utf8.ValidString(f.val) || strings.ContainsAny(f.val, "\x00\n\r") {
			return deployRequest{}, fmt.Errorf("%s must be one line of UTF-8 text", f.name)
		}
	}
	switch {
	case dr.App == "":
		return deployRequest{}, errors.New("app is required")
	case strings.TrimSpace(dr.Version) == "":
		return deployRequest{}, errors.New("version is required")
	case dr.Time.IsZero():
		dr.Time = now
	case dr.Time.After(now.Add(maxDeploySkew)):
		return deployRequest{}, fmt.Errorf("time %s is in the future", dr.Time.Format(time.RFC3339))
	case dr.Time.Before(now.Add(-maxDeployAge)):
		return deployRequest{}, fmt.Errorf("time %s is more than %s ago", dr.Time.Format(time.RFC3339), maxDeployAge)
	}
	return dr, nil
}
