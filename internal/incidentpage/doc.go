// Package incidentpage owns the HTML pages a person on call reads first
// (/incidents, the list, and /incidents/{id}, one incident) and the bounded
// per-app series of numbers their chart draws.
//
// The pages are server-side html/template: the verdict in one sentence,
// what to do, the evidence as a list and the remediation decisions as a
// table are plain HTML and read the same with JavaScript off. Only the
// chart needs JavaScript: uPlot (MIT, vendored in static/ with its licence
// and served from the binary, so the page loads nothing from the network)
// draws timeouts, busy workers, heartbeat age, latency and the database's
// numbers around the incident, with deploy markers and remediation
// decisions as vertical lines. The chart's numbers are also in a table
// under the chart, for readers without JavaScript.
//
// Series keeps those numbers: a Feeder samples the collectors' state (the
// apps' lifecycle counts, /proc worker state and access-log latency, and
// the PostgreSQL and PgBouncer targets) every interval into one ring per
// app, so memory is bounded by MaxApps × MaxPoints whatever the host does.
package incidentpage
