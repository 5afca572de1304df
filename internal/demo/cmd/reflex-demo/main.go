// Command reflex-demo is `make demo`: it starts the whole remediation loop
// on loopback (Gunicorn, PostgreSQL, gunicorn-reflex with the receiver,
// Prometheus, Alertmanager), tells what happens as it happens, and stops
// every process it started by pid, also on Ctrl-C. It is a development
// tool, not part of the release binary.
//
// After a Ctrl-C it takes a few seconds to stop everything ("stopping
// every process by pid..."). A second Ctrl-C meanwhile is ignored: the
// signals stay caught until the stop is done, so that it cannot be cut
// short and leave processes behind. Wait for it to exit.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/demo"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := demo.NewSession(os.Stderr)
	var err error
	failures := s.Run(func(tb testing.TB) { err = demo.Run(ctx, tb, os.Stdout, demo.Options{}) })
	fmt.Println("\nstopping every process by pid...")
	failures = append(failures, s.Close()...)
	switch {
	case len(failures) > 0:
		fmt.Fprintln(os.Stderr, "reflex-demo failed:")
		for _, f := range failures {
			fmt.Fprintln(os.Stderr, " ", f)
		}
		return 1
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "reflex-demo: interrupted; everything it started is stopped")
		return 130
	case err != nil:
		fmt.Fprintln(os.Stderr, "reflex-demo:", err)
		return 1
	}
	return 0
}
