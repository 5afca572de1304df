package lifecycle

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// wallStart is the injected wall clock of fixture replays. It never moves
// while lines are fed, so only the log's own clock commits exits; the final
// Flush, an hour later, commits the rest.
var wallStart = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

type replayed struct {
	counts Counts
	facts  []Fact
	// exits maps a worker pid to its exit cause; inferred deaths (pid 0)
	// are counted in unknownFacts instead.
	exits        map[int]string
	unknownFacts int
}

func replay(t *testing.T, name string) replayed {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "gunicorn", name))
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(Options{Now: func() time.Time { return wallStart }, Location: time.UTC})
	var r replayed
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		r.facts = append(r.facts, tr.ObserveLine(sc.Bytes())...)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	r.facts = append(r.facts, tr.Flush(wallStart.Add(time.Hour))...)
	if n := tr.Pending(); n != 0 {
		t.Errorf("%d exits still pending after the final Flush", n)
	}
	r.counts = tr.Snapshot()
	r.exits = map[int]string{}
	for _, f := range r.facts {
		if f.Kind != FactWorkerExit {
			continue
		}
		if f.PID == 0 {
			r.unknownFacts++
			continue
		}
		if prev, dup := r.exits[f.PID]; dup {
			t.Errorf("pid %d exited twice: %s and %s", f.PID, prev, f.Cause)
		}
		r.exits[f.PID] = f.Cause
	}
	return r
}

func at(s string) time.Time {
	v, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return v
}

// exits builds Counts.Exits from cause/count pairs.
func exits(kv map[ExitCause]uint64) (out [NumExitCauses]uint64) {
	for k, v := range kv {
		out[k] = v
	}
	return out
}

func signals(kv map[Signal]uint64) (out [NumSignals]uint64) {
	for k, v := range kv {
		out[k] = v
	}
	return out
}

func masterSignals(kv map[MasterSignal]uint64) (out [NumMasterSignals]uint64) {
	for k, v := range kv {
		out[k] = v
	}
	return out
}

// checkCounts compares everything, LastTimeout with Equal.
func checkCounts(t *testing.T, got, want Counts) {
	t.Helper()
	if !got.LastTimeout.Equal(want.LastTimeout) {
		t.Errorf("LastTimeout = %v, want %v", got.LastTimeout, want.LastTimeout)
	}
	got.LastTimeout, want.LastTimeout = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("counts\n got %+v\nwant %+v", got, want)
	}
}

func checkExits(t *testing.T, r replayed, want map[int]ExitCause, unknown int) {
	t.Helper()
	if len(r.exits) != len(want) {
		t.Errorf("%d worker pids exited, want %d: %v", len(r.exits), len(want), r.exits)
	}
	for pid, c := range want {
		if r.exits[pid] != c.String() {
			t.Errorf("pid %d exit cause %q, want %q", pid, r.exits[pid], c)
		}
	}
	if r.unknownFacts != unknown {
		t.Errorf("%d inferred deaths, want %d", r.unknownFacts, unknown)
	}
}

// checkInvariants holds for any log that ends with its masters shut down:
// every booted worker exited exactly once, and the signal counts are the
// signal deaths.
func checkInvariants(t *testing.T, c Counts) {
	t.Helper()
	var sum, sigs uint64
	for _, e := range AllExitCauses {
		sum += c.Exits[e]
	}
	for _, s := range AllSignals {
		sigs += c.WorkerSignals[s]
	}
	if sum != c.Boots {
		t.Errorf("%d exits for %d boots", sum, c.Boots)
	}
	if sigs != c.Exits[ExitSIGKILL]+c.Exits[ExitSignal] {
		t.Errorf("%d worker signals for %d sigkill+signal exits", sigs, c.Exits[ExitSIGKILL]+c.Exits[ExitSignal])
	}
	if c.ParseFailures != 0 {
		t.Errorf("%d parse failures", c.ParseFailures)
	}
}

// TestFixture20_1Lifecycle replays the Debian 20.1.0 run of gunicorn.md §1.4
// (--workers 2 --timeout 2).
func TestFixture20_1Lifecycle(t *testing.T) {
	r := replay(t, "20.1-lifecycle/error.log")
	want := Counts{
		// 13 "Booting worker" lines: 20867 20868 (start), 21149 (TTIN),
		// 21151 21150 (HUP), 21154 21156 21157 21158 21159 21160
		// (replacements), 21162 21163 (the USR2 master).
		Boots: 13,
		// WORKER TIMEOUT for 21151 (/sleep?s=10) and 21150 (/spin?s=6).
		Timeouts:    2,
		LastTimeout: at("2026-11-24 17:50:27"),
		// 20865, then 21161 started by USR2.
		MasterStarts: 2,
		Version:      "20.1.0",
		Reloads:      1, // one HUP
		Promotions:   1, // 21161 promoted after 20865 stopped
		// The /error request of 20868.
		RequestErrors: 1,
		Exits: exits(map[ExitCause]uint64{
			ExitScaleDown:  1, // 20867, retired by TTOU
			ExitReload:     2, // 20868 and 21149 retired by HUP, each with a spurious "signal 15"
			ExitTimeout:    2, // 21151 and 21150
			ExitSIGKILL:    1, // 21154: kill -9, "terminated due to signal 9", no timeout before
			ExitTerminated: 2, // 21156 (kill -TERM) and 21157 (kill -ABRT, idle):
			// only "Worker exiting"; 20.1 does not log exit code 1
			ExitSignal:   1, // 21158: kill -SEGV, "signal 11"
			ExitShutdown: 4, // 21159 21160 (TERM to 20865), 21162 21163 (TERM to 21161)
		}),
		WorkerSignals: signals(map[Signal]uint64{SigKILL: 1, SigSEGV: 1}),
		MasterSignals: masterSignals(map[MasterSignal]uint64{
			MasterTTIN: 1, MasterTTOU: 1, MasterHUP: 1, MasterUSR1: 1, MasterWINCH: 1,
			MasterUSR2: 3, // the upgrade, then one refused by each master
			MasterTERM: 2, // old master, then the promoted one
		}),
		Shutdowns: 2,
		// 53 headers: 44 INFO, 6 WARNING (4 signal lines, 2 USR2 refusals),
		// 1 ERROR with a 9-line traceback counted once, 2 CRITICAL.
		Messages: [NumLevels]uint64{0, 44, 6, 1, 2},
	}
	checkCounts(t, r.counts, want)
	checkInvariants(t, r.counts)
	checkExits(t, r, map[int]ExitCause{
		20867: ExitScaleDown, 20868: ExitReload, 21149: ExitReload,
		21151: ExitTimeout, 21150: ExitTimeout, 21154: ExitSIGKILL,
		21156: ExitTerminated, 21157: ExitTerminated, 21158: ExitSignal,
		21159: ExitShutdown, 21160: ExitShutdown, 21162: ExitShutdown, 21163: ExitShutdown,
	}, 0)
}

// TestFixtureV19 replays upstream 19.9.0 driven as v19/transcript.txt says:
// TTIN, TTOU, HUP, a /sleep timeout, then SIGKILL, SIGTERM, SIGABRT,
// SIGSEGV, SIGINT, SIGQUIT to one worker each, WINCH, TERM.
func TestFixtureV19(t *testing.T) {
	r := replay(t, "v19/error.log")
	want := Counts{
		Boots:         12, // 22109 22110 22159 22160 22161 22204 22225 22226 22227 22228 22229 22231
		Timeouts:      1,  // 22160
		LastTimeout:   at("2026-11-24 17:53:23"),
		MasterStarts:  1,
		Version:       "19.9.0",
		Reloads:       1,
		RequestErrors: 1,
		Exits: exits(map[ExitCause]uint64{
			ExitScaleDown: 1, // 22109 (TTOU)
			ExitReload:    2, // 22110 22159 (HUP)
			ExitTimeout:   1, // 22160
			// "worker 22161 sent SIGKILL" and "worker 22226 sent SIGSEGV":
			// 19.9 logs nothing; the boots of 22225 and 22228 arrive
			// while both workers are live, so one death each is inferred.
			ExitUnknown: 2,
			// 22204 SIGTERM, 22225 SIGABRT, 22227 SIGINT, 22228 SIGQUIT:
			// each logs only "Worker exiting".
			ExitTerminated: 4,
			ExitShutdown:   2, // 22229 22231 (TERM)
		}),
		MasterSignals: masterSignals(map[MasterSignal]uint64{
			MasterTTIN: 1, MasterTTOU: 1, MasterHUP: 1, MasterWINCH: 1, MasterTERM: 1,
		}),
		Shutdowns: 1,
		Messages:  [NumLevels]uint64{0, 32, 0, 1, 1},
	}
	checkCounts(t, r.counts, want)
	checkInvariants(t, r.counts)
	checkExits(t, r, map[int]ExitCause{
		22109: ExitScaleDown, 22110: ExitReload, 22159: ExitReload, 22160: ExitTimeout,
		22204: ExitTerminated, 22225: ExitTerminated, 22227: ExitTerminated, 22228: ExitTerminated,
		22229: ExitShutdown, 22231: ExitShutdown,
	}, 2)
}

// TestFixtureV20deb replays Debian 20.1.0 with the same driver
// (v20deb/transcript.txt).
func TestFixtureV20deb(t *testing.T) {
	r := replay(t, "v20deb/error.log")
	want := Counts{
		Boots:         12, // 22298 22299 22349 22418 22419 22461 22481 22498 22519 22520 22540 22541
		Timeouts:      1,  // 22419
		LastTimeout:   at("2026-11-24 17:53:46"),
		MasterStarts:  1,
		Version:       "20.1.0",
		Reloads:       1,
		RequestErrors: 1,
		Exits: exits(map[ExitCause]uint64{
			ExitScaleDown:  1, // 22298 (TTOU)
			ExitReload:     2, // 22299 22349 (HUP)
			ExitTimeout:    1, // 22419
			ExitSIGKILL:    1, // 22418 "signal 9"
			ExitTerminated: 4, // 22461 TERM, 22481 ABRT, 22519 INT, 22520 QUIT
			ExitSignal:     1, // 22498 "signal 11"
			ExitShutdown:   2, // 22540 22541 (TERM)
		}),
		WorkerSignals: signals(map[Signal]uint64{SigKILL: 1, SigSEGV: 1}),
		MasterSignals: masterSignals(map[MasterSignal]uint64{
			MasterTTIN: 1, MasterTTOU: 1, MasterHUP: 1, MasterWINCH: 1, MasterTERM: 1,
		}),
		Shutdowns: 1,
		Messages:  [NumLevels]uint64{0, 32, 2, 1, 1},
	}
	checkCounts(t, r.counts, want)
	checkInvariants(t, r.counts)
	checkExits(t, r, map[int]ExitCause{
		22298: ExitScaleDown, 22299: ExitReload, 22349: ExitReload, 22419: ExitTimeout,
		22418: ExitSIGKILL, 22461: ExitTerminated, 22481: ExitTerminated, 22498: ExitSignal,
		22519: ExitTerminated, 22520: ExitTerminated, 22540: ExitShutdown, 22541: ExitShutdown,
	}, 0)
}

// TestFixtureV21 replays upstream 21.2.0 with the same driver
// (v21/transcript.txt).
func TestFixtureV21(t *testing.T) {
	r := replay(t, "v21/error.log")
	want := Counts{
		Boots:         12, // 21786 21787 21808 21834 21835 21877 21896 21917 21918 21919 21941 21942
		Timeouts:      1,  // 21835
		LastTimeout:   at("2026-11-24 17:52:52"),
		MasterStarts:  1,
		Version:       "21.2.0",
		Reloads:       1,
		RequestErrors: 1,
		Exits: exits(map[ExitCause]uint64{
			ExitScaleDown: 1, // 21786 (TTOU)
			ExitReload:    2, // 21787 21808 (HUP)
			// 21835: WORKER TIMEOUT, Worker exiting, "exited with code 1"
			// and "exited with code 1." -- one exit.
			ExitTimeout: 1,
			ExitSIGKILL: 1, // 21834 "was sent SIGKILL! Perhaps out of memory?", no timeout
			// 21896 kill -ABRT: Worker exiting + both code-1 lines; the
			// non-zero exit code makes it an error from 21.0 on.
			ExitError:      1,
			ExitSignal:     1, // 21917 "was sent SIGSEGV!"
			ExitTerminated: 3, // 21877 TERM, 21918 INT, 21919 QUIT
			ExitShutdown:   2, // 21941 21942 (TERM)
		}),
		WorkerSignals: signals(map[Signal]uint64{SigKILL: 1, SigSEGV: 1}),
		MasterSignals: masterSignals(map[MasterSignal]uint64{
			MasterTTIN: 1, MasterTTOU: 1, MasterHUP: 1, MasterWINCH: 1, MasterTERM: 1,
		}),
		Shutdowns: 1,
		// ERROR: /error, 4 exit-code lines, SIGKILL, SIGSEGV.
		Messages: [NumLevels]uint64{0, 32, 0, 7, 1},
	}
	checkCounts(t, r.counts, want)
	checkInvariants(t, r.counts)
	checkExits(t, r, map[int]ExitCause{
		21786: ExitScaleDown, 21787: ExitReload, 21808: ExitReload, 21835: ExitTimeout,
		21834: ExitSIGKILL, 21877: ExitTerminated, 21896: ExitError, 21917: ExitSignal,
		21918: ExitTerminated, 21919: ExitTerminated, 21941: ExitShutdown, 21942: ExitShutdown,
	}, 0)
}

// TestFixtureV24_0_0 replays upstream 24.0.0 with the same driver
// (v24.0.0/transcript.txt). That master logs "Unhandled signal: cld" for
// every SIGCHLD and never reaps: no death is replaced, so the kills of
// steps 18-20 found no worker left.
func TestFixtureV24_0_0(t *testing.T) {
	r := replay(t, "v24.0.0/error.log")
	want := Counts{
		Boots: 5, // 32068 32069 (start), 32093 (TTIN), 32120 32121 (HUP)
		// 32120 (/sleep) and 32121 (/spin). The WORKER TIMEOUT of 32068,
		// two seconds after its TTOU exit, is the master timing out its
		// unreaped zombie: not counted.
		Timeouts:      2,
		LastTimeout:   at("2026-12-01 19:28:25"),
		MasterStarts:  1,
		Version:       "24.0.0",
		Reloads:       1,
		RequestErrors: 1, // /error; the two aborts' SystemExit are not request errors
		// One "Unhandled signal: cld" per death: 32068, 32069, 32093,
		// 32120, 32121.
		UnreplacedWorkerDeaths: 5,
		Exits: exits(map[ExitCause]uint64{
			ExitScaleDown: 1, // 32068 (TTOU)
			ExitReload:    2, // 32069 32093 (HUP)
			ExitTimeout:   2, // 32120 32121
		}),
		MasterSignals: masterSignals(map[MasterSignal]uint64{
			MasterTTIN: 1, MasterTTOU: 1, MasterHUP: 1, MasterUSR1: 1, MasterTERM: 1,
		}),
		Shutdowns: 1,
		// ERROR: 3 "Error handling request", 5 "Unhandled signal: cld";
		// CRITICAL: 3 WORKER TIMEOUT lines.
		Messages: [NumLevels]uint64{0, 20, 0, 8, 3},
	}
	checkCounts(t, r.counts, want)
	checkInvariants(t, r.counts)
	checkExits(t, r, map[int]ExitCause{
		32068: ExitScaleDown, 32069: ExitReload, 32093: ExitReload, 32120: ExitTimeout, 32121: ExitTimeout,
	}, 0)
	var notReaping []Fact
	for _, f := range r.facts {
		if f.Kind == FactMasterNotReaping {
			notReaping = append(notReaping, f)
		}
	}
	if len(notReaping) != 1 || notReaping[0].PID != 32067 || notReaping[0].Detail != "24.0.0" ||
		!notReaping[0].Time.Equal(at("2026-12-01 19:28:00")) {
		t.Errorf("master_not_reaping facts %+v, want one for 32067 with version 24.0.0", notReaping)
	}
}

// TestFixtureV24 replays upstream 24.1.1 with the same driver
// (v24/transcript.txt): 24.1 reaps again, and writes the SIGSEGV line at
// WARNING.
func TestFixtureV24(t *testing.T) {
	r := replay(t, "v24/error.log")
	want := Counts{
		Boots:         10, // 30056 30057 30184 30230 30231 30242 30414 30416 30433 30453
		Timeouts:      2,  // 30231 (/sleep) 30230 (/spin)
		LastTimeout:   at("2026-12-01 19:20:00"),
		MasterStarts:  1,
		Version:       "24.1.1",
		Reloads:       1,
		RequestErrors: 1,
		Exits: exits(map[ExitCause]uint64{
			ExitScaleDown: 1, // 30056 (TTOU)
			ExitReload:    2, // 30057 30184 (HUP)
			// 30231 30230: WORKER TIMEOUT, SystemExit, Worker exiting;
			// 24.1 logs no exit code for them.
			ExitTimeout:    2,
			ExitSIGKILL:    1, // 30242 "was sent SIGKILL! Perhaps out of memory?", no timeout
			ExitSignal:     1, // 30414 "[WARNING] ... was sent SIGSEGV!"
			ExitTerminated: 1, // 30416 kill -TERM: only "Worker exiting"
			ExitShutdown:   2, // 30433 30453 (TERM)
		}),
		WorkerSignals: signals(map[Signal]uint64{SigKILL: 1, SigSEGV: 1}),
		MasterSignals: masterSignals(map[MasterSignal]uint64{
			MasterTTIN: 1, MasterTTOU: 1, MasterHUP: 1, MasterUSR1: 1, MasterTERM: 1,
		}),
		Shutdowns: 1,
		// WARNING: SIGSEGV; ERROR: 3 "Error handling request", SIGKILL.
		Messages: [NumLevels]uint64{0, 28, 1, 4, 2},
	}
	checkCounts(t, r.counts, want)
	checkInvariants(t, r.counts)
	checkExits(t, r, map[int]ExitCause{
		30056: ExitScaleDown, 30057: ExitReload, 30184: ExitReload, 30231: ExitTimeout, 30230: ExitTimeout,
		30242: ExitSIGKILL, 30414: ExitSignal, 30416: ExitTerminated, 30433: ExitShutdown, 30453: ExitShutdown,
	}, 0)
}

// TestFixtureV25V26 replays upstream 25.3.0 and 26.1.0 with the same driver
// (v25/ and v26/transcript.txt), which ends with control-socket commands:
// "worker add 1" (logs only the boot) and "worker remove 1" (logs only the
// removed worker's "Worker exiting"). Both versions log "Control socket
// listening at" after every fork and the method in "Error handling
// request GET /path".
func TestFixtureV25V26(t *testing.T) {
	tests := []struct {
		name, version string
		lastTimeout   string
		pids          []int // in the order of v25's 30644 ... 31123
	}{
		{"v25/error.log", "25.3.0", "2026-12-01 19:21:10",
			[]int{30644, 30645, 30648, 30650, 30652, 30655, 30662, 30678, 30830, 30981, 31123}},
		{"v26/error.log", "26.1.0", "2026-12-01 19:22:30",
			[]int{31297, 31298, 31300, 31302, 31304, 31313, 31316, 31318, 31320, 31322, 31331}},
	}
	for _, tc := range tests {
		t.Run(tc.version, func(t *testing.T) {
			r := replay(t, tc.name)
			want := Counts{
				// 2 at start, TTIN, 2 after HUP, 5 replacements, worker add.
				Boots:         11,
				Timeouts:      2,
				LastTimeout:   at(tc.lastTimeout),
				MasterStarts:  1, // the 10 "Control socket listening" lines are not starts
				Version:       tc.version,
				Reloads:       1,
				RequestErrors: 1,
				Exits: exits(map[ExitCause]uint64{
					ExitScaleDown: 1, // TTOU
					ExitReload:    2, // HUP
					ExitTimeout:   2, // /sleep and /spin
					ExitSIGKILL:   1, // kill -9, no timeout
					ExitSignal:    1, // kill -SEGV, at WARNING
					// kill -TERM, and "worker remove": the log cannot tell
					// them apart (only "Worker exiting" for both).
					ExitTerminated: 2,
					ExitShutdown:   2, // TERM
					// The "worker add" boot is no inferred death.
				}),
				WorkerSignals: signals(map[Signal]uint64{SigKILL: 1, SigSEGV: 1}),
				MasterSignals: masterSignals(map[MasterSignal]uint64{
					MasterTTIN: 1, MasterTTOU: 1, MasterHUP: 1, MasterUSR1: 1, MasterTERM: 1,
				}),
				Shutdowns: 1,
				Messages:  [NumLevels]uint64{0, 40, 1, 4, 2},
			}
			checkCounts(t, r.counts, want)
			checkInvariants(t, r.counts)
			p := tc.pids
			checkExits(t, r, map[int]ExitCause{
				p[0]: ExitScaleDown, p[1]: ExitReload, p[2]: ExitReload, p[3]: ExitTimeout, p[4]: ExitSIGKILL,
				p[5]: ExitTimeout, p[6]: ExitSignal, p[7]: ExitTerminated, p[8]: ExitTerminated,
				p[9]: ExitShutdown, p[10]: ExitShutdown,
			}, 0)
		})
	}
}

// TestFixtureDebugMaxRequests replays 20.1.0 at debug level with
// --workers 1 --max-requests 3 (gunicorn.md §1.4).
func TestFixtureDebugMaxRequests(t *testing.T) {
	r := replay(t, "20.1-debug-maxrequests/error.log")
	want := Counts{
		Boots:               3, // 23033, 23061 (its replacement), 23065 (TTIN)
		MasterStarts:        1,
		Version:             "20.1.0",
		MaxRequestsRestarts: 1, // 23033 after its third request
		InvalidRequests:     1, // GARBAGE, at DEBUG in 20.1
		Exits: exits(map[ExitCause]uint64{
			ExitMaxRequests: 1, // 23033
			ExitScaleDown:   1, // 23061 (TTOU; "1 workers")
			ExitShutdown:    1, // 23065 (TERM)
		}),
		MasterSignals: masterSignals(map[MasterSignal]uint64{
			MasterTTIN: 1, MasterTTOU: 1, MasterWINCH: 1, MasterUSR1: 1, MasterTERM: 1,
		}),
		Shutdowns: 1,
		// DEBUG: the 86-line configuration dump (once), Arbiter booted,
		// 3 "N workers", 4 "GET /", SIGWINCH ignored, Invalid request.
		Messages: [NumLevels]uint64{11, 16, 0, 0, 0},
	}
	checkCounts(t, r.counts, want)
	checkInvariants(t, r.counts)
	checkExits(t, r, map[int]ExitCause{23033: ExitMaxRequests, 23061: ExitScaleDown, 23065: ExitShutdown}, 0)
}

// TestFixtureStatsdRun replays the 20.1.0 run that fed statsd: TTIN, TTOU
// (with its spurious signal-15 line), a timeout, a kill -9, TERM.
func TestFixtureStatsdRun(t *testing.T) {
	r := replay(t, "20.1-statsd/deb-err.log")
	want := Counts{
		Boots:         5, // 24090 24091 24097 24121 24126
		Timeouts:      1, // 24097
		LastTimeout:   at("2026-11-24 17:55:56"),
		MasterStarts:  1,
		Version:       "20.1.0",
		RequestErrors: 1,
		Exits: exits(map[ExitCause]uint64{
			ExitScaleDown: 1, // 24090: Worker exiting + spurious "signal 15" after TTOU
			ExitTimeout:   1, // 24097
			ExitSIGKILL:   1, // 24091 "signal 9", no timeout
			ExitShutdown:  2, // 24121 24126
		}),
		WorkerSignals: signals(map[Signal]uint64{SigKILL: 1}),
		MasterSignals: masterSignals(map[MasterSignal]uint64{MasterTTIN: 1, MasterTTOU: 1, MasterTERM: 1}),
		Shutdowns:     1,
		Messages:      [NumLevels]uint64{0, 16, 2, 1, 1},
	}
	checkCounts(t, r.counts, want)
	checkInvariants(t, r.counts)
	checkExits(t, r, map[int]ExitCause{24090: ExitScaleDown, 24097: ExitTimeout, 24091: ExitSIGKILL, 24121: ExitShutdown, 24126: ExitShutdown}, 0)
}

// TestFixtureBootFailures replays the import errors and the missing app
// attribute on 20.1.0 (Debian) and 23.0.0.
func TestFixtureBootFailures(t *testing.T) {
	tests := []struct {
		name     string
		version  string
		reason   BootFailureReason
		exits    map[int]ExitCause
		messages [NumLevels]uint64
		raw      uint64
		detail   string // the boot_failure fact's Detail
	}{
		{
			// Exception in worker process (traceback), Worker exiting,
			// Shutting down, Reason: Worker failed to boot.
			name: "deb-nosuchmodule-app.log", version: "20.1.0", reason: BootWorker,
			exits:    map[int]ExitCause{23231: ExitBootFailure},
			messages: [NumLevels]uint64{0, 7, 0, 1, 0},
			detail:   "ModuleNotFoundError: No module named 'nosuchmodule'",
		},
		{
			name: "deb-badimport-app.log", version: "20.1.0", reason: BootWorker,
			exits:    map[int]ExitCause{23239: ExitBootFailure},
			messages: [NumLevels]uint64{0, 7, 0, 1, 0},
			detail:   "RuntimeError: import-time failure",
		},
		{
			// Two workers print "Failed to find attribute" raw. 23247's
			// exit (code 4, not logged by 20.1) halts the master; 23248 is
			// stopped by that halt (its "signal 15" is the halt's SIGTERM).
			name: "deb-app-nosuchattr.log", version: "20.1.0", reason: BootAppLoad,
			exits:    map[int]ExitCause{23247: ExitBootFailure, 23248: ExitShutdown},
			messages: [NumLevels]uint64{0, 9, 1, 0, 0},
			raw:      2,
		},
		{
			// 23.0 adds "exited with code 3".
			name: "23-nosuchmodule-app.log", version: "23.0.0", reason: BootWorker,
			exits:    map[int]ExitCause{23235: ExitBootFailure},
			messages: [NumLevels]uint64{0, 5, 0, 4, 0},
			detail:   "ModuleNotFoundError: No module named 'nosuchmodule'",
		},
		{
			name: "23-badimport-app.log", version: "23.0.0", reason: BootWorker,
			exits:    map[int]ExitCause{23243: ExitBootFailure},
			messages: [NumLevels]uint64{0, 5, 0, 4, 0},
			detail:   "RuntimeError: import-time failure",
		},
		{
			// "exited with code 4".
			name: "23-app-nosuchattr.log", version: "23.0.0", reason: BootAppLoad,
			exits:    map[int]ExitCause{23252: ExitBootFailure},
			messages: [NumLevels]uint64{0, 5, 0, 3, 0},
			raw:      1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := replay(t, "boot-failures/"+tc.name)
			want := Counts{
				Boots:        uint64(len(tc.exits)),
				MasterStarts: 1,
				Version:      tc.version,
				Shutdowns:    1,
				Messages:     tc.messages,
				RawLines:     tc.raw,
			}
			want.BootFailures[tc.reason] = 1
			for _, c := range tc.exits {
				want.Exits[c]++
			}
			checkCounts(t, r.counts, want)
			checkInvariants(t, r.counts)
			checkExits(t, r, tc.exits, 0)
			var n int
			for _, f := range r.facts {
				if f.Kind == FactBootFailure {
					n++
					if f.Cause != tc.reason.String() || f.Detail != tc.detail {
						t.Errorf("boot_failure fact %+v, want cause %s detail %q", f, tc.reason, tc.detail)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d boot_failure facts", n)
			}
		})
	}
}

// TestFixtureStreams replays the stdout/stderr captures of the per-version
// runs: 19.9's one Python warning is an explained raw line.
func TestFixtureStreams(t *testing.T) {
	for name, raw := range map[string]uint64{"v19/stdout.log": 1, "v20deb/stdout.log": 0, "v21/stdout.log": 0} {
		r := replay(t, name)
		if r.counts != (Counts{RawLines: raw}) {
			t.Errorf("%s: %+v", name, r.counts)
		}
	}
}

// TestFixtureFactsClosedSets checks every fact from every fixture uses the
// closed sets.
func TestFixtureFactsClosedSets(t *testing.T) {
	kinds := map[string]bool{}
	for _, k := range AllFactKinds {
		kinds[k] = true
	}
	causes := map[string]bool{}
	for _, c := range AllExitCauses {
		causes[c.String()] = true
	}
	names, err := filepath.Glob(filepath.Join("testdata", "gunicorn", "*", "*.log"))
	if err != nil || len(names) != 19 {
		t.Fatalf("fixtures: %v %v", names, err)
	}
	for _, path := range names {
		rel, _ := filepath.Rel(filepath.Join("testdata", "gunicorn"), path)
		r := replay(t, filepath.ToSlash(rel))
		for _, f := range r.facts {
			if !kinds[f.Kind] {
				t.Errorf("%s: fact kind %q", rel, f.Kind)
			}
			if f.Kind == FactWorkerExit && !causes[f.Cause] {
				t.Errorf("%s: exit cause %q", rel, f.Cause)
			}
			if f.Time.IsZero() || f.Time.Equal(wallStart) {
				t.Errorf("%s: fact %+v not stamped with its log time", rel, f)
			}
		}
	}
}
