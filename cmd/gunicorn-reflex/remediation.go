package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incident"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/actuator"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/audit"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/policy"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/state"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/verify"
	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/webhook"
)

// remediationAPI is where the people-in-the-loop endpoints live; the
// webhook itself is config.ReceiverPath.
const remediationAPI = "/api/v1/remediation/"

// remediation is the running receiver: the engine, the files it holds
// open, and the token its endpoints check.
type remediation struct {
	engine *receiver.Engine
	store  *state.Store
	audit  *audit.Writer
	act    *actuator.Actuator
	digest [sha256.Size]byte
	token  bool // a bearer token is configured
	open   bool // no token: only allowed on a loopback listener
	wg     sync.WaitGroup
}

// startReceiver builds the receiver from the config's receiver section,
// registers its endpoints and starts its workers. The receiver section is
// read at start only: a reload that changes it is logged, not applied,
// because the state file is locked by the running receiver.
func (d *daemon) startReceiver(ctx context.Context, cfg *config.Config) error {
	rc := cfg.Receiver
	d.rxConfig = rc
	if !rc.Enabled {
		return nil
	}
	r := &remediation{}
	var tok []byte
	if rc.BearerTokenFile != "" {
		var err error
		if tok, err = webhook.ReadTokenFile(rc.BearerTokenFile); err != nil {
			return fmt.Errorf("receiver: %w", err)
		}
		r.digest, r.token = sha256.Sum256(tok), true
		defer clear(tok) // both handlers keep only its digest
	}
	if !r.token {
		if loopbackOnly(*d.flags.web.WebListenAddresses) {
			r.open = true
		} else if rc.Insecure {
			return fmt.Errorf("receiver: insecure (no bearer_token_file) is allowed only when every --web.listen-address is a loopback address, not %s",
				strings.Join(*d.flags.web.WebListenAddresses, ", "))
		}
	}
	fs, err := procinfo.NewFS(cfg.Discovery.ProcPath)
	if err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	for _, p := range []string{rc.StateFile, rc.AuditLog} {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return fmt.Errorf("receiver: %w", err)
		}
	}
	if r.store, err = state.Open(rc.StateFile, time.Now()); err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	if r.store.Corrupt() {
		d.logger.Error("receiver state was corrupt: moved aside, every action cools down", "err", r.store.CorruptErr())
	}
	if r.audit, err = audit.Open(rc.AuditLog, d.timeline); err != nil {
		r.close()
		return fmt.Errorf("receiver: %w", err)
	}
	if r.act, err = actuator.New(actuator.Options{FS: fs, DryRun: rc.DryRun, KillSwitch: rc.KillSwitchFile, Logger: d.logger.With("component", "actuator")}); err != nil {
		r.close()
		return fmt.Errorf("receiver: %w", err)
	}
	guard := incident.NewGuard(incident.GuardOptions{App: d.apps.GuardApp, PG: d.scrapeDatabases, ReadProc: fs.ReadRootFile,
		CPUBusyAbove: rc.Guard.CPUBusyAbove, SaturationAbove: rc.Guard.PGSaturationAbove})
	apps := make([]receiver.App, 0, len(rc.Apps))
	for _, a := range rc.Apps {
		apps = append(apps, receiver.App{Name: a.Name, Unit: a.Unit, Rules: rulesOf(a)})
	}
	r.engine, err = receiver.New(receiver.Options{
		Apps:           apps,
		Global:         policy.Global{DryRun: rc.DryRun, RateLimit: rc.RateLimit, RateWindow: rc.RateWindow.D(), KeyTTL: rc.IdempotencyTTL.D()},
		Host:           d.apps,
		Guard:          d.incidents.Guard(guard),
		Effector:       receiver.Live{Actuator: r.act, FS: fs, Host: d.apps, Verify: verify.Options{Deadline: rc.VerifyTimeout.D()}},
		Store:          r.store,
		Audit:          r.audit,
		Journal:        receiver.NewJournal(rc.StateFile + ".pending"),
		QueueSize:      rc.QueueSize,
		ReconcileEvery: rc.ReconcileInterval.D(),
		Logger:         d.logger.With("component", "receiver"),
	})
	if err != nil {
		r.close()
		return err
	}
	hook, err := webhook.New(webhook.Options{
		Token:        tok,
		AllowNoToken: !r.token,
		Known: func(app string) bool {
			_, onHost := d.apps.Lookup(app)
			return onHost && r.engine.Known(app)
		},
		HostLabel:    rc.HostLabel,
		Identity:     rc.Identity,
		MaxBodyBytes: rc.MaxBodyBytes,
		Observer:     r.engine,
		Logger:       d.logger.With("component", "webhook"),
	}, r.engine)
	if err != nil {
		r.close()
		return fmt.Errorf("receiver: %w", err)
	}
	d.mux.Handle(config.ReceiverPath, hook)
	d.mux.HandleFunc("GET "+remediationAPI+"status", r.serveStatus)
	d.mux.HandleFunc("POST "+remediationAPI+"{op}/{app}", r.serveControl)
	d.mux.HandleFunc("POST "+deploysPath, d.serveDeploy(r))
	d.receiver = r
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.engine.Run(ctx)
	}()
	d.logger.Info("remediation receiver enabled", "path", config.ReceiverPath, "apps", len(apps), "dry_run", rc.DryRun,
		"bearer_token", r.token, "state_file", rc.StateFile, "audit_log", rc.AuditLog)
	return nil
}

// warnReceiverChanged says that a reloaded receiver section is not
// applied: the running receiver holds its state file locked, and changing
// its rules under queued alerts would decide them by rules they were not
// recorded under.
func (d *daemon) warnReceiverChanged(cfg *config.Config) {
	if !reflect.DeepEqual(cfg.Receiver, d.rxConfig) {
		d.logger.Warn("the receiver section changed: restart gunicorn-reflex to apply it; the running receiver keeps its settings")
	}
}

func rulesOf(a config.RemediatedApp) policy.Rules {
	r := policy.Rules{
		MinWorkers: a.MinWorkers, MaxWorkers: a.MaxWorkers,
		Cooldown: a.Cooldown.D(), Stabilization: a.Stabilization.D(), Grace: a.Grace.D(),
		Budget: a.Budget, BudgetWindow: a.BudgetWindow.D(),
	}
	for _, s := range a.AllowedActions() {
		act, _ := intent.ParseAction(s) // config validated the closed set
		r.Allow = append(r.Allow, act)
	}
	return r
}

// wait stops the receiver's workers (ctx is done) and closes its files.
func (r *remediation) wait() {
	if r == nil {
		return
	}
	r.wg.Wait()
	r.close()
}

func (r *remediation) close() {
	if r.act != nil {
		r.act.Close()
	}
	if r.audit != nil {
		_ = r.audit.Close()
	}
	if r.store != nil {
		_ = r.store.Close()
	}
}

// loopbackOnly reports whether every listen address is a loopback one
// (":9615" listens on every interface, so it is not).
func loopbackOnly(addrs []string) bool {
	if len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return false
		}
		if host == "localhost" {
			continue
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// authorized checks the bearer token in constant time; with no token the
// endpoints are served only on a loopback listener.
func (r *remediation) authorized(req *http.Request) bool {
	if !r.token {
		return r.open
	}
	auth := req.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(auth[len(prefix):]))
	return subtle.ConstantTimeCompare(got[:], r.digest[:]) == 1
}

func (r *remediation) serveStatus(w http.ResponseWriter, req *http.Request) {
	if !r.authorized(req) {
		http.Error(w, "Unauthorized.", http.StatusUnauthorized)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": r.engine.Status()})
}

func (r *remediation) serveControl(w http.ResponseWriter, req *http.Request) {
	if !r.authorized(req) {
		http.Error(w, "Unauthorized.", http.StatusUnauthorized)
		return
	}
	app := req.PathValue("app")
	var err error
	switch req.PathValue("op") {
	case "pause":
		err = r.engine.Pause(app)
	case "resume":
		err = r.engine.Resume(app)
	case "reset-circuit":
		err = r.engine.ResetCircuit(app)
	default:
		http.Error(w, "Unknown operation: use pause, resume or reset-circuit.", http.StatusNotFound)
		return
	}
	switch {
	case errors.Is(err, receiver.ErrUnknownApp):
		http.Error(w, "No receiver rules for this app.", http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, "Not saved: "+err.Error(), http.StatusInternalServerError)
		return
	}
	for _, s := range r.engine.Status() {
		if s.App == app {
			writeJSON(w, http.StatusOK, s)
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// runRemediation runs `gunicorn-reflex remediation status|pause|resume|
// reset-circuit APP` against the running daemon's API.
func runRemediation(ctx context.Context, f *flags, stdout, stderr io.Writer) int {
	var token string
	if f.remediationTokenFile != "" {
		tok, err := webhook.ReadTokenFile(f.remediationTokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", programName, err)
			return 1
		}
		token = string(tok)
	}
	base := strings.TrimRight(f.remediationURL, "/") + remediationAPI
	method, url := http.MethodGet, base+"status"
	if f.command != "status" {
		method, url = http.MethodPost, base+f.command+"/"+f.remediationApp
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 1
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "%s: %s %s: %s: %s\n", programName, method, url, resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	var apps []receiver.AppStatus
	if f.command == "status" {
		var out struct {
			Apps []receiver.AppStatus `json:"apps"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			fmt.Fprintf(stderr, "%s: unexpected answer: %v\n", programName, err)
			return 1
		}
		apps = out.Apps
	} else {
		var s receiver.AppStatus
		if err := json.Unmarshal(body, &s); err != nil {
			fmt.Fprintf(stderr, "%s: unexpected answer: %v\n", programName, err)
			return 1
		}
		apps = []receiver.AppStatus{s}
	}
	printStatus(stdout, apps)
	return 0
}

func printStatus(w io.Writer, apps []receiver.AppStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tPAUSED\tCIRCUIT\tDESIRED\tQUEUED\tIN FLIGHT\tLAST ACTIONS")
	for _, a := range apps {
		circuit := "closed"
		if a.CircuitOpen {
			circuit = "open since " + a.CircuitAt.UTC().Format(time.RFC3339)
		}
		desired := "-"
		if a.Desired > 0 {
			desired = fmt.Sprint(a.Desired)
		}
		var last []string
		for _, act := range intent.Actions {
			if t, ok := a.LastAction[act]; ok {
				last = append(last, string(act)+" "+t.UTC().Format(time.RFC3339))
			}
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%d\t%s\t%s\n", a.App, a.Paused, circuit, desired, a.Queued,
			nonEmpty(string(a.InFlight), "-"), nonEmpty(strings.Join(last, ", "), "-"))
	}
	_ = tw.Flush()
}
