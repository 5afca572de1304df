// Command tiny is what this package's own tests build in place of
// gunicorn-reflex: what they check is where the binary lives and that it
// is removed, not what it does.
package main

func main() {}
