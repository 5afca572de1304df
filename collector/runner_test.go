package collector

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
)

// deadlineProbe records the context the runner hands it.
type deadlineProbe struct{ got chan context.Context }

func (p deadlineProbe) Update(chan<- prometheus.Metric) error {
	return p.UpdateContext(context.Background(), nil)
}

func (p deadlineProbe) UpdateContext(ctx context.Context, _ chan<- prometheus.Metric) error {
	p.got <- ctx
	return nil
}

// The runner passes the scrape's context (and so its deadline) through to
// a ContextCollector; a plain Collector beside it still runs.
func TestExporterBindPassesScrapeContext(t *testing.T) {
	probe := deadlineProbe{got: make(chan context.Context, 1)}
	exp := NewExporter(promslog.NewNopLogger(), map[string]Collector{"probe": probe, "failing": failing{}})
	deadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(exp.Bind(ctx))
	_, err := reg.Gather()
	require.NoError(t, err)
	got, ok := (<-probe.got).Deadline()
	require.True(t, ok, "the scrape's deadline did not reach the collector")
	require.Equal(t, deadline, got)

	// Unbound, as registered directly: no deadline.
	reg = prometheus.NewRegistry()
	reg.MustRegister(exp)
	_, err = reg.Gather()
	require.NoError(t, err)
	_, ok = (<-probe.got).Deadline()
	require.False(t, ok)
}

// The PostgreSQL collector runs in the isolating runner: it reports
// reflex_scrape_collector_success{collector="postgres"} like every other
// collector; a target that is down is up 0 and the collector succeeds;
// with no targets it exports nothing but the runner's series.
func TestPostgresThroughRunner(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close()) // nothing listens: connection refused
	tg, err := pgmon.NewTarget(pgmon.TargetConfig{Name: "down", DSN: fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=x sslmode=disable", port)}, nil)
	require.NoError(t, err)
	t.Cleanup(tg.Close)
	set := &pgmon.Set{Targets: []*pgmon.Target{tg}}

	for _, tc := range []struct {
		name string
		set  *pgmon.Set
		want string
	}{
		{"down", set, `
# HELP reflex_pg_up 1 if the PostgreSQL target answered this scrape in time with a role that sees every session (pg_read_all_stats); 0 if it is down, hung, refuses auth or lacks the privilege.
# TYPE reflex_pg_up gauge
reflex_pg_up{target="down"} 0
# HELP reflex_scrape_collector_success gunicorn-reflex: 1 if the collector produced its metrics without error during this scrape.
# TYPE reflex_scrape_collector_success gauge
reflex_scrape_collector_success{collector="postgres"} 1
`},
		{"none", nil, `
# HELP reflex_scrape_collector_success gunicorn-reflex: 1 if the collector produced its metrics without error during this scrape.
# TYPE reflex_scrape_collector_success gauge
reflex_scrape_collector_success{collector="postgres"} 1
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := NewExporter(promslog.NewNopLogger(), map[string]Collector{
				"postgres": NewPostgres(func() *pgmon.Set { return tc.set }),
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c := exp.Bind(ctx)
			require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(tc.want), "reflex_pg_up", "reflex_scrape_collector_success"))
			n, err := testutil.GatherAndCount(gathererOf(c), "reflex_pg_connections", "reflex_scrape_collector_duration_seconds")
			require.NoError(t, err)
			require.Equal(t, 1, n, "no connection figures from a target never reached; one duration")
		})
	}
}

func gathererOf(c prometheus.Collector) prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return reg
}

// Standalone exports one collector without the runner's series, and its
// failure reaches Gather instead of vanishing.
func TestStandalone(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(Standalone(NewAccess(StaticApps{sampleApps()[0]})))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	require.True(t, names["reflex_log_parse_failures_total"])
	require.True(t, names["gunicorn_http_requests_total"])
	require.False(t, names["reflex_scrape_collector_success"])

	for _, c := range []Collector{failing{}, panicky{}} {
		reg := prometheus.NewRegistry()
		reg.MustRegister(Standalone(c))
		_, err := reg.Gather()
		require.Error(t, err)
	}
}
