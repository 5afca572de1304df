// Command gencorpus writes a synthetic Gunicorn access log (default format
// plus " %(D)s") for benchmarks: the same flags always give the same bytes.
//
//	go run ./internal/accesslog/corpus/cmd/gencorpus -n 2000000 -o /tmp/access.log
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog/corpus"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gencorpus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 2_000_000, "number of lines (2,000,000 is about 357 MB)")
	seed := fs.Int64("seed", 1, "random seed; the same seed gives byte-identical output")
	paths := fs.Int("paths", 5000, "number of distinct request paths")
	out := fs.String("o", "-", "output file, - for stdout")
	mixName := fs.String("mix", "default", "path mix: default (the benchmark corpus) or site (46 route templates with numbered and hashed asset files)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		_, _ = fmt.Fprintln(stderr, "gencorpus:", err)
		return 1
	}
	mix, err := corpus.ParseMix(*mixName)
	if err != nil {
		return fail(err)
	}
	if *out == "-" {
		if err := corpus.GenerateMix(stdout, *n, *seed, *paths, mix); err != nil {
			return fail(err)
		}
		return 0
	}
	f, err := os.Create(*out)
	if err != nil {
		return fail(err)
	}
	if err := corpus.GenerateMix(f, *n, *seed, *paths, mix); err != nil {
		_ = f.Close()
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	return 0
}
