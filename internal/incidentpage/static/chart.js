// Draws the incident page's chart from the JSON in #chart-data with uPlot.
// Everything else on the page is server-rendered HTML; this script only
// adds the canvases. When it has drawn, #chart gets data-drawn="N" (N
// panels) so tests and people can tell a drawn chart from an empty one.
(function () {
  "use strict";
  var el = document.getElementById("chart");
  var src = document.getElementById("chart-data");
  if (!el || !src || typeof uPlot === "undefined") { return; }
  var d = JSON.parse(src.textContent);
  if (!d.t || d.t.length === 0) { return; }

  var colors = { deploy: "#8250df", decision: "#d4730b", band: "rgba(207,34,46,0.08)" };

  // Vertical lines for deploys and decisions, and the incident as a band.
  function annotate(u, labels) {
    var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
    ctx.save();
    var x0 = u.valToPos(d.opened, "x", true);
    var x1 = u.valToPos(d.closed || d.to, "x", true);
    ctx.fillStyle = colors.band;
    ctx.fillRect(Math.max(x0, u.bbox.left), top, Math.max(0, Math.min(x1, u.bbox.left + u.bbox.width) - Math.max(x0, u.bbox.left)), h);
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.font = (11 * devicePixelRatio) + "px system-ui, sans-serif";
    (d.markers || []).forEach(function (m) {
      var x = u.valToPos(m.t, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) { return; }
      ctx.strokeStyle = colors[m.kind] || "#57606a";
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
      if (labels) {
        ctx.fillStyle = ctx.strokeStyle;
        ctx.fillText(m.label, x + 4 * devicePixelRatio, top + 12 * devicePixelRatio);
      }
    });
    ctx.restore();
  }

  var width = Math.max(320, el.clientWidth - 10);
  var sync = uPlot.sync("incident");
  var panels = [];
  function panel(title, series, data, axes, scales, labels) {
    var h = document.createElement("h3");
    h.textContent = title;
    el.appendChild(h);
    var div = document.createElement("div");
    el.appendChild(div);
    var opts = {
      width: width, height: 180,
      cursor: { sync: { key: sync.key } },
      scales: Object.assign({ x: { time: true, min: d.from, max: Math.max(d.to, d.from + 10) } }, scales || {}),
      series: [{}].concat(series),
      axes: [{}].concat(axes),
      hooks: { draw: [function (u) { annotate(u, labels); }] }
    };
    panels.push(new uPlot(opts, [d.t].concat(data), div));
  }
  var s = d.series;
  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 12] }) : undefined;
  // Every panel has an axis on each side, so their time axes line up.
  function zeroUp(u, lo, hi) { return [0, Math.max(1, hi)]; }
  function right(scale, label) { return { scale: scale, side: 1, label: label, size: 55, grid: { show: false } }; }
  var line = { show: false };
  panel("Workers and timeouts", [
    { label: "busy workers", stroke: "#0969da", width: 2, points: line },
    { label: "workers", stroke: "#57606a", dash: [4, 3], points: line },
    { label: "WORKER TIMEOUTs", stroke: "#cf222e", fill: "rgba(207,34,46,0.5)", paths: bars, points: line, scale: "timeouts" }
  ], [s.busy, s.workers, s.timeouts], [{ label: "workers", size: 55 }, right("timeouts", "timeouts")],
  { y: { range: zeroUp }, timeouts: { range: zeroUp } }, true);
  panel("Seconds", [
    { label: "heartbeat age (max)", stroke: "#bf3989", width: 2, points: line },
    { label: "latency (mean)", stroke: "#1a7f37", width: 2, points: line },
    { label: "--timeout", stroke: "#cf222e", dash: [8, 4], points: line },
    { label: "longest database query", stroke: "#9a6700", points: line, scale: "query" }
  ], [s.heartbeat_age, s.latency, s.timeout, s.db_longest_active], [{ label: "seconds", size: 55 }, right("query", "query s")],
  { y: { range: zeroUp }, query: { range: zeroUp } }, false);
  if (d.has_db) {
    panel("Database", [
      { label: "active sessions", stroke: "#0969da", points: line },
      { label: "blocked", stroke: "#cf222e", width: 2, points: line },
      { label: "idle in transaction", stroke: "#9a6700", points: line },
      { label: "PgBouncer clients waiting", stroke: "#8250df", width: 2, points: line },
      { label: "saturation %", stroke: "#57606a", dash: [4, 3], points: line, scale: "pct" }
    ], [s.db_active, s.db_blocked, s.db_idle_in_transaction, s.db_pool_waiting, s.db_saturation],
    [{ label: "sessions", size: 55 }, right("pct", "%")],
    { y: { range: zeroUp }, pct: { range: [0, 100] } }, false);
  }
  // Kept for people poking at the page from the console, and for the
  // browser test, which checks the markers were drawn where they belong.
  window.incidentCharts = panels;
  el.setAttribute("data-drawn", String(panels.length));
})();
