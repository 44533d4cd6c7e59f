package pgops

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lsn"
	"github.com/seedrepl/seedrepl/internal/pgcluster"
)

func newCluster(t *testing.T, name string, settings map[string]string) (*pgcluster.Cluster, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	c, err := pgcluster.Init(ctx, pgcluster.Options{Name: name, Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CleanupFunc(t))
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return c, conn
}

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func codes(ps []Problem) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Code+"@"+p.Object)
	}
	return strings.Join(out, " ")
}

func TestOperations(t *testing.T) {
	ctx := context.Background()
	c, conn := newCluster(t, "ops", nil)
	exec(t, conn, `CREATE TABLE public.keyed (id int PRIMARY KEY, v text);
		CREATE TABLE public.keyless (v text);
		CREATE TABLE public.keyless_full (v text); ALTER TABLE public.keyless_full REPLICA IDENTITY FULL;
		CREATE TABLE public.searchable (id int PRIMARY KEY, doc tsvector);
		CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY);
		CREATE VIEW public.v AS SELECT 1 AS x;
		INSERT INTO keyed SELECT g, 'v' || g FROM generate_series(1, 100) g;
		SELECT lo_create(0);`)

	t.Run("lsn through pgx", func(t *testing.T) {
		want := lsn.MustParse("16/B374D848")
		var text string
		if err := conn.QueryRow(ctx, `SELECT $1::pg_lsn::text`, want).Scan(&text); err != nil || text != "16/B374D848" {
			t.Fatalf("encode: %q %v", text, err)
		}
		var got lsn.LSN
		if err := conn.QueryRow(ctx, `SELECT '16/B374D848'::pg_lsn`).Scan(&got); err != nil || got != want {
			t.Fatalf("scan pg_lsn: %s %v", got, err)
		}
	})

	t.Run("leaf partitions", func(t *testing.T) {
		exec(t, conn, `CREATE TABLE m (id int, ts date, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
			CREATE TABLE m_a PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
			CREATE TABLE m_b PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY RANGE (ts);
			CREATE TABLE m_b1 PARTITION OF m_b FOR VALUES FROM ('2025-01-01') TO ('2025-07-01')`)
		parts, err := LeafPartitions(ctx, conn, Table{"public", "m"})
		if err != nil || len(parts) != 2 || parts[0].Name != "m_a" || parts[1].Name != "m_b1" {
			t.Fatalf("leaf partitions of m: %v %v", parts, err)
		}
		if parts, err := LeafPartitions(ctx, conn, Table{"public", "keyed"}); err != nil || len(parts) != 0 {
			t.Fatalf("plain table: %v %v", parts, err)
		}
		exec(t, conn, `DROP TABLE m`)
	})

	t.Run("preflight subscription path", func(t *testing.T) {
		r, err := Preflight(ctx, conn, PreflightOptions{Scope: Scope{Tables: []string{"public.keyed", "public.keyless", "public.keyless_full", "public.v", "public.scratch", "public.nope"}}})
		if err != nil {
			t.Fatal(err)
		}
		got := codes(r.Problems)
		for _, want := range []string{"no-replica-identity@public.keyless", "cannot-publish@public.v", "unlogged-table@public.scratch", "table-missing@public.nope"} {
			if !strings.Contains(got, want) {
				t.Errorf("problems %q lack %q", got, want)
			}
		}
		for _, unwanted := range []string{"@public.keyed", "@public.keyless_full"} {
			if strings.Contains(got, unwanted) {
				t.Errorf("problems %q flag %s", got, unwanted)
			}
		}
		if !strings.Contains(codes(r.Warnings), "large-objects") || !strings.Contains(codes(r.Warnings), "unbounded-wal-retention") {
			t.Errorf("warnings %q", codes(r.Warnings))
		}
		var pe *PreflightError
		if !errors.As(r.Err(), &pe) || !strings.Contains(pe.Error(), "fix:") {
			t.Errorf("Err() = %v", r.Err())
		}
	})

	t.Run("preflight DMS path", func(t *testing.T) {
		r, err := Preflight(ctx, conn, PreflightOptions{Scope: Scope{Tables: []string{"public.keyed", "public.keyless_full", "public.searchable"}}, ForDMS: true})
		if err != nil {
			t.Fatal(err)
		}
		got := codes(r.Problems)
		if !strings.Contains(got, "dms-no-primary-key@public.keyless_full") || !strings.Contains(got, "dms-unsupported-type@public.searchable.doc") {
			t.Errorf("DMS problems %q", got)
		}
		if strings.Contains(got, "@public.keyed") {
			t.Errorf("keyed table flagged: %q", got)
		}
	})

	t.Run("preflight wal_level", func(t *testing.T) {
		_, rc := newCluster(t, "replica-level", map[string]string{"wal_level": "replica"})
		exec(t, rc, `CREATE TABLE t (id int PRIMARY KEY)`)
		r, err := Preflight(ctx, rc, PreflightOptions{Scope: Scope{Schemas: []string{"public"}}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(codes(r.Problems), "wal-level") || !strings.Contains(r.Err().Error(), "rds.logical_replication") {
			t.Errorf("problems %q", codes(r.Problems))
		}
	})

	t.Run("publication and slot are idempotent and adopt only what matches", func(t *testing.T) {
		scope := Scope{Tables: []string{"public.keyed"}}
		if _, err := EnsureSlot(ctx, conn, "m1_slot", "pgoutput", "m1_pub"); err == nil || !strings.Contains(err.Error(), "before the slot") {
			t.Fatalf("slot before publication: %v", err)
		}
		for i, want := range []bool{true, false} {
			created, err := EnsurePublication(ctx, conn, "m1_pub", scope, "m1")
			if err != nil || created != want {
				t.Fatalf("EnsurePublication #%d: created=%t err=%v", i+1, created, err)
			}
		}
		var ce *ConflictError
		if _, err := EnsurePublication(ctx, conn, "m1_pub", scope, "other"); !errors.As(err, &ce) {
			t.Fatalf("another migration adopted the publication: %v", err)
		}
		s1, err := EnsureSlot(ctx, conn, "m1_slot", "pgoutput", "m1_pub")
		if err != nil || !s1.Created || s1.ConsistentPoint == 0 {
			t.Fatalf("create slot: %+v %v", s1, err)
		}
		s2, err := EnsureSlot(ctx, conn, "m1_slot", "pgoutput", "m1_pub")
		if err != nil || s2.Created || s2.ConfirmedFlush != s1.ConsistentPoint {
			t.Fatalf("adopt slot: %+v %v", s2, err)
		}
		if _, err := EnsureSlot(ctx, conn, "m1_slot", "test_decoding", ""); !errors.As(err, &ce) || !strings.Contains(err.Error(), "plugin") {
			t.Fatalf("plugin mismatch adopted: %v", err)
		}
		if _, err := EnsureSlot(ctx, conn, "Bad-Name", "pgoutput", "m1_pub"); err == nil {
			t.Fatal("invalid slot name accepted")
		}
		exec(t, conn, `SELECT pg_drop_replication_slot('m1_slot')`)
		exec(t, conn, `DROP PUBLICATION m1_pub`)
	})

	t.Run("slot creation waits boundedly for open transactions and names them", func(t *testing.T) {
		blocker, err := c.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer blocker.Close(ctx)
		tx, err := blocker.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO keyed VALUES (1000, 'open')`); err != nil {
			t.Fatal(err)
		}
		old := SlotCreateTimeout
		SlotCreateTimeout = 2 * time.Second
		defer func() { SlotCreateTimeout = old }()
		work, err := c.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer work.Close(ctx)
		_, err = EnsureSlot(ctx, work, "blocked_slot", "test_decoding", "")
		if !errors.Is(err, ErrTransient) || !strings.Contains(err.Error(), "still open: pid") {
			t.Fatalf("blocked slot creation: %v", err)
		}
		_ = tx.Rollback(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'blocked_slot'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a half-made slot was left: %d %v", n, err)
		}
	})

	t.Run("seed proof names the failed condition", func(t *testing.T) {
		if _, err := EnsurePublication(ctx, conn, "seedrepl_m2", Scope{Tables: []string{"public.keyed"}}, "m2"); err != nil {
			t.Fatal(err)
		}
		s, err := EnsureSlot(ctx, conn, "seedrepl_m2", "pgoutput", "seedrepl_m2")
		if err != nil {
			t.Fatal(err)
		}
		exec(t, conn, `INSERT INTO keyed VALUES (2000, 'after slot')`)
		cur, err := CurrentWAL(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			slot string
			seed lsn.LSN
			want string
		}{
			{"no_such_slot", s.ConsistentPoint, "does not exist"},
			{"seedrepl_m2", 0, "0/0"},
			{"seedrepl_m2", s.ConsistentPoint - 1, "before the slot's confirmed_flush_lsn"},
			{"seedrepl_m2", cur + 1<<40, "beyond the source's current WAL position"},
		}
		for _, tc := range cases {
			_, err := ProveSeed(ctx, conn, tc.slot, tc.seed)
			var spe *SeedProofError
			if !errors.As(err, &spe) || !strings.Contains(spe.Condition, tc.want) {
				t.Errorf("ProveSeed(%s, %s) = %v, want condition %q", tc.slot, tc.seed, err, tc.want)
			}
		}
		p, err := ProveSeed(ctx, conn, "seedrepl_m2", s.ConsistentPoint)
		if err != nil || p.Seed != s.ConsistentPoint || p.RetainedBytes < 0 {
			t.Fatalf("valid seed refused: %+v %v", p, err)
		}
		// Teardown drops only what is this migration's.
		var noe *NotOwnedError
		if _, err := DropOwnedSlot(ctx, conn, "seedrepl_m2", "m3"); !errors.As(err, &noe) {
			t.Errorf("dropped another migration's slot: %v", err)
		}
		if _, err := DropOwnedPublication(ctx, conn, "seedrepl_m2", "m3"); !errors.As(err, &noe) {
			t.Errorf("dropped another migration's publication: %v", err)
		}
		for i := 0; i < 2; i++ {
			dropped, err := DropOwnedSlot(ctx, conn, "seedrepl_m2", "m2")
			if err != nil || dropped != (i == 0) {
				t.Errorf("DropOwnedSlot #%d: %t %v", i+1, dropped, err)
			}
			dropped, err = DropOwnedPublication(ctx, conn, "seedrepl_m2", "m2")
			if err != nil || dropped != (i == 0) {
				t.Errorf("DropOwnedPublication #%d: %t %v", i+1, dropped, err)
			}
		}
	})

	t.Run("compare: equal, different, unverified", func(t *testing.T) {
		_, tgt := newCluster(t, "cmp-target", nil)
		exec(t, tgt, `CREATE TABLE public.keyed (id int PRIMARY KEY, v text)`)
		exec(t, conn, `DELETE FROM keyed WHERE id > 100`)
		exec(t, tgt, `INSERT INTO keyed SELECT g, 'v' || g FROM generate_series(100, 1, -1) g`) // other physical order
		tb := Table{"public", "keyed"}
		noWait := func(context.Context, lsn.LSN) error { return nil }
		r, err := CompareTable(ctx, conn, tgt, tb, CompareOptions{WaitReplayed: noWait})
		if err != nil || r.Verdict != Equal || r.Source.Rows != 100 {
			t.Fatalf("equal tables: %+v %v", r, err)
		}
		exec(t, tgt, `UPDATE keyed SET v = 'changed' WHERE id = 50`)
		r, err = CompareTable(ctx, conn, tgt, tb, CompareOptions{WaitReplayed: noWait})
		if err != nil || r.Verdict != Different || r.Source.Rows != r.Target.Rows {
			t.Fatalf("same count, other content: %+v %v", r, err)
		}
		n := 0
		moving := func(context.Context, lsn.LSN) error { // the source changes every round
			n++
			_, err := conn.Exec(ctx, `UPDATE keyed SET v = v || 'x' WHERE id = 1`)
			return err
		}
		r, err = CompareTable(ctx, conn, tgt, tb, CompareOptions{WaitReplayed: moving, Attempts: 3, Pause: time.Millisecond})
		if err != nil || r.Verdict != Unverified || r.Attempts != 3 {
			t.Fatalf("moving source: %+v %v", r, err)
		}
	})
}

func TestRecordEnd(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"0/3002018", "0/3002000"}, // after a short page header
		{"0/4000028", "0/4000000"}, // after a long (segment) header
		{"0/3002100", "0/3002100"}, // mid-page: unchanged
		{"0/3002000", "0/3002000"},
	} {
		if got := recordEnd(lsn.MustParse(c.in)); got.String() != c.want {
			t.Errorf("recordEnd(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}
