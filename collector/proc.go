package collector

import (
	"cmp"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/discovery"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/workerstate"
)

// Proc exports the live state of each app's master and workers, sampled
// from /proc in the background (no pid in any label).
type Proc struct {
	apps AppSource

	up, workers, byActivity, heartbeatMax, pastTimeout, timeout  *prometheus.Desc
	rssSum, rssMax, cpuSum, cpuMax, masterStart, upgrading       *prometheus.Desc
	stuckNow, stuckEpisodes, permDenied, unreadable, oomVerdicts *prometheus.Desc
	timeoutSrc                                                   *prometheus.Desc
}

// NewProc returns the /proc collector.
func NewProc(apps AppSource) *Proc {
	const (
		src      = " Sampled from /proc every few seconds."
		atScrape = " Read at scrape time (one stat of each sampled worker's heartbeat file)."
	)
	return &Proc{
		apps:         apps,
		up:           newDesc(reflexNS, "proc", "up", "1 if the app's master was found and its workers sampled from /proc at the last sample, 0 otherwise (master unknown, gone, or not readable).", "app"),
		workers:      newDesc(gunicornNS, "", "workers", "Workers of the app's master right now."+src, "app"),
		byActivity:   newDesc(gunicornNS, "", "workers_by_activity", "Workers by what they do: busy (inside a request), idle (waiting on the listener), booting (heartbeat never updated: still importing the app), unknown (not a sync worker, or /proc not readable). The four add up to gunicorn_workers."+src, "app", "activity"),
		heartbeatMax: newDesc(gunicornNS, "worker", "heartbeat_age_max_seconds", "Oldest worker heartbeat: now minus the ctime of its wgunicorn-* file. The master kills a worker whose age passes --timeout: the earliest warning of a WORKER TIMEOUT."+atScrape, "app"),
		pastTimeout:  newDesc(gunicornNS, "", "workers_past_timeout_fraction", "Busy workers whose heartbeat age passed this fraction of --timeout (0.5 and 0.8)."+atScrape, "app", "fraction"),
		timeout:      newDesc(gunicornNS, "", "timeout_seconds", "The app's --timeout as read from the master's arguments or config (30 when unknown).", "app"),
		timeoutSrc:   newDesc(gunicornNS, "timeout", "source_info", "Always 1: where gunicorn_timeout_seconds came from. source is argv (the master's command line), env (GUNICORN_CMD_ARGS), config (its config file), unit (its systemd unit's ExecStart= or Environment=), control_socket (Gunicorn 25.1+'s show config), debug_log (the Current configuration dump at --log-level debug), configured (apps[].timeout) or assumed (not found: Gunicorn's default 30).", "app", "source"),
		rssSum:       newDesc(gunicornNS, "workers", "resident_memory_bytes", "Resident memory of all workers together."+src, "app"),
		rssMax:       newDesc(gunicornNS, "worker", "max_resident_memory_bytes", "Resident memory of the largest worker."+src, "app"),
		cpuSum:       newDesc(gunicornNS, "workers", "cpu_seconds", "CPU time of the current workers together (a gauge: it drops when workers are replaced)."+src, "app"),
		cpuMax:       newDesc(gunicornNS, "worker", "max_cpu_seconds", "CPU time of the busiest current worker."+src, "app"),
		masterStart:  newDesc(gunicornNS, "master", "start_time_seconds", "Start time of the app's master, as a Unix timestamp.", "app"),
		upgrading:    newDesc(gunicornNS, "master", "upgrading", "1 while a USR2 upgrade is in progress (a new master runs under the old one).", "app"),
		stuckNow:     newDesc(gunicornNS, "workers", "stuck", "Workers stuck right now (heartbeat past half the timeout and not idle), by what they wait on: socket_read, cpu, futex, sleep, disk, other."+src, "app", "kind"),
		stuckEpisodes: newDesc(gunicornNS, "worker", "stuck_episodes_total",
			"Stuck-worker episodes seen, by kind at first sight; each is a timeline event with the evidence (peer address, local port, wait channel).", "app", "kind"),
		permDenied:  newDesc(reflexNS, "proc", "permission_denied", "1 if /proc of the app's workers could not be fully read: run as root, as the Gunicorn user, or with CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE.", "app"),
		unreadable:  newDesc(reflexNS, "proc", "unreadable_workers", "Workers whose /proc entries could not be read at the last sample.", "app"),
		oomVerdicts: newDesc(gunicornNS, "worker", "oom_kills_total", "Worker deaths by SIGKILL without a timeout, by verdict: confirmed (the kernel log or the cgroup's oom_kill counter says so) or suspected (no such evidence).", "app", "verdict"),
	}
}

// Update implements Collector.
func (c *Proc) Update(ch chan<- prometheus.Metric) error {
	e := &emitter{ch: ch}
	for _, s := range c.apps.Snapshot() {
		app, p := s.App, s.Proc
		up := 0.0
		if p.Sampled {
			up = 1
		}
		e.gauge(c.up, up, app)
		e.counter(c.oomVerdicts, p.OOMConfirmed, app, "confirmed")
		e.counter(c.oomVerdicts, p.OOMSuspected, app, "suspected")
		if !p.Known {
			continue
		}
		st := p.State
		for _, k := range workerstate.StuckKinds() {
			e.counter(c.stuckEpisodes, st.StuckEpisodesTotal[k], app, k.String())
		}
		if !p.Sampled {
			continue
		}
		// Heartbeat ages are read now, not at the last sample: with a short
		// --timeout the sample interval would hide the warning before the
		// kill.
		st = st.AtScrape()
		e.gauge(c.workers, float64(st.Workers), app)
		e.gauge(c.byActivity, float64(st.Busy), app, "busy")
		e.gauge(c.byActivity, float64(st.Idle), app, "idle")
		e.gauge(c.byActivity, float64(st.Booting), app, "booting")
		e.gauge(c.byActivity, float64(st.UnknownActivity), app, "unknown")
		e.gauge(c.heartbeatMax, st.MaxHeartbeatAge.Seconds(), app)
		e.gauge(c.pastTimeout, float64(st.PastHalfTimeout), app, "0.5")
		e.gauge(c.pastTimeout, float64(st.Past80Timeout), app, "0.8")
		e.gauge(c.timeout, p.Timeout.Seconds(), app)
		e.gauge(c.timeoutSrc, 1, app, cmp.Or(p.TimeoutSource, discovery.FromAssumed))
		e.gauge(c.rssSum, float64(st.RSSBytesSum), app)
		e.gauge(c.rssMax, float64(st.RSSBytesMax), app)
		e.gauge(c.cpuSum, st.CPUSecondsSum, app)
		e.gauge(c.cpuMax, st.CPUSecondsMax, app)
		if !st.MasterStartTime.IsZero() {
			e.gauge(c.masterStart, float64(st.MasterStartTime.Unix()), app)
		}
		e.gauge(c.upgrading, boolFloat(st.Upgrading), app)
		for _, k := range workerstate.StuckKinds() {
			e.gauge(c.stuckNow, float64(st.StuckNow[k]), app, k.String())
		}
		e.gauge(c.permDenied, boolFloat(st.PermissionDenied), app)
		e.gauge(c.unreadable, float64(st.UnreadableWorkers), app)
	}
	return e.err
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
