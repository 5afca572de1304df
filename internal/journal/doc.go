// Package journal owns reading one systemd unit's stdout and stderr lines
// from the journal, for Gunicorn masters whose error log (or access log) is
// "-" under a systemd service: the entries of _SYSTEMD_UNIT=<unit> written
// through the stdout transport, one line each, in journal order.
//
// The reader is the host's own journalctl, run as a supervised child:
//
//	journalctl --output=json --follow --no-tail --all --no-pager --quiet
//	    --output-fields=MESSAGE,_PID,_SYSTEMD_INVOCATION_ID
//	    (--since=@<start> | --cursor=<cursor>)
//	    _SYSTEMD_UNIT=<unit> _TRANSPORT=stdout
//
// (--no-tail so that the backlog after --since or the cursor is never cut
// to the last 10 entries, --follow's default without them; --all
// because a long MESSAGE is printed as null without it; _TRANSPORT=stdout
// keeps the unit's syslog and native-protocol entries out, which are not
// Gunicorn's stderr.)
//
// It was chosen over the two alternatives for these reasons:
//
//   - github.com/coreos/go-systemd/v22/sdjournal needs cgo and libsystemd at
//     build and run time; the exporter is built CGO_ENABLED=0 as one static
//     binary that also runs where libsystemd is absent (containers).
//   - A pure-Go reader of the journal file format would have to track every
//     systemd release: compact mode (systemd 252), keyed hashes, zstd, xz and
//     lz4 compressed data objects, and the rules for following files that
//     journald rotates, archives, vacuums and replaces after a restart. No
//     maintained module does all of that; the journalctl installed with the
//     host's journald always reads the host's files.
//   - journalctl already implements following across rotation, vacuuming and
//     journald restarts (inotify on the journal directories), merging of the
//     system and archived files, and the access rules (the systemd-journal
//     and adm groups, ACLs). OpenTelemetry's journald receiver makes the same
//     choice.
//
// The cost is one child process per followed unit and an exception to the
// rule that only the actuator starts programs (internal/importrules): this
// package starts journalctl and nothing else, with a fixed argument list in
// which only the unit name (validated) and the configured journalctl
// command vary.
//
// Reading starts at the reader's creation time (--since), so entries written
// before the exporter started are never counted, and an entry written while
// journalctl is still opening the files is not lost either. When the child
// exits (journalctl killed, a journal directory replaced), it is restarted
// after a backoff that doubles up to a bound, with --cursor at the last
// entry queued (shown again and dropped; see Args for why not
// --after-cursor): nothing is counted twice or skipped.
// Lines are handed to the caller's goroutine by Poll, through a bounded
// queue: a caller that falls behind makes journalctl wait (the journal
// keeps the entries), never loses them.
//
// A journal the exporter may not read is seen in journalctl's messages
// ("insufficient permissions", "not seeing messages from other users and
// the system"); it is reported in Stats and logged once with the groups to
// add (systemd-journal or adm).
package journal
