package pgmon

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// BackendInfo describes the backend serving one client connection: what a
// Gunicorn worker blocked on its database socket is waiting for.
type BackendInfo struct {
	PID           int    // the backend's pid (data for the event timeline, never a label)
	Database      string // datname
	State         string // one of States()
	WaitEventType string // "" when not waiting
	WaitEvent     string
	// QueryAge is the time since the current (or, when idle, the last)
	// query started; TransactionAge since the transaction started (0
	// outside one); StateAge since the state last changed.
	QueryAge       time.Duration
	TransactionAge time.Duration
	StateAge       time.Duration
	// Blocked: pg_blocking_pids reports sessions this one waits for.
	Blocked   bool
	BlockedBy []Blocker
	// Query is set only when TargetConfig.QueryText is true: the query
	// text with literals replaced by '?' (StripLiterals), cut to
	// QueryTextMaxBytes; QueryTruncated tells whether it was cut.
	Query          string
	QueryTruncated bool
}

// Blocker is a session a backend waits for.
type Blocker struct {
	PID            int    // 0 for a prepared transaction
	State          string // one of States(), or "prepared transaction"
	QueryAge       time.Duration
	TransactionAge time.Duration
	StateAge       time.Duration
}

// StatePreparedTransaction is Blocker.State for a lock held by a prepared
// (two-phase) transaction, which pg_blocking_pids reports as pid 0.
const StatePreparedTransaction = "prepared transaction"

// linkSQL finds the backend whose client socket is (address, port): one
// row per blocker, or one row with NULL blocker columns. The query column
// is selected only when queryText is true.
func linkSQL(withAddr, queryText bool) string {
	query := `NULL::text`
	if queryText {
		query = `left(a.query, 65536)`
	}
	where := `a.client_port = $1::int`
	if withAddr {
		where += ` AND a.client_addr = $2::text::inet`
	}
	return `SELECT a.pid, a.datname::text, a.state, a.wait_event_type, a.wait_event,
       EXTRACT(EPOCH FROM now() - a.query_start)::float8,
       EXTRACT(EPOCH FROM now() - a.xact_start)::float8,
       EXTRACT(EPOCH FROM now() - a.state_change)::float8,
       ` + query + `,
       bp.pid, b.state,
       EXTRACT(EPOCH FROM now() - b.query_start)::float8,
       EXTRACT(EPOCH FROM now() - b.xact_start)::float8,
       EXTRACT(EPOCH FROM now() - b.state_change)::float8
FROM pg_stat_activity a
LEFT JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS bp(pid) ON true
LEFT JOIN pg_stat_activity b ON b.pid = bp.pid
WHERE ` + where + ` AND a.pid <> pg_backend_pid()
ORDER BY a.pid, bp.pid`
}

// LinkBackend finds the backend serving the client connection whose local
// end is clientAddr:clientPort (as the /proc sampler sees a worker's
// socket; the server records that as client_addr/client_port). clientAddr
// may be IPv4, IPv6 or IPv4-mapped IPv6; "" matches by port alone and then
// fails with ErrAmbiguous if several hosts use that port. It returns false
// without error when no such backend exists (the query finished, the
// connection goes through a pooler, or it is a Unix socket), and false
// with ErrInsufficientPrivilege when the role cannot see other roles'
// client ports.
func (t *Target) LinkBackend(ctx context.Context, clientAddr string, clientPort int) (BackendInfo, bool, error) {
	if clientPort <= 0 || clientPort > 65535 {
		return BackendInfo{}, false, &Error{Target: t.cfg.Name, Op: opLink, Kind: ErrInvalid,
			detail: fmt.Sprintf("client port %d out of range", clientPort)}
	}
	addr := ""
	if clientAddr != "" {
		a, err := netip.ParseAddr(clientAddr)
		if err != nil {
			return BackendInfo{}, false, &Error{Target: t.cfg.Name, Op: opLink, Kind: ErrInvalid,
				detail: "client address is not an IP address"}
		}
		addr = a.Unmap().WithZone("").String()
	}
	ctx, cancel := t.h.bound(ctx)
	defer cancel()

	var (
		info       BackendInfo
		found      bool
		privileged bool
	)
	err := t.h.do(ctx, opLink, func(ctx context.Context, conn *pgx.Conn) error {
		info, found = BackendInfo{}, false
		privileged = t.privileged
		args := []any{clientPort}
		if addr != "" {
			args = append(args, addr)
		}
		rows, err := conn.Query(ctx, t.linkSQL[addr != ""], args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var (
			pid                                   int32
			datname, state, waitType, wait, query pgtype.Text
			qAge, xAge, sAge, bqAge, bxAge, bsAge pgtype.Float8
			bpid                                  pgtype.Int4
			bstate                                pgtype.Text
		)
		for rows.Next() {
			if err := rows.Scan(&pid, &datname, &state, &waitType, &wait, &qAge, &xAge, &sAge, &query,
				&bpid, &bstate, &bqAge, &bxAge, &bsAge); err != nil {
				return err
			}
			if found && int(pid) != info.PID {
				return &Error{Target: t.cfg.Name, Op: opLink, Kind: ErrAmbiguous,
					detail: fmt.Sprintf("client port %d is used by more than one backend; pass the client address", clientPort)}
			}
			if !found {
				found = true
				info = BackendInfo{
					PID: int(pid), Database: sanitize(datname.String), State: stateLabel(state),
					WaitEventType: waitType.String, WaitEvent: wait.String,
					QueryAge: seconds(qAge), TransactionAge: seconds(xAge), StateAge: seconds(sAge),
				}
				if t.cfg.QueryText && query.Valid {
					info.Query, info.QueryTruncated = TruncateUTF8(StripLiterals(query.String), t.cfg.QueryTextMaxBytes)
				}
			}
			if bpid.Valid {
				b := Blocker{PID: int(bpid.Int32), State: stateLabel(bstate),
					QueryAge: seconds(bqAge), TransactionAge: seconds(bxAge), StateAge: seconds(bsAge)}
				if b.PID == 0 {
					b.State = StatePreparedTransaction
				}
				info.BlockedBy = append(info.BlockedBy, b)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return BackendInfo{}, false, err
	}
	info.Blocked = len(info.BlockedBy) > 0
	if !found && !privileged {
		return BackendInfo{}, false, &Error{Target: t.cfg.Name, Op: opLink, Kind: ErrInsufficientPrivilege,
			detail: "other roles' client ports are invisible; GRANT pg_read_all_stats to the exporter's role"}
	}
	return info, found, nil
}
