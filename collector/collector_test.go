package collector

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accessstats"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/appset"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/errorlog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/lifecycle"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/testenv"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/workerstate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

type fakeApps []appset.Snapshot

func (f fakeApps) Snapshot() []appset.Snapshot { return f }

// asCollector adapts a Collector for testutil.
type asCollector struct{ c Collector }

func (a asCollector) Describe(chan<- *prometheus.Desc) {}
func (a asCollector) Collect(ch chan<- prometheus.Metric) {
	if err := a.c.Update(ch); err != nil {
		panic(err)
	}
}

// sampleApps is one app with a bit of everything, and one app with nothing
// yet: every known series must be there at 0.
func sampleApps() fakeApps {
	var shop lifecycle.Counts
	shop.Timeouts = 3
	shop.Boots = 10
	shop.MasterStarts = 1
	shop.Reloads = 1
	shop.RequestErrors = 7
	shop.Exits[lifecycle.AllExitCauses[0]] = 3 // timeout
	shop.Exits[lifecycle.AllExitCauses[1]] = 1 // sigkill
	shop.WorkerSignals[lifecycle.AllSignals[0]] = 1
	shop.MasterSignals[lifecycle.AllMasterSignals[0]] = 1
	shop.Messages[errorlog.LevelInfo] = 40
	shop.Messages[errorlog.LevelCritical] = 3
	shop.ParseFailures = 2
	shop.LastTimeout = time.Date(2026, 11, 24, 17, 50, 27, 0, time.UTC)
	var st follower.Stats
	st.Lines, st.Bytes, st.BytesBehind, st.Open = 120, 9000, 42, true
	st.Rotations[follower.RotationRename] = 1
	parser, err := accesslog.Compile(accesslog.DefaultFormat + " %(D)s")
	if err != nil {
		panic(err)
	}
	access := accessstats.New("shop", parser, accessstats.Options{Routes: true, MaxRoutes: 10})
	access.ObserveLine([]byte(`127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET /users/42 HTTP/1.1" 200 2 "-" "curl/7.88.1" 1500`))
	return fakeApps{
		{App: "shop", Source: appset.SourceConfig, Lifecycle: shop, ErrorLog: st, HasErrorLog: true, Access: access, AccessLog: st,
			Proc: appset.ProcState{Known: true, Sampled: true, Timeout: 30 * time.Second, OOMSuspected: 1, State: workerstate.AppState{
				Workers: 3, Busy: 1, Idle: 2, MaxHeartbeatAge: 4 * time.Second, RSSBytesSum: 3 << 20, RSSBytesMax: 1 << 20,
				MasterStartTime: time.Date(2026, 11, 24, 17, 0, 0, 0, time.UTC),
				Backlog:         workerstate.Backlog{Listed: true, Listeners: 2, Queued: 9, Max: 4096, MaxKnown: true, Peak: 11},
			}}},
		{App: "idle\xff", Source: appset.SourceDiscovery, HasErrorLog: true},
	}
}

func sampleListenStats() (procinfo.ListenStats, error) {
	return procinfo.ListenStats{Overflows: 4, Drops: 6}, nil
}

func TestGoldenExposition(t *testing.T) {
	tl := timeline.New(16, 0)
	tl.Append(timeline.Event{Kind: "worker_timeout"})
	for _, tc := range []struct {
		name string
		c    Collector
	}{
		{"lifecycle", NewLifecycle(sampleApps())},
		{"logfollow", NewLogFollow(sampleApps())},
		{"access", NewAccess(sampleApps())},
		{"proc", NewProc(sampleApps())},
		{"timeline", NewTimeline(tl)},
		{"netstat", NewNetstat(sampleListenStats)},
		{"receiver", NewReceiver(sampleRemediation())},
		{"incidents", NewIncidents(sampleIncidents{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden := filepath.Join("testdata", tc.name+".golden")
			got := expose(t, tc.c)
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./collector -update to create the golden file")
			require.NoError(t, testutil.CollectAndCompare(asCollector{tc.c}, bytes.NewReader(want)))
			promtoolCheckMetrics(t, want)
		})
	}
}

// Label values from logs and /proc are not trusted to be UTF-8.
func TestInvalidUTF8LabelIsSanitised(t *testing.T) {
	out := string(expose(t, NewLifecycle(sampleApps())))
	require.Contains(t, out, `app="idle`+"\uFFFD"+`"`)
}

type panicky struct{}

func (panicky) Update(chan<- prometheus.Metric) error { panic("boom") }

type failing struct{}

func (failing) Update(chan<- prometheus.Metric) error { return errors.New("no state") }

// A collector that fails or panics is reported, never takes the scrape down.
func TestExporterIsolatesFailures(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewExporter(promslog.NewNopLogger(), map[string]Collector{
		"panicky": panicky{}, "failing": failing{}, "timeline": NewTimeline(timeline.New(16, 0)),
	}))
	got, err := reg.Gather()
	require.NoError(t, err)
	success := map[string]float64{}
	for _, mf := range got {
		if mf.GetName() == "reflex_scrape_collector_success" {
			for _, m := range mf.GetMetric() {
				success[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	require.Equal(t, map[string]float64{"panicky": 0, "failing": 0, "timeline": 1}, success)
}

// Every metric the collectors export is documented in docs/metrics.md.
func TestEveryMetricIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewExporter(promslog.NewNopLogger(), map[string]Collector{
		"lifecycle": NewLifecycle(sampleApps()),
		"logfollow": NewLogFollow(sampleApps()),
		"access":    NewAccess(sampleApps()),
		"proc":      NewProc(sampleApps()),
		"timeline":  NewTimeline(timeline.New(16, 0)),
		"netstat":   NewNetstat(sampleListenStats),
		"receiver":  NewReceiver(sampleRemediation()),
		"incidents": NewIncidents(sampleIncidents{}),
	}))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.NotEmpty(t, mfs)
	for _, mf := range mfs {
		require.Contains(t, string(doc), "`"+mf.GetName()+"`", "docs/metrics.md does not list %s", mf.GetName())
	}
	// And the page lists nothing that is not exported by someone.
	listed := regexp.MustCompile("\\| `((?:gunicorn|reflex)_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1)
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
	}
	for _, m := range listed {
		name := m[1]
		if exported[name] || strings.HasPrefix(name, "reflex_config_") || name == "reflex_build_info" ||
			strings.HasPrefix(name, "reflex_pg") {
			continue // registered by main or bound per scrape; checked end to end (cmd/gunicorn-reflex)
		}
		t.Errorf("docs/metrics.md lists %s, which no collector exports", name)
	}
}

func expose(t *testing.T, c Collector) []byte {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(asCollector{c})
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		require.NoError(t, enc.Encode(mf))
	}
	return buf.Bytes()
}

// promtoolCheckMetrics runs the Prometheus linter on an exposition.
func promtoolCheckMetrics(t *testing.T, exposition []byte) {
	t.Helper()
	promtool := testenv.LookPath(t, "promtool")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
}
