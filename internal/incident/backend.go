package incident

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgmon"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/timeline"
)

// BackendLinker finds the PostgreSQL backend of a client connection by its
// local address and port (pgmon.Set.LinkBackend); ok is false when no
// target knows it.
type BackendLinker func(ctx context.Context, clientAddr string, clientPort int) (target string, info pgmon.BackendInfo, ok bool)

// StuckWorker is what the /proc sampler saw of one stuck worker, as far as
// linking needs it.
type StuckWorker struct {
	PID int
	// Since identifies the stuck episode: the worker's last heartbeat.
	Since time.Time
	// SocketRead: the worker is blocked reading a socket.
	SocketRead bool
	// LocalPort is the worker's own TCP port on the connection it waits on
	// (pg_stat_activity.client_port for a PostgreSQL peer); 0 if unknown.
	LocalPort int
	// PeerIsPostgres: the peer's port is a PostgreSQL port.
	PeerIsPostgres bool
}

// mayWaitOnPostgres says whether asking PostgreSQL about w can find its
// backend. Any TCP socket read may be PostgreSQL on a port other than 5432
// (or behind a proxy); asking costs one query per new episode, and a port
// no backend uses simply matches nothing. Without a local port there is
// nothing to ask.
func mayWaitOnPostgres(w StuckWorker) bool {
	return w.LocalPort != 0 && (w.SocketRead || w.PeerIsPostgres)
}

// episodeKey names one stuck episode of one worker.
func episodeKey(app string, w StuckWorker) string {
	return fmt.Sprintf("%s/%d/%d", app, w.PID, w.Since.UnixNano())
}

// BackendLinkEvent is the timeline event saying that w waits on the
// backend info of target, observed at at. Backend pids, query ages and
// the query text (literals stripped, only when the target enables it)
// are evidence in Attrs, never labels.
func BackendLinkEvent(app string, w StuckWorker, target string, info pgmon.BackendInfo, at time.Time) timeline.Event {
	attrs := map[string]string{
		"target": target, "backend_pid": fmt.Sprint(info.PID), "state": info.State,
		"wait_event_type": info.WaitEventType, "wait_event": info.WaitEvent,
		"query_age_seconds": fmt.Sprintf("%.1f", info.QueryAge.Seconds()),
		"blocked":           fmt.Sprint(info.Blocked), "local_port": fmt.Sprint(w.LocalPort),
	}
	for i, b := range info.BlockedBy {
		attrs[fmt.Sprintf("blocked_by_%d", i)] = fmt.Sprintf("pid %d (%s, transaction %.1fs)", b.PID, b.State, b.TransactionAge.Seconds())
	}
	if info.Query != "" {
		attrs["query"] = info.Query
	}
	return timeline.Event{Time: at, App: app, Source: timeline.SourcePostgres, Kind: timeline.KindWorkerWaitsOnBackend, PID: w.PID,
		Detail: fmt.Sprintf("worker %d waits on backend %d (%s, %s)", w.PID, info.PID, info.State, info.WaitEvent), Attrs: attrs}
}

// BackendLinksOptions configure BackendLinks. Zero values select the
// defaults.
type BackendLinksOptions struct {
	// Now stamps the events; default time.Now.
	Now func() time.Time
	// Timeout bounds one link (all targets); default 2s, so a hung
	// database delays the next /proc sample by at most that.
	Timeout time.Duration
	// MaxEpisodes bounds the episodes remembered as already asked about;
	// default 1024. When full, the memory starts over: an episode still
	// running is then linked once more.
	MaxEpisodes int
}

// BackendLinks links stuck workers to their PostgreSQL backends, once per
// stuck episode. It is safe for concurrent use.
type BackendLinks struct {
	tl   Appender
	opts BackendLinksOptions

	mu     sync.Mutex
	linker BackendLinker
	asked  map[string]bool
}

// NewBackendLinks returns a producer appending to tl; it links nothing
// until SetLinker gives it a linker.
func NewBackendLinks(tl Appender, opts BackendLinksOptions) *BackendLinks {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.MaxEpisodes <= 0 {
		opts.MaxEpisodes = 1024
	}
	return &BackendLinks{tl: tl, opts: opts, asked: map[string]bool{}}
}

// SetLinker replaces the linker (after a reload changed the targets); nil
// stops linking.
func (b *BackendLinks) SetLinker(l BackendLinker) {
	b.mu.Lock()
	b.linker = l
	b.mu.Unlock()
}

// Observe links every worker of app in stuck that may wait on PostgreSQL
// and was not asked about in this episode, appending one event per backend
// found.
func (b *BackendLinks) Observe(app string, stuck []StuckWorker) {
	b.mu.Lock()
	linker := b.linker
	b.mu.Unlock()
	if linker == nil {
		return
	}
	for _, w := range stuck {
		if !mayWaitOnPostgres(w) || !b.firstAsk(episodeKey(app, w)) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.opts.Timeout)
		target, info, ok := linker(ctx, "", w.LocalPort)
		cancel()
		if ok {
			b.tl.Append(BackendLinkEvent(app, w, target, info, b.opts.Now()))
		}
	}
}

// firstAsk records key and reports whether it is new.
func (b *BackendLinks) firstAsk(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.asked[key] {
		return false
	}
	if len(b.asked) >= b.opts.MaxEpisodes {
		b.asked = map[string]bool{}
	}
	b.asked[key] = true
	return true
}
