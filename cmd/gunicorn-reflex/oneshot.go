package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/gunicorn-reflex/gunicorn-reflex/collector"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accessstats"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/config"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/follower"
)

// oneShotAccessLog reads an access log from its first byte to its end
// through the same follower, parser and statistics the daemon uses, and
// writes the resulting metrics to stdout. It is what `make bench` measures,
// and a way to look at an old log's latency without Prometheus.
func oneShotAccessLog(ctx context.Context, f *flags, stdout, stderr io.Writer) int {
	parser, err := accesslog.Compile(f.oneShotFormat)
	if err != nil {
		fmt.Fprintf(stderr, "%s: --oneshot.access-log-format: %v\n", programName, err)
		return 2
	}
	stats := accessstats.New(f.oneShotApp, parser, accessstats.Options{Routes: f.oneShotRoutes, MaxRoutes: config.DefaultMaxRoutes})
	fol, err := follower.New(follower.Options{Path: f.oneShotAccessLog, OneShot: true, MaxLineBytes: config.DefaultMaxLineBytes}, stats.ObserveLine)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 2
	}
	if f.oneShotCPUProfile != "" {
		pf, err := os.Create(f.oneShotCPUProfile)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", programName, err)
			return 2
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", programName, err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	if err := fol.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "%s: reading %s: %v\n", programName, f.oneShotAccessLog, err)
		return 1
	}
	st := fol.Stats()
	if st.LastError != "" {
		fmt.Fprintf(stderr, "%s: reading %s: %s\n", programName, f.oneShotAccessLog, st.LastError)
		return 1
	}
	elapsed := time.Since(start)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.Standalone(collector.NewAccess(collector.StaticApps{{App: f.oneShotApp, Access: stats}})))
	mfs, err := reg.Gather()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 1
	}
	enc := expfmt.NewEncoder(stdout, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return 1
		}
	}
	fmt.Fprintf(stderr, "%s: %d lines, %d bytes in %v (%.0f lines/s)\n", programName, st.Lines, st.Bytes,
		elapsed.Round(time.Millisecond), float64(st.Lines)/elapsed.Seconds())
	return 0
}
