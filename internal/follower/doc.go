// Package follower owns reading one log file as it grows, survives rotation
// and truncation, and hands complete lines to a callback. It is the source end
// of the exporter's pipeline: it knows nothing about Gunicorn's log format or
// about Prometheus; it only reports its own health in Stats.
//
// # Why not nxadm/tail
//
// nxadm/tail was measured to lose lines in exactly the rotations Gunicorn
// uses (see the project's reliability notes, §1): it closes the old file the
// moment it sees a rename, so every line Gunicorn writes to the renamed file
// before it receives USR1 is lost (900 of 900 in our reproduction); under
// copytruncate with a fast writer it misses the truncation once the file has
// regrown past the old offset, losing about 10% of lines (inotify mode) to over
// 40% (polling mode); it can call os.Exit from library code (util.Fatal on stat
// and watcher errors); and it has been unmaintained since its last release in
// October 2023.
//
// # Design
//
// The follower uses google/mtail's polling design
// (internal/tailer/logstream/filestream.go): no inotify, a stat of the path on
// every wake, and os.SameFile-style identity (device and inode) to notice
// rotation. Unlike mtail it keeps a rotated file open and keeps reading it for
// Options.RotateGrace after the rotation was noticed, while also reading the
// new file, because Gunicorn keeps appending to the renamed file until it gets
// USR1. Everything runs on one goroutine: Run calls Poll on each wake, and
// tests call Poll directly or step a TestWaker, with an injected clock for the
// grace period.
//
// A poll does, in order:
//  1. Lstat the path (and Readlink/Stat it if it is a symlink). A different
//     device/inode than the current file is a rotation; its reason is symlink
//     when the link text changed, delete when the old file has no links left,
//     rename otherwise. The old file moves to the draining list. When Path
//     names a file not seen before, files rotated out of sight since the
//     last poll are looked for (see Known bounds) and drained too.
//  2. For the current file: a size below the read offset is a truncation; if
//     the size or mtime changed since the last poll, the first bytes of the
//     file and the bytes just before the read offset are re-read and compared
//     with what was read (see Truncation below).
//  3. Read every draining file to EOF; close those whose grace has elapsed,
//     emitting a pending partial line first.
//  4. Read the current file to EOF in large blocks, then fstat it to record how
//     far behind the writer the follower is.
//
// # Start position
//
// On the first open after start-up the follower seeks to the end of the file
// (Options.FromStart or OneShot read from offset 0): an exporter restart must
// not count old lines again, and Prometheus counters tolerate the reset. If
// that end is in the middle of a line, the fragment up to the next newline is
// discarded. A file that did not exist at start-up, and every file opened
// after a rotation, is new content and is read from offset 0.
//
// # Truncation
//
// A truncation is noticed when the file is smaller than the read offset. To
// also notice a truncation followed by a regrowth past the old offset before
// the next poll (copytruncate with a busy writer, or a non-O_APPEND writer
// that leaves a NUL-filled hole), the follower keeps two fingerprints of what
// it has read: the first 256 bytes of the file and the 256 bytes just before
// the read offset. Whenever the file's size or mtime changed since the last
// poll it re-reads both ranges (two small preads) and compares them; any
// difference means the bytes already read are gone, so it emits the pending
// partial line and restarts at offset 0. Old lines are therefore never read
// twice and reading never resumes mid-line in new data. The limit: a rewrite
// that reproduces both ranges byte for byte is not recognised; with
// timestamped log lines that does not happen in practice. Lines written
// between the last read and the truncation are lost, as with every tailer
// (copytruncate is lossy by design).
//
// # Lines
//
// Lines are passed without their '\n' and one trailing '\r'; a UTF-8 BOM at
// offset 0 is stripped; NUL runs at the start of a line are discarded and
// counted; lines longer than Options.MaxLineBytes are cut and counted; invalid
// UTF-8 is passed through unchanged for the parser to judge. A partial line is
// held until its newline arrives and is emitted as a line when no newline can
// follow any more (the rotated file's grace ended, the file was truncated, or
// a one-shot read reached EOF).
//
// # Known bounds
//
// Two or more rotations within one poll interval leave a file that was never
// named by the path at a poll (app.log → app.log.1 → app.log.2 while the
// next app.log became app.log.1). When the path names a new file, the
// follower lists the directory for rotated names of it (the base name, then
// '.', '-' or '_' and a suffix with a digit) written since the last poll.
// Files it is reading are skipped; files it has read (same inode and same
// first bytes) and files that were there when it started are read only
// past where it left them (or their size at start-up); the rest are drained
// from offset 0, oldest first. A candidate that cannot be opened, or that only exists compressed (logrotate's compress without
// delaycompress), is counted in Stats.MissedBytes and logged; a gzip copy of
// a file already read is recognised and not counted. Not covered: rotated
// files moved to another directory (logrotate's olddir) or deleted before
// the poll, which leave no trace to count. A file rotated while the follower
// is stopped is not read. A partial line pending at shutdown is dropped.
package follower
