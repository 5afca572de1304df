package errorlog

// EventKind is the closed set of messages Classify recognises: every
// lifecycle and worker message of Gunicorn 19.9 to 23.0 (arbiter.py,
// workers/*.py, sock.py, instrument/statsd.py), the ones 24.0 to 26.1 add
// to the runs they were checked against, plus EventOther.
type EventKind uint8

// Event kinds. The comment gives the exact format string(s) and the versions
// that write them.
const (
	// EventOther is any message not listed below (application log lines
	// with --capture-output, later versions' new messages, ...).
	EventOther EventKind = iota
	// EventConfigDump: DEBUG 'Current configuration:\n{0}' (all versions);
	// the settings follow as indented continuation lines.
	EventConfigDump
	// EventMasterStarting: INFO "Starting gunicorn %s". Arg is the version.
	EventMasterStarting
	// EventArbiterBooted: DEBUG "Arbiter booted".
	EventArbiterBooted
	// EventListening: INFO "Listening at: %s (%s)" at start (PID is the
	// master pid) or "Listening at: %s" after a HUP that changed the bind
	// (PID 0). Arg is the listener list.
	EventListening
	// EventUsingWorker: INFO "Using worker: %s". Arg is the worker class.
	EventUsingWorker
	// EventIgnoringUnknownSignal: INFO "Ignoring unknown signal: %s".
	EventIgnoringUnknownSignal
	// EventUnhandledSignal: ERROR "Unhandled signal: %s". Num is the signal
	// number. Gunicorn 24.0.0 writes "Unhandled signal: cld" for every
	// SIGCHLD (its handler table misses Python's SIGCLD alias), so that
	// master never reaps or replaces a dead worker; fixed in 24.1.0.
	EventUnhandledSignal
	// EventHandlingSignal: INFO "Handling signal: %s". Arg is the lower-case
	// name without SIG (hup ttin ttou usr1 usr2 winch term int quit); Num is
	// the Linux signal number, 0 if the name is unknown.
	EventHandlingSignal
	// EventMainLoopException: "Unhandled exception in main loop" (INFO in
	// 19.9/20.1, ERROR from 21.0) with a traceback.
	EventMainLoopException
	// EventHangUp: INFO "Hang up: %s". Arg is the master name ("Master",
	// or "Master.2" for a new master not yet promoted).
	EventHangUp
	// EventGracefulStop: INFO "graceful stop of workers" (WINCH, daemon
	// mode only).
	EventGracefulStop
	// EventWinchIgnored: DEBUG "SIGWINCH ignored. Not daemonized".
	EventWinchIgnored
	// EventMasterPromoted: INFO "Master has been promoted.".
	EventMasterPromoted
	// EventShuttingDown: "Shutting down: %s". Arg is the master name.
	EventShuttingDown
	// EventReason: "Reason: %s". Num is the master exit status the reason
	// stands for: ExitWorkerBootError for "Worker failed to boot.",
	// ExitAppLoadError for "App failed to load.", 0 for any other text.
	EventReason
	// EventUSR2Ignored: WARNING "USR2 signal ignored. Child exists." (old
	// master, Arg "Child") or "USR2 signal ignored. Parent exists." (new
	// master, Arg "Parent").
	EventUSR2Ignored
	// EventWorkerTimeout: CRITICAL "WORKER TIMEOUT (pid:%s)".
	EventWorkerTimeout
	// EventWorkerSignaled: a worker died from a signal. Num is the signal
	// number (0 if unknown) and Arg the name when the line gives one.
	//   20.1 only: WARNING "Worker with pid %s was terminated due to signal %s"
	//   21.0+: ERROR "Worker (pid:{}) was sent {}!" with " Perhaps out of
	//   memory?" after SIGKILL (FlagOOMHint), or "code <status>" when the
	//   status is not a signal number (FlagCoreDump when bit 0x80 is set;
	//   Num is then status&0x7f, e.g. 134 -> 6 SIGABRT).
	EventWorkerSignaled
	// EventWorkerExitCode: ERROR, 21.0+: 'Worker (pid:%s) exited with code
	// %s' and, for codes other than 3 and 4, additionally "Worker (pid:%s)
	// exited with code %s." (FlagFullStop). Num is the exit code.
	EventWorkerExitCode
	// EventWorkersCount: DEBUG "{0} workers" (only when the count changes).
	// Num is the count.
	EventWorkersCount
	// EventWorkerBoot: INFO "Booting worker with pid: %s" (from the worker).
	EventWorkerBoot
	// EventAppLoadException: DEBUG "Exception while loading the
	// application" (from the worker).
	EventAppLoadException
	// EventExceptionInWorker: ERROR "Exception in worker process" with a
	// traceback; the worker exits 3 if it had not booted, else 255.
	EventExceptionInWorker
	// EventWorkerExiting: INFO "Worker exiting (pid: %s)" (from the worker,
	// in a finally block; absent when a signal kills it).
	EventWorkerExiting
	// EventWorkerExitException: WARNING "Exception during worker exit:\n%s".
	EventWorkerExitException
	// EventAutorestarting: INFO "Autorestarting worker after current
	// request." (max_requests reached).
	EventAutorestarting
	// EventParentChanged: INFO "Parent changed, shutting down: %s" (the
	// master died). Arg is the worker repr, e.g. "<Worker 123>".
	EventParentChanged
	// EventErrorHandlingRequest: ERROR "Error handling request %s" (Arg is
	// the URI; 25.3+ writes the method before it, "GET /path", which sets
	// FlagMethod and leaves Arg the URI), "Error handling request (no URI
	// read)" (22.0+, FlagNoURI) or "Error handling request" (headers
	// already sent).
	EventErrorHandlingRequest
	// EventInvalidRequest: "Invalid request from ip={ip}: {error}" (DEBUG in
	// 19.9/20.1, WARNING from 21.2). Arg is the client address.
	EventInvalidRequest
	// EventPostRequestException: ERROR "Exception in post_request hook".
	EventPostRequestException
	// EventSocketError: ERROR "Socket error processing request.".
	EventSocketError
	// EventClientDisconnect: DEBUG connection noise: "Ignored premature
	// client disconnection. %s", "Closing connection. %s", "Ignoring EPIPE",
	// "Ignoring connection reset", "ssl connection closed".
	EventClientDisconnect
	// EventWorkerReloading: INFO "Worker reloading: %s modified" (--reload).
	EventWorkerReloading
	// EventWorkerWinchIgnored: DEBUG "worker: SIGWINCH ignored.".
	EventWorkerWinchIgnored
	// EventWorkerGracefulTimeout: WARNING "Worker graceful timeout
	// (pid:%s)" (gevent worker).
	EventWorkerGracefulTimeout
	// EventNoKeepalive: WARNING "No keepalived connections can be handled.
	// Check the number of worker connections and threads." (gthread).
	EventNoKeepalive
	// EventRequestDebug: DEBUG "%s %s" (method and path, from the default
	// pre_request hook).
	EventRequestDebug
	// EventConnectionInUse: ERROR "Connection in use: %s".
	EventConnectionInUse
	// EventInvalidAddress: ERROR "Invalid address: %s".
	EventInvalidAddress
	// EventConnectFailed: "connection to {addr} failed: {error}" (DEBUG up
	// to 22.0, ERROR in 23.0).
	EventConnectFailed
	// EventRetrying: "Retrying in 1 second." (ERROR up to 22.0, DEBUG 23.0).
	EventRetrying
	// EventCantConnect: ERROR "Can't connect to %s" (the master exits 1).
	EventCantConnect
	// EventStatsdError: WARNING "Failed to log to statsd" or "Error sending
	// message to statsd".
	EventStatsdError
	// EventControlSocket: INFO "Control socket listening at %s" (25.1+,
	// from the master). 25.3 and 26.1 write it again after every worker
	// fork, so it marks neither a start nor a boot. Arg is the socket path.
	EventControlSocket

	numEventKinds
)

// NumEventKinds is the number of EventKind values.
const NumEventKinds = int(numEventKinds)

var eventKindNames = [NumEventKinds]string{
	"other", "config_dump", "master_starting", "arbiter_booted", "listening",
	"using_worker", "ignoring_unknown_signal", "unhandled_signal", "handling_signal",
	"main_loop_exception", "hang_up", "graceful_stop", "winch_ignored",
	"master_promoted", "shutting_down", "reason", "usr2_ignored", "worker_timeout",
	"worker_signaled", "worker_exit_code", "workers_count", "worker_boot",
	"app_load_exception", "exception_in_worker", "worker_exiting",
	"worker_exit_exception", "autorestarting", "parent_changed",
	"error_handling_request", "invalid_request", "post_request_exception",
	"socket_error", "client_disconnect", "worker_reloading", "worker_winch_ignored",
	"worker_graceful_timeout", "no_keepalive", "request_debug", "connection_in_use",
	"invalid_address", "connect_failed", "retrying", "cant_connect", "statsd_error",
	"control_socket",
}

// String returns the snake_case name of the kind.
func (k EventKind) String() string {
	if int(k) < NumEventKinds {
		return eventKindNames[k]
	}
	return "invalid"
}

// Flags qualify an Event.
type Flags uint8

// Event flags.
const (
	// FlagFullStop marks the 21.0+ "exited with code N." line (with a full
	// stop), which Gunicorn writes in addition to the one without.
	FlagFullStop Flags = 1 << iota
	// FlagOOMHint marks "... was sent SIGKILL! Perhaps out of memory?".
	FlagOOMHint
	// FlagCoreDump marks "was sent code N!" with the core-dump bit set.
	FlagCoreDump
	// FlagNamedSignal marks the 21.0+ wording ("was sent SIGX!"), as
	// opposed to 20.1's "terminated due to signal N".
	FlagNamedSignal
	// FlagNoURI marks "Error handling request (no URI read)".
	FlagNoURI
	// FlagMethod marks 25.3+'s "Error handling request GET /path", whose
	// method Classify drops from Arg.
	FlagMethod
)

// Exit statuses that Gunicorn's master gives a meaning to (arbiter.py
// WORKER_BOOT_ERROR and APP_LOAD_ERROR).
const (
	ExitWorkerBootError = 3
	ExitAppLoadError    = 4
)

// Event is a classified message. Arg is a sub-slice of the message given to
// Classify and shares its lifetime.
type Event struct {
	Kind EventKind
	// PID is the worker pid the message is about (WORKER TIMEOUT, Booting,
	// Worker exiting, exit code and signal lines, graceful timeout), or the
	// master pid in "Listening at: ... (pid)". Zero otherwise.
	PID int
	// Num is the signal number, exit code, worker count or implied master
	// exit status, depending on Kind (see the kinds).
	Num   int
	Arg   []byte
	Flags Flags
}

// Has reports whether all of f are set.
func (e Event) Has(f Flags) bool { return e.Flags&f == f }

// Classify maps a header's message to an Event. It is a pure function and
// does not allocate.
func Classify(msg []byte) Event {
	msg = trimEOL(msg)
	if len(msg) == 0 {
		return Event{}
	}
	switch msg[0] {
	case 'A':
		if is(msg, "Arbiter booted") {
			return Event{Kind: EventArbiterBooted}
		}
		if is(msg, "Autorestarting worker after current request.") {
			return Event{Kind: EventAutorestarting}
		}
	case 'B':
		if rest, ok := cut(msg, "Booting worker with pid: "); ok {
			if pid, ok := wholePID(rest); ok {
				return Event{Kind: EventWorkerBoot, PID: pid}
			}
		}
	case 'C':
		if hasPrefix(msg, "Current configuration:") {
			return Event{Kind: EventConfigDump}
		}
		if hasPrefix(msg, "Closing connection.") {
			return Event{Kind: EventClientDisconnect}
		}
		if rest, ok := cut(msg, "Connection in use: "); ok {
			return Event{Kind: EventConnectionInUse, Arg: rest}
		}
		if rest, ok := cut(msg, "Can't connect to "); ok {
			return Event{Kind: EventCantConnect, Arg: rest}
		}
		if rest, ok := cut(msg, "Control socket listening at "); ok {
			return Event{Kind: EventControlSocket, Arg: rest}
		}
	case 'E':
		if rest, ok := cut(msg, "Error handling request"); ok {
			switch {
			case len(rest) == 0:
				return Event{Kind: EventErrorHandlingRequest}
			case is(rest, " (no URI read)"):
				return Event{Kind: EventErrorHandlingRequest, Flags: FlagNoURI}
			case rest[0] == ' ' && requestLine(rest[1:]):
				// 25.3+: "GET /path"; the method is not the URI.
				uri := rest[1:]
				for uri[0] != ' ' {
					uri = uri[1:]
				}
				return Event{Kind: EventErrorHandlingRequest, Arg: uri[1:], Flags: FlagMethod}
			case rest[0] == ' ':
				return Event{Kind: EventErrorHandlingRequest, Arg: rest[1:]}
			}
		}
		if is(msg, "Exception in worker process") {
			return Event{Kind: EventExceptionInWorker}
		}
		if is(msg, "Exception while loading the application") {
			return Event{Kind: EventAppLoadException}
		}
		if is(msg, "Exception in post_request hook") {
			return Event{Kind: EventPostRequestException}
		}
		if hasPrefix(msg, "Exception during worker exit:") {
			return Event{Kind: EventWorkerExitException}
		}
		if is(msg, "Error sending message to statsd") {
			return Event{Kind: EventStatsdError}
		}
	case 'F':
		if is(msg, "Failed to log to statsd") {
			return Event{Kind: EventStatsdError}
		}
	case 'H':
		if rest, ok := cut(msg, "Handling signal: "); ok {
			return Event{Kind: EventHandlingSignal, Arg: rest, Num: SignalNumber(rest)}
		}
		if rest, ok := cut(msg, "Hang up: "); ok {
			return Event{Kind: EventHangUp, Arg: rest}
		}
	case 'I':
		if rest, ok := cut(msg, "Invalid request from ip="); ok {
			ip := rest
			for i := 0; i+1 < len(rest); i++ {
				if rest[i] == ':' && rest[i+1] == ' ' {
					ip = rest[:i]
					break
				}
			}
			return Event{Kind: EventInvalidRequest, Arg: ip}
		}
		if rest, ok := cut(msg, "Ignoring unknown signal: "); ok {
			return Event{Kind: EventIgnoringUnknownSignal, Arg: rest, Num: SignalNumber(rest)}
		}
		if hasPrefix(msg, "Ignored premature client disconnection.") || is(msg, "Ignoring EPIPE") || is(msg, "Ignoring connection reset") {
			return Event{Kind: EventClientDisconnect}
		}
		if rest, ok := cut(msg, "Invalid address: "); ok {
			return Event{Kind: EventInvalidAddress, Arg: rest}
		}
	case 'L':
		if rest, ok := cut(msg, "Listening at: "); ok {
			// "addr,addr (pid)" at start; "addr" after a HUP rebind.
			if n := len(rest); n > 0 && rest[n-1] == ')' {
				for i := n - 2; i > 0; i-- {
					if rest[i] == '(' && rest[i-1] == ' ' {
						if pid, ok := wholePID(rest[i+1 : n-1]); ok {
							return Event{Kind: EventListening, PID: pid, Arg: rest[:i-1]}
						}
						break
					}
					if !isDigit(rest[i]) {
						break
					}
				}
			}
			return Event{Kind: EventListening, Arg: rest}
		}
	case 'M':
		if is(msg, "Master has been promoted.") {
			return Event{Kind: EventMasterPromoted}
		}
	case 'N':
		if hasPrefix(msg, "No keepalived connections can be handled.") {
			return Event{Kind: EventNoKeepalive}
		}
	case 'P':
		if rest, ok := cut(msg, "Parent changed, shutting down: "); ok {
			return Event{Kind: EventParentChanged, Arg: rest}
		}
	case 'R':
		if rest, ok := cut(msg, "Reason: "); ok {
			ev := Event{Kind: EventReason, Arg: rest}
			switch string(rest) {
			case "Worker failed to boot.":
				ev.Num = ExitWorkerBootError
			case "App failed to load.":
				ev.Num = ExitAppLoadError
			}
			return ev
		}
		if is(msg, "Retrying in 1 second.") {
			return Event{Kind: EventRetrying}
		}
	case 'S':
		if rest, ok := cut(msg, "Starting gunicorn "); ok {
			return Event{Kind: EventMasterStarting, Arg: rest}
		}
		if rest, ok := cut(msg, "Shutting down: "); ok {
			return Event{Kind: EventShuttingDown, Arg: rest}
		}
		if is(msg, "SIGWINCH ignored. Not daemonized") {
			return Event{Kind: EventWinchIgnored}
		}
		if is(msg, "Socket error processing request.") {
			return Event{Kind: EventSocketError}
		}
	case 'U':
		if rest, ok := cut(msg, "Using worker: "); ok {
			return Event{Kind: EventUsingWorker, Arg: rest}
		}
		if rest, ok := cut(msg, "USR2 signal ignored. "); ok {
			switch string(rest) {
			case "Child exists.":
				return Event{Kind: EventUSR2Ignored, Arg: rest[:5]}
			case "Parent exists.":
				return Event{Kind: EventUSR2Ignored, Arg: rest[:6]}
			}
		}
		if rest, ok := cut(msg, "Unhandled signal: "); ok {
			return Event{Kind: EventUnhandledSignal, Arg: rest, Num: SignalNumber(rest)}
		}
		if is(msg, "Unhandled exception in main loop") {
			return Event{Kind: EventMainLoopException}
		}
	case 'W':
		if rest, ok := cut(msg, "WORKER TIMEOUT (pid:"); ok {
			if pid, ok := pidThen(rest, ")"); ok {
				return Event{Kind: EventWorkerTimeout, PID: pid}
			}
		}
		if rest, ok := cut(msg, "Worker exiting (pid: "); ok {
			if pid, ok := pidThen(rest, ")"); ok {
				return Event{Kind: EventWorkerExiting, PID: pid}
			}
		}
		if rest, ok := cut(msg, "Worker (pid:"); ok {
			if ev, ok := classifyReap(rest); ok {
				return ev
			}
		}
		if rest, ok := cut(msg, "Worker with pid "); ok {
			pid, n := leadingInt(rest)
			if n > 0 && pid > 0 {
				if sig, ok := cut(rest[n:], " was terminated due to signal "); ok {
					// WTERMSIG is 7 bits wide; anything else is not a signal.
					if s, ok := wholeInt(sig); ok && s > 0 && s < 128 {
						return Event{Kind: EventWorkerSignaled, PID: pid, Num: s}
					}
				}
			}
		}
		if rest, ok := cut(msg, "Worker graceful timeout (pid:"); ok {
			if pid, ok := pidThen(rest, ")"); ok {
				return Event{Kind: EventWorkerGracefulTimeout, PID: pid}
			}
		}
		if rest, ok := cut(msg, "Worker reloading: "); ok {
			if file, ok := cutSuffix(rest, " modified"); ok {
				return Event{Kind: EventWorkerReloading, Arg: file}
			}
		}
	case 'c':
		if rest, ok := cut(msg, "connection to "); ok {
			for i := 0; i+9 <= len(rest); i++ {
				if string(rest[i:i+9]) == " failed: " {
					return Event{Kind: EventConnectFailed, Arg: rest[:i]}
				}
			}
		}
	case 'g':
		if is(msg, "graceful stop of workers") {
			return Event{Kind: EventGracefulStop}
		}
	case 's':
		if is(msg, "ssl connection closed") {
			return Event{Kind: EventClientDisconnect}
		}
	case 'w':
		if is(msg, "worker: SIGWINCH ignored.") {
			return Event{Kind: EventWorkerWinchIgnored}
		}
	}
	if isDigit(msg[0]) {
		if n, k := leadingInt(msg); k > 0 && is(msg[k:], " workers") {
			return Event{Kind: EventWorkersCount, Num: n}
		}
	}
	if requestLine(msg) {
		return Event{Kind: EventRequestDebug}
	}
	return Event{Kind: EventOther}
}

// classifyReap reads what follows "Worker (pid:" in 21.0+'s reap messages.
func classifyReap(rest []byte) (Event, bool) {
	pid, n := leadingInt(rest)
	if n == 0 || pid <= 0 || n >= len(rest) || rest[n] != ')' {
		return Event{}, false
	}
	rest = rest[n+1:]
	if code, ok := cut(rest, " exited with code "); ok {
		ev := Event{Kind: EventWorkerExitCode, PID: pid}
		if c, ok := cutSuffix(code, "."); ok {
			code = c
			ev.Flags |= FlagFullStop
		}
		c, ok := wholeInt(code)
		if !ok {
			return Event{}, false
		}
		ev.Num = c
		return ev, true
	}
	if sent, ok := cut(rest, " was sent "); ok {
		ev := Event{Kind: EventWorkerSignaled, PID: pid, Flags: FlagNamedSignal}
		if s, ok := cutSuffix(sent, "! Perhaps out of memory?"); ok {
			sent = s
			ev.Flags |= FlagOOMHint
		} else if s, ok := cutSuffix(sent, "!"); ok {
			sent = s
		} else {
			return Event{}, false
		}
		if status, ok := cut(sent, "code "); ok {
			st, ok := wholeInt(status)
			if !ok {
				return Event{}, false
			}
			ev.Num = st & 0x7f
			if st&0x80 != 0 {
				ev.Flags |= FlagCoreDump
			}
			ev.Arg = sent
			return ev, true
		}
		ev.Arg = sent
		ev.Num = SignalNumber(sent)
		return ev, true
	}
	return Event{}, false
}

// requestLine recognises the default pre_request hook's "%s %s": an
// upper-case method, one space, then a path ("/..."), "*" or an absolute
// URL.
func requestLine(msg []byte) bool {
	i := 0
	for i < len(msg) && msg[i] >= 'A' && msg[i] <= 'Z' {
		i++
	}
	if i == 0 || i > 16 || i+1 >= len(msg) || msg[i] != ' ' {
		return false
	}
	c := msg[i+1]
	return c == '/' || c == '*' || hasPrefix(msg[i+1:], "http://") || hasPrefix(msg[i+1:], "https://")
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// hasPrefix, is, cut and cutSuffix compare through string conversions,
// which the compiler performs without allocating.
func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

func is(b []byte, s string) bool { return string(b) == s }

func cut(b []byte, prefix string) ([]byte, bool) {
	if hasPrefix(b, prefix) {
		return b[len(prefix):], true
	}
	return nil, false
}

func cutSuffix(b []byte, suffix string) ([]byte, bool) {
	if len(b) >= len(suffix) && string(b[len(b)-len(suffix):]) == suffix {
		return b[:len(b)-len(suffix)], true
	}
	return nil, false
}

// leadingInt parses up to 10 leading decimal digits; n is how many bytes it
// consumed (0 when b does not start with a digit or has more digits).
func leadingInt(b []byte) (v, n int) {
	for n < len(b) && isDigit(b[n]) {
		if n == maxPIDDigits {
			return 0, 0
		}
		v = v*10 + int(b[n]-'0')
		n++
	}
	return v, n
}

func wholeInt(b []byte) (int, bool) {
	v, n := leadingInt(b)
	return v, n > 0 && n == len(b)
}

func wholePID(b []byte) (int, bool) {
	v, ok := wholeInt(b)
	return v, ok && v > 0 && v <= maxPID
}

func pidThen(b []byte, suffix string) (int, bool) {
	v, n := leadingInt(b)
	if n == 0 || v <= 0 || v > maxPID || !is(b[n:], suffix) {
		return 0, false
	}
	return v, true
}
