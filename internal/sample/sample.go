// Package sample builds the rehearsal's sample source database and the live
// writer that keeps changing it: pgbench's tables plus the awkward ones a
// migration must carry exactly (a keyless table with REPLICA IDENTITY FULL,
// TOASTed text with NULLs, a partitioned table, a sequence-driven table).
package sample

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seedrepl/seedrepl/internal/pgcluster"
)

// Schema is the awkward tables' DDL, after pgbench -i.
const Schema = `
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;

CREATE TABLE keyless_events (kind text NOT NULL, n int NOT NULL, payload text);
ALTER TABLE keyless_events REPLICA IDENTITY FULL;

CREATE TABLE docs (id bigint PRIMARY KEY, title text, body text, note text);
ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTENDED;

CREATE TABLE measurements (id bigint NOT NULL, ts date NOT NULL, v numeric(12,3), PRIMARY KEY (id, ts))
  PARTITION BY RANGE (ts);
CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');

CREATE TABLE orders (id bigserial PRIMARY KEY, customer int NOT NULL, amount numeric(12,2), status text NOT NULL DEFAULT 'new',
  created_at timestamptz NOT NULL DEFAULT now());

-- A big random text: hex of md5s compresses only ~2x, so 200 of them are stored out of line (TOAST).
CREATE FUNCTION big_text(int) RETURNS text LANGUAGE sql VOLATILE AS
  $$ SELECT string_agg(md5(random()::text || g::text), '') FROM generate_series(1, $1) g $$;

INSERT INTO keyless_events SELECT 'seed', g % 500, md5(g::text) FROM generate_series(1, 5000) g;
INSERT INTO keyless_events SELECT 'dup', 7, 'same' FROM generate_series(1, 3);
INSERT INTO docs SELECT g, 'doc ' || g, big_text(200), CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || g END FROM generate_series(1, 300) g;
INSERT INTO measurements SELECT g, date '2024-01-01' + (g % 1000), g / 7.0 FROM generate_series(1, 20000) g;
INSERT INTO orders (customer, amount, status) SELECT g % 1000, g / 3.0, 'new' FROM generate_series(1, 10000) g;
`

// Create initialises pgbench at the given scale and the awkward tables in db.
func Create(ctx context.Context, c *pgcluster.Cluster, db string, scale int) error {
	if out, err := c.Pgbench(ctx, db, "-i", "-q", "-s", fmt.Sprint(scale), "--foreign-keys"); err != nil {
		return fmt.Errorf("pgbench -i: %w: %s", err, out)
	}
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("sample schema: %w", err)
	}
	_, err = conn.Exec(ctx, "ANALYZE")
	return err
}

// Writer runs transactions of INSERT, UPDATE and DELETE on every table until stopped.
type Writer struct {
	Commits atomic.Int64
	Retries atomic.Int64 // deadlocks and serialization failures between workers: expected
	Errors  atomic.Int64 // anything else: a bug in the writer or the database

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []string
}

// WriterOptions shape the load.
type WriterOptions struct {
	Workers int           // concurrent connections (default 2)
	Pause   time.Duration // sleep between one worker's transactions
	// Burst and Quiet, when both set, make the load come in waves: Burst of
	// writing, then Quiet with none, like an application's traffic. A
	// comparison can only call a table equal while it holds still.
	Burst, Quiet time.Duration
}

// StartWriter starts the workers, each on its own connection to dsn.
func StartWriter(ctx context.Context, dsn string, o WriterOptions) (*Writer, error) {
	workers, pause := o.Workers, o.Pause
	if workers <= 0 {
		workers = 2
	}
	quiet := func(now time.Time) time.Duration { return 0 }
	if o.Burst > 0 && o.Quiet > 0 {
		epoch, period := time.Now(), o.Burst+o.Quiet
		quiet = func(now time.Time) time.Duration {
			if in := now.Sub(epoch) % period; in >= o.Burst {
				return period - in
			}
			return 0
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Writer{cancel: cancel}
	conns := make([]*pgx.Conn, workers)
	for i := range conns {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			cancel()
			for _, c := range conns[:i] {
				c.Close(context.Background())
			}
			return nil, err
		}
		conns[i] = c
	}
	for i, c := range conns {
		w.wg.Add(1)
		go func(id int, c *pgx.Conn) {
			defer w.wg.Done()
			defer c.Close(context.Background())
			rng := rand.New(rand.NewPCG(uint64(id)+1, uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				if d := quiet(time.Now()); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
					continue
				}
				err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return oneTransaction(ctx, tx, rng) })
				switch {
				case err == nil:
					w.Commits.Add(1)
				case ctx.Err() != nil:
					return
				case isConflict(err):
					w.Retries.Add(1)
				default:
					w.Errors.Add(1)
					w.mu.Lock()
					if len(w.errs) < 10 {
						w.errs = append(w.errs, err.Error())
					}
					w.mu.Unlock()
				}
				if pause > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(pause):
					}
				}
			}
		}(i, c)
	}
	return w, nil
}

// Stop stops the workers and waits until every one has finished its
// transaction: after Stop returns, nothing more is committed.
func (w *Writer) Stop() {
	w.cancel()
	w.wg.Wait()
}

func isConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// FirstErrors returns up to ten unexpected errors the workers met.
func (w *Writer) FirstErrors() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.errs, "; ")
}

func oneTransaction(ctx context.Context, tx pgx.Tx, rng *rand.Rand) error {
	exec := func(sql string, args ...any) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}
	var scale int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM pgbench_branches`).Scan(&scale); err != nil {
		return err
	}
	// pgbench's TPC-B-like transaction.
	aid, tid, bid, delta := rng.IntN(100000*scale)+1, rng.IntN(10*scale)+1, rng.IntN(scale)+1, rng.IntN(10001)-5000
	for _, s := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2`, []any{delta, aid}},
		{`UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2`, []any{delta, tid}},
		{`UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2`, []any{delta, bid}},
		{`INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, now())`, []any{tid, bid, aid, delta}},
	} {
		if err := exec(s.sql, s.args...); err != nil {
			return err
		}
	}
	if rng.IntN(10) == 0 { // keyless history rows also get deleted now and then
		if err := exec(`DELETE FROM pgbench_history WHERE ctid = (SELECT ctid FROM pgbench_history WHERE aid % 7 = $1 LIMIT 1)`, rng.IntN(7)); err != nil {
			return err
		}
	}
	n := rng.IntN(500)
	switch rng.IntN(4) {
	case 0:
		if err := exec(`INSERT INTO keyless_events VALUES ('w', $1, md5(random()::text)), ('w', $1, NULL)`, n); err != nil {
			return err
		}
	case 1:
		if err := exec(`UPDATE keyless_events SET payload = md5(random()::text) WHERE n = $1 AND kind <> 'dup'`, n); err != nil {
			return err
		}
	case 2:
		if err := exec(`DELETE FROM keyless_events WHERE ctid IN (SELECT ctid FROM keyless_events WHERE n = $1 AND kind <> 'dup' LIMIT 2)`, n); err != nil {
			return err
		}
	default:
		if err := exec(`UPDATE keyless_events SET n = n WHERE kind = 'dup'`); err != nil { // identical duplicate rows
			return err
		}
	}
	doc := rng.IntN(400) + 1
	switch rng.IntN(5) {
	case 0: // only the small column: the TOASTed body is "unchanged" in the WAL
		if err := exec(`UPDATE docs SET note = 'edited ' || md5(random()::text) WHERE id = $1`, doc); err != nil {
			return err
		}
	case 1:
		if err := exec(`UPDATE docs SET note = NULL WHERE id = $1`, doc); err != nil {
			return err
		}
	case 2:
		if err := exec(`UPDATE docs SET body = big_text(150 + $2) WHERE id = $1`, doc, rng.IntN(100)); err != nil {
			return err
		}
	case 3:
		if err := exec(`INSERT INTO docs VALUES ($1::bigint, 'doc ' || $1::bigint, big_text(200), NULL) ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title || ' again'`, doc); err != nil {
			return err
		}
	default:
		if err := exec(`DELETE FROM docs WHERE id = $1`, doc); err != nil {
			return err
		}
	}
	mid := int64(rng.IntN(25000) + 1)
	switch rng.IntN(4) {
	case 0:
		if err := exec(`INSERT INTO measurements VALUES ($1, date '2024-01-01' + $2::int, $3) ON CONFLICT DO NOTHING`, mid+100000, rng.IntN(1000), rng.Float64()*1000); err != nil {
			return err
		}
	case 1:
		if err := exec(`UPDATE measurements SET v = v + 1 WHERE id = $1`, mid); err != nil {
			return err
		}
	case 2: // moves the row to another partition
		if err := exec(`UPDATE measurements SET ts = ts + 365 WHERE id = $1 AND ts < date '2026-01-01'`, mid); err != nil {
			return err
		}
	default:
		if err := exec(`DELETE FROM measurements WHERE id = $1`, mid); err != nil {
			return err
		}
	}
	switch rng.IntN(3) {
	case 0:
		return exec(`INSERT INTO orders (customer, amount) VALUES ($1, $2)`, rng.IntN(1000), rng.IntN(100000)/100.0)
	case 1:
		return exec(`UPDATE orders SET status = 'paid', amount = amount + 1 WHERE id = (SELECT max(id) - $1 FROM orders)`, rng.IntN(50))
	default:
		return exec(`DELETE FROM orders WHERE id = (SELECT min(id) + $1 FROM orders)`, rng.IntN(50))
	}
}
