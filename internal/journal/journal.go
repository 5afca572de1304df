package journal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 30 * time.Second
	DefaultMaxLineBytes = 64 << 10
	DefaultQueueLines   = 4096
	DefaultMaxPollLines = 64 << 10
	// healthyRun is how long a child must have run for the next restart to
	// start again at MinBackoff: a journalctl that fails at once backs off,
	// one that ran for a day and was then killed is restarted quickly.
	healthyRun = 30 * time.Second
	// maxEntryBytes bounds one JSON entry read from journalctl. A MESSAGE is
	// at most journald's LineMax (48 KiB by default) and escaping can grow
	// it six-fold; anything longer is skipped and counted as oversized.
	maxEntryBytes = 1 << 20
)

// Handler receives each line (one journal entry's MESSAGE, without a
// trailing newline) on the goroutine that calls Poll. The slice is valid
// only during the call.
type Handler func(line []byte)

// Options configures a Reader. Unit is required; every other zero value
// means the documented default.
type Options struct {
	// Unit is the systemd unit whose stdout and stderr are read
	// (_SYSTEMD_UNIT=Unit), e.g. "app.service".
	Unit string
	// Command is journalctl and its leading arguments; default
	// ["journalctl"]. Tests point it at a private journal with
	// "--directory=DIR"; a host with its journal elsewhere can do the same.
	Command []string
	// MinBackoff and MaxBackoff bound the wait before restarting a child
	// that exited: it doubles from MinBackoff (default 1 s) up to MaxBackoff
	// (default 30 s).
	MinBackoff, MaxBackoff time.Duration
	// MaxLineBytes cuts longer messages (default 64 KiB), as the file
	// follower cuts longer lines.
	MaxLineBytes int
	// QueueLines bounds the lines waiting for Poll (default 4096); a full
	// queue makes journalctl wait.
	QueueLines int
	// MaxPollLines bounds the lines one Poll delivers (default 65536), so a
	// unit that logs faster than the pipeline handles lines cannot keep
	// Poll from returning (and the pipeline from flushing its decisions).
	MaxPollLines int
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Stats are the reader's counters, for the follower-health metrics.
type Stats struct {
	Lines uint64 // lines passed to the Handler
	Bytes uint64 // message bytes read, before any cut
	// OversizedLines counts messages cut at MaxLineBytes and entries too big
	// to decode (skipped).
	OversizedLines uint64
	// DecodeErrors counts entries journalctl printed that were not JSON, or
	// had no usable MESSAGE (a binary field is decoded, not counted).
	DecodeErrors uint64
	// Restarts counts journalctl children started after the first.
	Restarts uint64
	// StartErrors counts children that could not be started at all
	// (journalctl missing).
	StartErrors uint64
	// Queued is how many lines wait for Poll now.
	Queued int
	// Running says a journalctl child is running now.
	Running bool
	// PermissionDenied says journalctl reported that it may not read the
	// system journal; entries of the unit are then not seen.
	PermissionDenied bool
	// Invocations counts the distinct _SYSTEMD_INVOCATION_ID values seen
	// (a unit restart starts a new invocation, with a new master pid).
	Invocations uint64
	// PID is the _PID of the last entry: the process that opened the
	// stream, the Gunicorn master under systemd.
	PID int
	// LastError is journalctl's last complaint or exit status, "" while
	// it runs without one.
	LastError string
}

// Reader follows one unit's entries through a journalctl child. Create it
// with New; Poll delivers the lines; Close stops the child.
type Reader struct {
	opts  Options
	h     Handler
	log   *slog.Logger
	start time.Time
	q     chan []byte

	cancel context.CancelFunc
	done   chan struct{}

	pollMu sync.Mutex // serialises Poll
	mu     sync.Mutex // guards everything below
	stats  Stats
	cursor string // of the last entry queued
	invID  string
	warned bool // the permission problem was logged
}

// ValidUnit reports whether s can name a unit to match on: non-empty, at
// most 255 bytes, with no slash, whitespace, control byte or "=".
func ValidUnit(s string) bool {
	if s == "" || len(s) > 255 || s[0] == '-' || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '/' || c == '=' || c == 0x7f {
			return false
		}
	}
	return true
}

// New validates opts and starts following: entries from now on are read.
func New(opts Options, h Handler) (*Reader, error) {
	if !ValidUnit(opts.Unit) {
		return nil, fmt.Errorf("journal: invalid unit name %q", opts.Unit)
	}
	if len(opts.Command) == 0 {
		opts.Command = []string{"journalctl"}
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	if opts.QueueLines <= 0 {
		opts.QueueLines = DefaultQueueLines
	}
	if opts.MaxPollLines <= 0 {
		opts.MaxPollLines = DefaultMaxPollLines
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Reader{
		opts:   opts,
		h:      h,
		log:    opts.Logger.With("unit", opts.Unit),
		start:  opts.Now(),
		q:      make(chan []byte, opts.QueueLines),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go r.supervise(ctx)
	return r, nil
}

// Poll hands the queued lines, at most MaxPollLines, to the Handler and
// returns how many.
func (r *Reader) Poll() int {
	r.pollMu.Lock()
	defer r.pollMu.Unlock()
	n := 0
	defer func() {
		r.mu.Lock()
		r.stats.Lines += uint64(n)
		r.mu.Unlock()
	}()
	for n < r.opts.MaxPollLines {
		select {
		case line := <-r.q:
			r.h(line)
			n++
		default:
			return n
		}
	}
	return n
}

// Close stops the child and waits for it; lines still queued are dropped.
func (r *Reader) Close() error {
	r.cancel()
	<-r.done
	return nil
}

// Stats returns a copy of the counters.
func (r *Reader) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	st.Queued = len(r.q)
	return st
}

// Args returns the journalctl arguments (after Command) for a child that
// resumes at cursor, or, with no cursor, starts at since.
//
// A child resumes with --cursor, which shows the cursor's entry again (the
// reader drops it), not with --after-cursor: journalctl implements that by
// seeking to the cursor and skipping one entry, so when the cursor's entry
// is gone (its file archived and vacuumed while no child ran) the skipped
// entry is the first one after it, and that line would be lost.
func Args(unit, cursor string, since time.Time) []string {
	a := []string{"--output=json", "--follow", "--no-tail", "--all", "--no-pager", "--quiet",
		"--output-fields=MESSAGE,_PID,_SYSTEMD_INVOCATION_ID"}
	if cursor != "" {
		a = append(a, "--cursor="+cursor)
	} else {
		us := since.UnixMicro()
		a = append(a, fmt.Sprintf("--since=@%d.%06d", us/1e6, us%1e6))
	}
	return append(a, "_SYSTEMD_UNIT="+unit, "_TRANSPORT=stdout")
}

// supervise runs journalctl children until Close, restarting each one that
// exits after a bounded, doubling backoff.
func (r *Reader) supervise(ctx context.Context) {
	defer close(r.done)
	backoff := r.opts.MinBackoff
	for first := true; ; first = false {
		if !first {
			r.mu.Lock()
			r.stats.Restarts++
			r.mu.Unlock()
		}
		began := r.opts.Now()
		err := r.runChild(ctx)
		if ctx.Err() != nil {
			return
		}
		// A child that keeps failing (a journal it may not read) is said
		// once at WARN, then at DEBUG on every retry; Stats counts them.
		level := slog.LevelDebug
		if first || r.opts.Now().Sub(began) >= healthyRun {
			backoff, level = r.opts.MinBackoff, slog.LevelWarn
		}
		r.log.Log(ctx, level, "journalctl exited; restarting it after a pause, resuming at the last entry read", "err", err, "pause", backoff.String())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, r.opts.MaxBackoff)
	}
}

// runChild runs one journalctl until it exits or ctx is done.
func (r *Reader) runChild(ctx context.Context) error {
	r.mu.Lock()
	cursor := r.cursor
	r.mu.Unlock()
	args := append(append([]string{}, r.opts.Command[1:]...), Args(r.opts.Unit, cursor, r.start)...)
	// Cancelling childCtx is how the child is stopped: os/exec kills it.
	childCtx, stop := context.WithCancel(ctx)
	defer stop()
	cmd := exec.CommandContext(childCtx, r.opts.Command[0], args...)
	cmd.Env = append(cmd.Environ(), "LC_ALL=C", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=")
	// journalctl must not outlive an exporter that dies without Close.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		r.mu.Lock()
		r.stats.StartErrors++
		r.stats.LastError = err.Error()
		r.mu.Unlock()
		return err
	}
	r.mu.Lock()
	// A new child reports its own permission problem, if it still has one.
	r.stats.Running, r.stats.PermissionDenied, r.stats.LastError = true, false, ""
	r.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.readStderr(stderr)
	}()
	readErr := r.readEntries(ctx, stdout, cursor)
	if readErr != nil {
		// Stop a child whose output cannot be read any more; Wait then
		// reaps it.
		stop()
	}
	wg.Wait()
	err = cmd.Wait()
	r.mu.Lock()
	r.stats.Running = false
	if err != nil && ctx.Err() == nil {
		if said := r.stats.LastError; said != "" {
			r.stats.LastError = "journalctl: " + err.Error() + ": " + said
		} else {
			r.stats.LastError = "journalctl: " + err.Error()
		}
	}
	r.mu.Unlock()
	if err == nil {
		err = errors.New("journalctl exited")
	}
	return err
}

// readEntries decodes journalctl's JSON lines and queues their messages,
// but not that of a first entry at resume, the cursor's own entry, which
// was queued before. It returns nil at the end of the output, an error when
// the output could not be read.
func (r *Reader) readEntries(ctx context.Context, out io.Reader, resume string) error {
	br := bufio.NewReaderSize(out, 64<<10)
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) <= maxEntryBytes {
			buf = append(buf, chunk...)
		} else if len(buf) <= maxEntryBytes {
			buf = buf[:maxEntryBytes+1] // marks the entry as oversized
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(buf) > 0 && (err == nil || len(bytes.TrimSpace(buf)) > 0) {
			if !r.entry(ctx, buf, &resume) {
				return ctx.Err()
			}
		}
		buf = buf[:0]
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
				return nil
			}
			return err
		}
	}
}

// entry queues the message of one JSON entry; false when ctx ended while
// waiting for room in the queue. *resume is the cursor a restarted child
// began at: the first entry is dropped when it is that one.
func (r *Reader) entry(ctx context.Context, raw []byte, resume *string) bool {
	if len(raw) > maxEntryBytes {
		r.mu.Lock()
		r.stats.OversizedLines++
		r.mu.Unlock()
		return true
	}
	e, err := DecodeEntry(raw)
	if *resume != "" {
		again := e.Cursor == *resume
		*resume = ""
		if again {
			return true
		}
	}
	r.mu.Lock()
	if err != nil {
		r.stats.DecodeErrors++
		if e.Cursor != "" {
			r.cursor = e.Cursor
		}
		r.mu.Unlock()
		return true
	}
	r.stats.Bytes += uint64(len(e.Message))
	if len(e.Message) > r.opts.MaxLineBytes {
		e.Message = e.Message[:r.opts.MaxLineBytes]
		r.stats.OversizedLines++
	}
	r.stats.PID = e.PID
	newInvocation := e.Invocation != "" && e.Invocation != r.invID
	if newInvocation {
		r.stats.Invocations++
		r.invID = e.Invocation
	}
	r.mu.Unlock()
	if newInvocation {
		r.log.Info("unit (re)started: following its new invocation", "invocation_id", e.Invocation, "pid", e.PID)
	}
	select {
	case r.q <- e.Message:
	case <-ctx.Done():
		return false
	}
	// The cursor moves only once the line is queued: a child restarted
	// after this point resumes after it, one restarted before re-reads it.
	r.mu.Lock()
	r.cursor = e.Cursor
	r.mu.Unlock()
	return true
}

// permissionHints are journalctl's messages for a journal it may not
// read (journalctl.c, systemd 252: access_check and the "Hint:" line).
var permissionHints = []string{
	"insufficient permissions",
	"not seeing messages from other users and the system",
	"Permission denied",
}

// readStderr watches journalctl's complaints for a permission problem.
func (r *Reader) readStderr(errOut io.Reader) {
	sc := bufio.NewScanner(errOut)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		denied := false
		for _, h := range permissionHints {
			if strings.Contains(line, h) {
				denied = true
			}
		}
		r.mu.Lock()
		r.stats.LastError = line
		logIt := denied && !r.warned
		if denied {
			r.stats.PermissionDenied, r.warned = true, true
		}
		r.mu.Unlock()
		if logIt {
			r.log.Error("the journal is not readable by this user, so the unit's log lines are not seen: add the exporter's user to the systemd-journal group (or adm), e.g. SupplementaryGroups=systemd-journal in its unit",
				"group", "systemd-journal", "journalctl", line)
		}
	}
	_, _ = io.Copy(io.Discard, errOut)
}
