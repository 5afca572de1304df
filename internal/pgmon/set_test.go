package pgmon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/pgtest"
)

// TestSetScrapeLinkClose: a Set scrapes a refused, a real and a hung
// server together under one deadline (up 0, 1, 0, in target order), links
// a client port past the target that fails, and closes everything.
func TestSetScrapeLinkClose(t *testing.T) {
	t.Parallel()
	c := sharedPG.Get(t)
	c.CreateDatabase(t, "t_set")
	hung := pgtest.NewBlackhole(t)
	mk := func(name, dsn string) *Target {
		tg, err := NewTarget(TargetConfig{Name: name, DSN: dsn}, nil)
		require.NoError(t, err)
		return tg
	}
	free, err := pgtest.FreePort()
	require.NoError(t, err)
	set := &Set{Targets: []*Target{
		mk("refused", fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=x sslmode=disable", free)),
		mk("main", c.DSN(pgtest.Superuser)),
		mk("hung", fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=x sslmode=disable", hung.Port())),
	}}
	require.Equal(t, 3, set.Len())

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	start := time.Now()
	snap, err := set.Scrape(ctx)
	cancel()
	require.NoError(t, err, "a target that is down is a snapshot, not an error")
	require.Less(t, time.Since(start), 5*time.Second, "the hung target held the scrape far past its deadline")
	require.Len(t, snap.Targets, 3)
	require.Equal(t, "refused", snap.Targets[0].Target)
	require.ErrorIs(t, snap.Targets[0].Err, ErrUnreachable)
	require.Equal(t, "main", snap.Targets[1].Target)
	mustUp(t, snap.Targets[1])
	require.Equal(t, "hung", snap.Targets[2].Target)
	require.False(t, snap.Targets[2].Up)
	require.ErrorIs(t, snap.Targets[2].Err, ErrTimeout)
	require.Empty(t, snap.Bouncers)

	conn := c.Connect(t, c.DSNFor(pgtest.Superuser, "t_set"))
	async(t, conn, "SELECT pg_sleep(30)")
	c.WaitFor(t, 10*time.Second, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = 't_set' AND wait_event = 'PgSleep')")
	addr, port := localPort(conn)
	lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
	target, info, ok := set.LinkBackend(lctx, addr, port)
	lcancel()
	require.True(t, ok)
	require.Equal(t, "main", target, "the refused target fails and the next one answers")
	require.Equal(t, int(conn.PgConn().PID()), info.PID)

	set.Close()
	for _, tg := range set.Targets {
		_, err = tg.Scrape(context.Background())
		require.ErrorIs(t, err, ErrClosed, tg.Name())
	}
}

// A nil Set is empty: nothing to scrape, link or close.
func TestNilSet(t *testing.T) {
	var set *Set
	require.Zero(t, set.Len())
	snap, err := set.Scrape(context.Background())
	require.NoError(t, err)
	require.Empty(t, snap.Targets)
	_, _, ok := set.LinkBackend(context.Background(), "127.0.0.1", 5432)
	require.False(t, ok)
	set.Close()
}

// A target whose scrape panics is reported down with an error, and the
// other targets are still scraped: a scrape never takes the process down.
func TestSetScrapeRecoversPanic(t *testing.T) {
	broken := &Target{cfg: TargetConfig{Name: "broken"}} // no connection holder: Scrape dereferences nil
	brokenBouncer := &Bouncer{cfg: BouncerConfig{Name: "broken-pgb"}}
	set := &Set{Targets: []*Target{broken}, Bouncers: []*Bouncer{brokenBouncer}}
	snap, err := set.Scrape(context.Background())
	require.ErrorContains(t, err, "scrape panicked")
	require.Equal(t, "broken", snap.Targets[0].Target)
	require.False(t, snap.Targets[0].Up)
	require.Error(t, snap.Targets[0].Err)
	require.Equal(t, "broken-pgb", snap.Bouncers[0].Target)
	require.False(t, snap.Bouncers[0].Up)
}
