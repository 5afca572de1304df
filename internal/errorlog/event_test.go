package errorlog

import (
	"testing"
)

// want is an Event with Arg as a string, for comparison.
type want struct {
	kind  EventKind
	pid   int
	num   int
	arg   string
	flags Flags
}

func TestClassify(t *testing.T) {
	// Each row: the versions that write the message, the exact format
	// string from gunicorn.md §1.2 (arbiter.py, workers/*.py, sock.py,
	// instrument/statsd.py), a rendered message, and the event.
	tests := []struct {
		versions string
		format   string
		msg      string
		want     want
	}{
		// arbiter.py, master side.
		{"19.9-23.0", `'Current configuration:\n{0}'`, "Current configuration:", want{kind: EventConfigDump}},
		{"19.9-23.0", `"Starting gunicorn %s"`, "Starting gunicorn 19.9.0", want{kind: EventMasterStarting, arg: "19.9.0"}},
		{"19.9-23.0", `"Starting gunicorn %s"`, "Starting gunicorn 23.0.0", want{kind: EventMasterStarting, arg: "23.0.0"}},
		{"19.9-23.0", `"Arbiter booted"`, "Arbiter booted", want{kind: EventArbiterBooted}},
		{"19.9-23.0", `"Listening at: %s (%s)"`, "Listening at: http://127.0.0.1:8765 (20865)", want{kind: EventListening, pid: 20865, arg: "http://127.0.0.1:8765"}},
		{"19.9-23.0", `"Listening at: %s (%s)"`, "Listening at: http://127.0.0.1:8765,unix:/run/g.sock (20865)", want{kind: EventListening, pid: 20865, arg: "http://127.0.0.1:8765,unix:/run/g.sock"}},
		{"19.9-23.0", `"Listening at: %s" (HUP rebind)`, "Listening at: http://127.0.0.1:8766", want{kind: EventListening, arg: "http://127.0.0.1:8766"}},
		{"19.9-23.0", `"Using worker: %s"`, "Using worker: sync", want{kind: EventUsingWorker, arg: "sync"}},
		{"19.9-23.0", `"Using worker: %s"`, "Using worker: uvicorn.workers.UvicornWorker", want{kind: EventUsingWorker, arg: "uvicorn.workers.UvicornWorker"}},
		{"19.9-23.0", `"Ignoring unknown signal: %s"`, "Ignoring unknown signal: 10", want{kind: EventIgnoringUnknownSignal, arg: "10"}},
		// 24.0.0 writes it for every SIGCHLD (Python names 17 SIGCLD there).
		{"19.9-24.0.0", `"Unhandled signal: %s"`, "Unhandled signal: cld", want{kind: EventUnhandledSignal, arg: "cld", num: 17}},
		{"25.1-26.1", `"Control socket listening at %s"`, "Control socket listening at /root/.gunicorn/gunicorn.ctl", want{kind: EventControlSocket, arg: "/root/.gunicorn/gunicorn.ctl"}},
		{"19.9-23.0", `"Handling signal: %s"`, "Handling signal: hup", want{kind: EventHandlingSignal, arg: "hup", num: 1}},
		{"19.9-23.0", `"Handling signal: %s"`, "Handling signal: ttin", want{kind: EventHandlingSignal, arg: "ttin", num: 21}},
		{"19.9-23.0", `"Handling signal: %s"`, "Handling signal: ttou", want{kind: EventHandlingSignal, arg: "ttou", num: 22}},
		{"19.9-23.0", `"Handling signal: %s"`, "Handling signal: usr1", want{kind: EventHandlingSignal, arg: "usr1", num: 10}},
		{"19.9-23.0", `"Handling signal: %s"`, "Handling signal: usr2", want{kind: EventHandlingSignal, arg: "usr2", num: 12}},
		{"19.9-23.0", `"Handling signal: %s"`, "Handling signal: winch", want{kind: EventHandlingSignal, arg: "winch", num: 28}},
		{"19.9-23.0", `"Handling signal: %s"`, "Handling signal: term", want{kind: EventHandlingSignal, arg: "term", num: 15}},
		{"19.9-23.0", `"Handling signal: %s"`, "Handling signal: int", want{kind: EventHandlingSignal, arg: "int", num: 2}},
		{"19.9-23.0", `"Handling signal: %s"`, "Handling signal: quit", want{kind: EventHandlingSignal, arg: "quit", num: 3}},
		{"19.9-23.0", `"Unhandled exception in main loop"`, "Unhandled exception in main loop", want{kind: EventMainLoopException}},
		{"19.9-23.0", `"Hang up: %s"`, "Hang up: Master", want{kind: EventHangUp, arg: "Master"}},
		{"19.9-23.0", `"Hang up: %s"`, "Hang up: Master.2", want{kind: EventHangUp, arg: "Master.2"}},
		{"19.9-23.0", `"graceful stop of workers"`, "graceful stop of workers", want{kind: EventGracefulStop}},
		{"19.9-23.0", `"SIGWINCH ignored. Not daemonized"`, "SIGWINCH ignored. Not daemonized", want{kind: EventWinchIgnored}},
		{"19.9-23.0", `"Master has been promoted."`, "Master has been promoted.", want{kind: EventMasterPromoted}},
		{"19.9-23.0", `"Shutting down: %s"`, "Shutting down: Master", want{kind: EventShuttingDown, arg: "Master"}},
		{"19.9-23.0", `"Reason: %s"`, "Reason: Worker failed to boot.", want{kind: EventReason, arg: "Worker failed to boot.", num: ExitWorkerBootError}},
		{"19.9-23.0", `"Reason: %s"`, "Reason: App failed to load.", want{kind: EventReason, arg: "App failed to load.", num: ExitAppLoadError}},
		{"19.9-23.0", `"Reason: %s" (other text)`, "Reason: something else", want{kind: EventReason, arg: "something else"}},
		{"19.9-23.0", `"USR2 signal ignored. Child exists."`, "USR2 signal ignored. Child exists.", want{kind: EventUSR2Ignored, arg: "Child"}},
		{"19.9-23.0", `"USR2 signal ignored. Parent exists."`, "USR2 signal ignored. Parent exists.", want{kind: EventUSR2Ignored, arg: "Parent"}},
		{"19.9-23.0", `"WORKER TIMEOUT (pid:%s)"`, "WORKER TIMEOUT (pid:21151)", want{kind: EventWorkerTimeout, pid: 21151}},
		{"20.1", `"Worker with pid %s was terminated due to signal %s"`, "Worker with pid 21154 was terminated due to signal 9", want{kind: EventWorkerSignaled, pid: 21154, num: 9}},
		{"20.1", `"Worker with pid %s was terminated due to signal %s"`, "Worker with pid 20868 was terminated due to signal 15", want{kind: EventWorkerSignaled, pid: 20868, num: 15}},
		{"20.1", `"Worker with pid %s was terminated due to signal %s"`, "Worker with pid 21158 was terminated due to signal 11", want{kind: EventWorkerSignaled, pid: 21158, num: 11}},
		{"20.1", `"Worker with pid %s was terminated due to signal %s"`, "Worker with pid 25332 was terminated due to signal 1", want{kind: EventWorkerSignaled, pid: 25332, num: 1}},
		{"21.0-23.0", `'Worker (pid:%s) exited with code %s'`, "Worker (pid:21835) exited with code 1", want{kind: EventWorkerExitCode, pid: 21835, num: 1}},
		{"21.0-23.0", `"Worker (pid:%s) exited with code %s."`, "Worker (pid:21835) exited with code 1.", want{kind: EventWorkerExitCode, pid: 21835, num: 1, flags: FlagFullStop}},
		{"21.0-23.0", `'Worker (pid:%s) exited with code %s'`, "Worker (pid:23235) exited with code 3", want{kind: EventWorkerExitCode, pid: 23235, num: 3}},
		{"21.0-23.0", `'Worker (pid:%s) exited with code %s'`, "Worker (pid:23252) exited with code 4", want{kind: EventWorkerExitCode, pid: 23252, num: 4}},
		{"21.0-23.0", `"Worker (pid:{}) was sent {}!" + " Perhaps out of memory?"`, "Worker (pid:21834) was sent SIGKILL! Perhaps out of memory?", want{kind: EventWorkerSignaled, pid: 21834, num: 9, arg: "SIGKILL", flags: FlagNamedSignal | FlagOOMHint}},
		{"21.0-23.0", `"Worker (pid:{}) was sent {}!"`, "Worker (pid:21917) was sent SIGSEGV!", want{kind: EventWorkerSignaled, pid: 21917, num: 11, arg: "SIGSEGV", flags: FlagNamedSignal}},
		{"21.0-23.0", `"Worker (pid:{}) was sent {}!"`, "Worker (pid:21693) was sent SIGTERM!", want{kind: EventWorkerSignaled, pid: 21693, num: 15, arg: "SIGTERM", flags: FlagNamedSignal}},
		{"21.0-23.0", `"Worker (pid:{}) was sent {}!"`, "Worker (pid:5) was sent SIGHUP!", want{kind: EventWorkerSignaled, pid: 5, num: 1, arg: "SIGHUP", flags: FlagNamedSignal}},
		{"21.0-23.0", `"Worker (pid:{}) was sent {}!" with "code <status>"`, "Worker (pid:5) was sent code 134!", want{kind: EventWorkerSignaled, pid: 5, num: 6, arg: "code 134", flags: FlagNamedSignal | FlagCoreDump}},
		{"19.9-23.0", `"{0} workers"`, "2 workers", want{kind: EventWorkersCount, num: 2}},
		{"19.9-23.0", `"{0} workers"`, "17 workers", want{kind: EventWorkersCount, num: 17}},

		// arbiter.py, worker side.
		{"19.9-23.0", `"Booting worker with pid: %s"`, "Booting worker with pid: 20867", want{kind: EventWorkerBoot, pid: 20867}},
		{"19.9-23.0", `"Exception while loading the application"`, "Exception while loading the application", want{kind: EventAppLoadException}},
		{"19.9-23.0", `"Exception in worker process"`, "Exception in worker process", want{kind: EventExceptionInWorker}},
		{"19.9-23.0", `"Worker exiting (pid: %s)"`, "Worker exiting (pid: 20867)", want{kind: EventWorkerExiting, pid: 20867}},
		{"19.9-23.0", `"Exception during worker exit:\n%s"`, "Exception during worker exit:", want{kind: EventWorkerExitException}},

		// workers/*.py, sock.py, instrument/statsd.py.
		{"19.9-23.0", `"Autorestarting worker after current request."`, "Autorestarting worker after current request.", want{kind: EventAutorestarting}},
		{"19.9-23.0", `"Parent changed, shutting down: %s"`, "Parent changed, shutting down: <Worker 123>", want{kind: EventParentChanged, arg: "<Worker 123>"}},
		{"19.9-23.0", `"Error handling request %s"`, "Error handling request /error", want{kind: EventErrorHandlingRequest, arg: "/error"}},
		{"22.0-23.0", `"Error handling request %s"`, "Error handling request /sleep?s=10", want{kind: EventErrorHandlingRequest, arg: "/sleep?s=10"}},
		{"25.3-26.1", `"Error handling request %s %s"`, "Error handling request GET /sleep?s=10", want{kind: EventErrorHandlingRequest, arg: "/sleep?s=10", flags: FlagMethod}},
		{"25.3-26.1", `"Error handling request %s %s"`, "Error handling request OPTIONS *", want{kind: EventErrorHandlingRequest, arg: "*", flags: FlagMethod}},
		{"22.0-23.0", `"Error handling request (no URI read)"`, "Error handling request (no URI read)", want{kind: EventErrorHandlingRequest, flags: FlagNoURI}},
		{"19.9-23.0", `"Error handling request"`, "Error handling request", want{kind: EventErrorHandlingRequest}},
		{"19.9/20.1 DEBUG, 21.2+ WARNING", `"Invalid request from ip={ip}: {error}"`, "Invalid request from ip=127.0.0.1: Invalid HTTP request line: 'GARBAGE'", want{kind: EventInvalidRequest, arg: "127.0.0.1"}},
		{"19.9-23.0", `"Invalid request from ip={ip}: {error}"`, "Invalid request from ip=::1: Invalid HTTP request line: ''", want{kind: EventInvalidRequest, arg: "::1"}},
		{"19.9-23.0", `"Exception in post_request hook"`, "Exception in post_request hook", want{kind: EventPostRequestException}},
		{"19.9-23.0", `"Socket error processing request."`, "Socket error processing request.", want{kind: EventSocketError}},
		{"19.9-23.0", `"Ignored premature client disconnection. %s"`, "Ignored premature client disconnection. No more data after: b''", want{kind: EventClientDisconnect}},
		{"19.9-23.0", `"Closing connection. %s"`, "Closing connection. [Errno 104] Connection reset by peer", want{kind: EventClientDisconnect}},
		{"19.9-23.0", `"Ignoring EPIPE"`, "Ignoring EPIPE", want{kind: EventClientDisconnect}},
		{"19.9-23.0", `"Ignoring connection reset"`, "Ignoring connection reset", want{kind: EventClientDisconnect}},
		{"19.9-23.0", `"ssl connection closed"`, "ssl connection closed", want{kind: EventClientDisconnect}},
		{"19.9-23.0", `"Worker reloading: %s modified"`, "Worker reloading: /srv/app/app.py modified", want{kind: EventWorkerReloading, arg: "/srv/app/app.py"}},
		{"19.9-23.0", `"worker: SIGWINCH ignored."`, "worker: SIGWINCH ignored.", want{kind: EventWorkerWinchIgnored}},
		{"19.9-23.0", `"Worker graceful timeout (pid:%s)"`, "Worker graceful timeout (pid:4242)", want{kind: EventWorkerGracefulTimeout, pid: 4242}},
		{"19.9-23.0", `"No keepalived connections can be handled. Check the number of worker connections and threads."`, "No keepalived connections can be handled. Check the number of worker connections and threads.", want{kind: EventNoKeepalive}},
		{"19.9-23.0", `"%s %s" (pre_request)`, "GET /", want{kind: EventRequestDebug}},
		{"19.9-23.0", `"%s %s" (pre_request)`, "OPTIONS *", want{kind: EventRequestDebug}},
		{"19.9-23.0", `"%s %s" (pre_request)`, "GET http://example.com/x", want{kind: EventRequestDebug}},
		{"19.9-23.0", `"Connection in use: %s"`, "Connection in use: ('127.0.0.1', 8000)", want{kind: EventConnectionInUse, arg: "('127.0.0.1', 8000)"}},
		{"19.9-23.0", `"Invalid address: %s"`, "Invalid address: ('x', 1)", want{kind: EventInvalidAddress, arg: "('x', 1)"}},
		{"19.9-22.0 DEBUG, 23.0 ERROR", `"connection to {addr} failed: {error}"`, "connection to ('127.0.0.1', 8000) failed: [Errno 98] Address already in use", want{kind: EventConnectFailed, arg: "('127.0.0.1', 8000)"}},
		{"19.9-23.0", `"Retrying in 1 second."`, "Retrying in 1 second.", want{kind: EventRetrying}},
		{"19.9-23.0", `"Can't connect to %s"`, "Can't connect to ('127.0.0.1', 8000)", want{kind: EventCantConnect, arg: "('127.0.0.1', 8000)"}},
		{"19.9-23.0", `"Failed to log to statsd"`, "Failed to log to statsd", want{kind: EventStatsdError}},
		{"19.9-23.0", `"Error sending message to statsd"`, "Error sending message to statsd", want{kind: EventStatsdError}},

		// Near misses are Other, never a wrong kind.
		{"-", "", "", want{kind: EventOther}},
		{"-", "", "hello from the app", want{kind: EventOther}},
		{"-", "", "WORKER TIMEOUT (pid:0)", want{kind: EventOther}},
		{"-", "", "WORKER TIMEOUT (pid:12", want{kind: EventOther}},
		{"-", "", "Worker exiting (pid: abc)", want{kind: EventOther}},
		{"-", "", "Worker (pid:12) exited with code", want{kind: EventOther}},
		{"-", "", "Worker (pid:12) was sent SIGKILL", want{kind: EventOther}},
		{"-", "", "Worker with pid 12 was terminated due to signal x", want{kind: EventOther}},
		{"-", "", "Booting worker with pid: 12345678901", want{kind: EventOther}},
		{"-", "", "USR2 signal ignored. Nobody.", want{kind: EventOther}},
		{"-", "", "2 workersx", want{kind: EventOther}},
		{"-", "", "Worker with pid 1 was terminated due to signal 200", want{kind: EventOther}},
		{"-", "", "Worker with pid 1 was terminated due to signal 0", want{kind: EventOther}},
		{"-", "", "GET", want{kind: EventOther}},
		{"-", "", "Handling signal: bogus", want{kind: EventHandlingSignal, arg: "bogus"}},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			ev := Classify([]byte(tc.msg))
			got := want{kind: ev.Kind, pid: ev.PID, num: ev.Num, arg: string(ev.Arg), flags: ev.Flags}
			if got != tc.want {
				t.Errorf("%s %s\n got %+v (%s)\nwant %+v (%s)", tc.versions, tc.format, got, got.kind, tc.want, tc.want.kind)
			}
		})
	}
}

func TestEventKindNames(t *testing.T) {
	seen := map[string]bool{}
	for k := 0; k < NumEventKinds; k++ {
		name := EventKind(k).String()
		if name == "" || name == "invalid" || seen[name] {
			t.Errorf("kind %d has bad or duplicate name %q", k, name)
		}
		seen[name] = true
	}
	if EventKind(NumEventKinds).String() != "invalid" {
		t.Error("out-of-range kind has a name")
	}
}

func TestSignalNumber(t *testing.T) {
	tests := map[string]int{
		"SIGKILL": 9, "KILL": 9, "kill": 9, "hup": 1, "SIGTERM": 15, "SIGSEGV": 11, "SIGABRT": 6,
		"SIGIOT": 6, "SIGBUS": 7, "SIGUSR2": 12, "winch": 28, "SIGPOLL": 29, "": 0, "SIG": 0,
		"SIGRTMIN": 0, "bogus": 0, "SIGSYS": 31, "cld": 17, "SIGCLD": 17, "SIGCHLD": 17,
	}
	for name, n := range tests {
		if got := SignalNumber([]byte(name)); got != n {
			t.Errorf("SignalNumber(%q) = %d, want %d", name, got, n)
		}
	}
	for n := 1; n <= 31; n++ {
		if got := SignalNumber([]byte(SignalName(n))); got != n {
			t.Errorf("SignalName(%d) = %q does not round-trip (%d)", n, SignalName(n), got)
		}
	}
	if SignalName(0) != "" || SignalName(64) != "" {
		t.Error("unknown signal numbers have names")
	}
}

func TestClassifyDoesNotAllocate(t *testing.T) {
	msgs := [][]byte{
		[]byte("Worker (pid:21834) was sent SIGKILL! Perhaps out of memory?"),
		[]byte("Worker with pid 21154 was terminated due to signal 9"),
		[]byte("Handling signal: ttou"),
		[]byte("Worker (pid:21835) exited with code 1."),
		[]byte("an application line"),
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, m := range msgs {
			Classify(m)
		}
	})
	if allocs != 0 {
		t.Errorf("Classify allocates %.1f times per run", allocs)
	}
}
