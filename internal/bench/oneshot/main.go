// Command oneshot measures gunicorn-reflex's access-log ingest the way
// `make bench` reports it: it runs the real binary in one-shot mode over a
// corpus file several times and prints the CPU time (user+system) and peak
// RSS of each run, read from the kernel's rusage of the child, with the
// min/median/max. It uses rusage rather than GNU time(1), which a fresh
// machine may not have.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"syscall"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type result struct {
	cpu, wall time.Duration
	rssKiB    int64
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oneshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "./gunicorn-reflex", "the gunicorn-reflex binary")
	corpus := fs.String("corpus", "", "access log to read")
	format := fs.String("format", `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s`, "its access_log_format")
	routes := fs.Bool("routes", true, "per-route latency on")
	runs := fs.Int("runs", 5, "number of runs")
	if err := fs.Parse(args); err != nil || *corpus == "" || *runs < 1 {
		fmt.Fprintln(stderr, "usage: oneshot -corpus FILE [-bin BIN] [-runs N] [-format F] [-routes=false]")
		return 2
	}
	var rs []result
	for i := 0; i < *runs; i++ {
		a := []string{"--oneshot.access-log=" + *corpus, "--oneshot.access-log-format=" + *format}
		if *routes {
			a = append(a, "--oneshot.routes")
		}
		cmd := exec.Command(*bin, a...)
		cmd.Stdout = io.Discard
		cmd.Stderr = stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(stderr, "oneshot: run %d: %v\n", i+1, err)
			return 1
		}
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			fmt.Fprintln(stderr, "oneshot: no rusage on this platform")
			return 1
		}
		r := result{
			cpu:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
			wall:   time.Since(start),
			rssKiB: ru.Maxrss, // KiB on Linux
		}
		rs = append(rs, r)
		fmt.Fprintf(stdout, "run %d: cpu %.3f s  wall %.3f s  max RSS %.1f MiB\n", i+1, r.cpu.Seconds(), r.wall.Seconds(), float64(r.rssKiB)/1024)
	}
	cpu := make([]float64, len(rs))
	rss := make([]float64, len(rs))
	for i, r := range rs {
		cpu[i], rss[i] = r.cpu.Seconds(), float64(r.rssKiB)/1024
	}
	sort.Float64s(cpu)
	sort.Float64s(rss)
	fmt.Fprintf(stdout, "cpu s:       min %.3f  median %.3f  max %.3f  (%d runs)\n", cpu[0], cpu[len(cpu)/2], cpu[len(cpu)-1], len(cpu))
	fmt.Fprintf(stdout, "max RSS MiB: min %.1f  median %.1f  max %.1f\n", rss[0], rss[len(rss)/2], rss[len(rss)-1])
	return 0
}
