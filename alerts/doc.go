// Package alerts holds gunicorn-reflex's shipped Prometheus rule files
// (the *.yml files next to this one: recording rules and alerts grouped by
// concern) and their tests: promtool's own checks and unit tests
// (tests/*.yml), the conventions every rule follows, the example
// Prometheus and Alertmanager configurations under deploy/, the Grafana
// dashboard under grafana/ (generated, linted), and a live test that loads
// the rules and the dashboard's queries into a real Prometheus scraping a
// real exporter in front of a real Gunicorn.
//
// The package has no Go API: the rule files are meant to be copied into a
// Prometheus as they are.
package alerts
