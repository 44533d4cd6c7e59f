// Package proof is the engine proof: on real PostgreSQL, a physical copy of a
// live, busy database is seeded at the LSN an RDS-like restore reports, and
// replication into an Aurora-like copy then makes every table equal, nothing
// lost and nothing duplicated. The negative proofs show the damage a wrong
// seed does, and that the seed proof refuses Aurora's own LSN.
//
// Run it as a demo: go test -v -run TestEngineProof ./test/proof
package proof

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/pgcluster"
	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sample"
)

const (
	db          = "app"
	migrationID = "proof"
	replRole    = "seedrepl_repl"
	replPass    = "local-repl-password"
)

type proofRun struct {
	t     *testing.T
	ctx   context.Context
	start time.Time
}

func (p *proofRun) step(format string, args ...any) {
	p.t.Helper()
	p.t.Logf("[%6.1fs] %s", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// fatal carries an error from must/check to the test's deferred failFast.
type fatal struct{ err error }

func must[T any](v T, err error) T {
	check(err)
	return v
}

func check(err error) {
	if err != nil {
		panic(fatal{err})
	}
}

// failFast turns a must/check panic into t.Fatal; deferred first in a test.
func failFast(t *testing.T) {
	if r := recover(); r != nil {
		if f, ok := r.(fatal); ok {
			t.Fatal(f.err)
		}
		panic(r)
	}
}

func TestEngineProof(t *testing.T) {
	defer failFast(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	p := &proofRun{t: t, ctx: ctx, start: time.Now()}
	opts := func(name string) pgcluster.Options {
		return pgcluster.Options{Name: name, BaseDir: os.Getenv("SEEDREPL_WORKDIR")}
	}

	// ---- the source: pgbench at scale 10 and the awkward tables
	src := must(pgcluster.Init(ctx, opts("source")))
	t.Cleanup(src.CleanupFunc(t))
	admin := must(src.Connect(ctx, "postgres"))
	defer admin.Close(ctx)
	must(admin.Exec(ctx, "CREATE DATABASE "+db))
	if err := sample.Create(ctx, src, db, 10); err != nil {
		t.Fatal(err)
	}
	sconn := must(src.Connect(ctx, db))
	defer sconn.Close(ctx)
	// The subscription connects as a dedicated replication role, never the superuser.
	must(sconn.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s LOGIN REPLICATION PASSWORD '%s'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO %s`,
		replRole, replPass, replRole)))
	p.step("source ready on 127.0.0.1:%d: pgbench scale 10 + keyless, TOAST, partitioned and sequence tables", src.Port)

	scope := pgops.Scope{Schemas: []string{"public"}}
	pre := must(pgops.Preflight(ctx, sconn, pgops.PreflightOptions{Scope: scope}))
	if err := pre.Err(); err != nil {
		t.Fatalf("preflight: %v", err)
	}
	p.step("preflight: PostgreSQL %d, wal_level %s, %d tables in scope, %d warning(s)", pre.ServerVersion, pre.WALLevel, len(pre.Tables), len(pre.Warnings))

	// ---- a live writer for the whole procedure
	writer := must(sample.StartWriter(ctx, src.DSN(db), sample.WriterOptions{Workers: 2, Pause: 2 * time.Millisecond}))
	writerStopped := false
	defer func() {
		if !writerStopped {
			writer.Stop()
		}
	}()

	// ---- publication first, then the slots (the main one and two for the negative proofs)
	pub := pgops.ObjectName(migrationID)
	created := must(pgops.EnsurePublication(ctx, sconn, pub, scope, migrationID))
	if !created {
		t.Fatal("publication was not created")
	}
	if again := must(pgops.EnsurePublication(ctx, sconn, pub, scope, migrationID)); again {
		t.Fatal("second EnsurePublication created again")
	}
	slot := must(pgops.EnsureSlot(ctx, sconn, pub, "pgoutput", pub))
	earlySlot := must(pgops.EnsureSlot(ctx, sconn, "proof_early", "pgoutput", pub))
	lateSlot := must(pgops.EnsureSlot(ctx, sconn, "proof_late", "pgoutput", pub))
	if again := must(pgops.EnsureSlot(ctx, sconn, pub, "pgoutput", pub)); again.Created {
		t.Fatal("second EnsureSlot created again")
	}
	p.step("publication %s and slot %s created; slot consistent point %s", pub, slot.Name, slot.ConsistentPoint)
	time.Sleep(1500 * time.Millisecond) // commits between the slots and the snapshot

	// ---- a transaction open while the snapshot is taken, committed after it
	openTx := must(src.Connect(ctx, db))
	defer openTx.Close(ctx)
	tx := must(openTx.Begin(ctx))
	must(tx.Exec(ctx, `INSERT INTO orders (customer, amount, status) VALUES (-1, 42.00, 'open-during-snapshot')`))
	must(tx.Exec(ctx, `INSERT INTO keyless_events VALUES ('open-during-snapshot', -1, 'x')`))
	must(tx.Exec(ctx, `UPDATE docs SET note = 'open-during-snapshot' WHERE id = (SELECT min(id) FROM docs)`))

	// ---- the snapshot: a base backup while writing
	backup := must(src.BaseBackup(ctx, os.Getenv("SEEDREPL_WORKDIR")))
	t.Cleanup(func() { _ = backup.Remove() })
	p.step("snapshot (base backup) taken while writing: start %s, end %s (%d commits so far)", backup.StartLSN, backup.EndLSN, writer.Commits.Load())
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	openCommit := must(pgops.CurrentWAL(ctx, sconn))
	p.step("the transaction open during the snapshot committed after it (WAL now at %s)", openCommit)

	// ---- RDS-like restore: the seed
	rds := must(pgcluster.RestoreRDS(ctx, backup, opts("rds-temp")))
	rconn := must(rds.Connect(ctx, db))
	seed := must(pgops.ReadSeedLSN(ctx, rconn))
	var openRows int
	check(rconn.QueryRow(ctx, `SELECT count(*) FROM orders WHERE customer = -1`).Scan(&openRows))
	rconn.Close(ctx)
	if err := rds.Remove(); err != nil {
		t.Fatal(err)
	}
	p.step("temporary RDS restore: rds_tools.logical_seed_lsn() = %s (backup end point %s); temp instance deleted", seed, backup.EndLSN)
	if seed != backup.EndLSN {
		t.Errorf("seed %s is not the backup's end point %s", seed, backup.EndLSN)
	}
	if openRows != 0 {
		t.Errorf("the copy holds %d rows of a transaction that had not committed at the snapshot", openRows)
	}
	if seed <= slot.ConsistentPoint || seed <= backup.StartLSN {
		t.Errorf("seed %s not after the slot's consistent point %s and the backup start %s", seed, slot.ConsistentPoint, backup.StartLSN)
	}

	// ---- Aurora-like restore: its own LSN is unrelated, and the proof refuses it
	aurora := must(pgcluster.RestoreAurora(ctx, backup, opts("aurora")))
	t.Cleanup(aurora.CleanupFunc(t))
	tconn := must(aurora.Connect(ctx, db))
	defer tconn.Close(ctx)
	own := must(pgops.AuroraStartLSN(ctx, tconn))
	p.step("Aurora-like restore on 127.0.0.1:%d: aurora_volume_logical_start_lsn() = %s", aurora.Port, own)
	_, err := pgops.ProveSeed(ctx, sconn, slot.Name, own)
	var spe *pgops.SeedProofError
	if !errors.As(err, &spe) || !strings.Contains(spe.Condition, "beyond the source's current WAL position") {
		t.Fatalf("seed proof accepted Aurora's own LSN %s: %v", own, err)
	}
	p.step("seed proof refuses Aurora's own LSN: %v", err)
	proof := must(pgops.ProveSeed(ctx, sconn, slot.Name, seed))
	p.step("seed proof holds: confirmed_flush %s <= seed %s <= current %s; the slot retains %d bytes", proof.ConfirmedFlush, seed, proof.Current, proof.RetainedBytes)

	// ---- subscribe at the seed
	conninfo := connInfo(src.Port, db)
	dropped := must(pgops.PrepareTarget(ctx, tconn, pub))
	spec := pgops.SubscriptionSpec{Name: pub, Publication: pub, Slot: slot.Name, Conninfo: conninfo, Seed: seed}
	st := must(pgops.EnsureSubscription(ctx, tconn, spec))
	if !st.Created || !st.Advanced || !st.Enabled || st.OriginLSN != seed {
		t.Fatalf("subscription state %+v", st)
	}
	if again := must(pgops.EnsureSubscription(ctx, tconn, spec)); !again.WasEnabled || again.Created || again.Advanced {
		t.Fatalf("second EnsureSubscription was not a no-op: %+v", again)
	}
	p.step("subscription %s created disabled, origin %s advanced to %s, enabled (copied objects dropped: %v)", st.Name, st.Origin, seed, dropped)

	// ---- negative proofs on two more Aurora-like copies: a seed before the snapshot point and one after it
	early := must(pgcluster.RestoreAurora(ctx, backup, opts("aurora-early")))
	t.Cleanup(early.CleanupFunc(t))
	econn := must(early.Connect(ctx, db))
	defer econn.Close(ctx)
	earlySeed := earlySlot.ConsistentPoint // a wrong candidate: before the snapshot point
	must(pgops.ProveSeed(ctx, sconn, earlySlot.Name, earlySeed))
	must(pgops.EnsureSubscription(ctx, econn, pgops.SubscriptionSpec{Name: "proof_early", Publication: pub, Slot: earlySlot.Name, Conninfo: conninfo, Seed: earlySeed}))

	time.Sleep(1500 * time.Millisecond) // more commits after the open transaction's
	lateSeed := must(pgops.CurrentWAL(ctx, sconn))
	late := must(pgcluster.RestoreAurora(ctx, backup, opts("aurora-late")))
	t.Cleanup(late.CleanupFunc(t))
	lconn := must(late.Connect(ctx, db))
	defer lconn.Close(ctx)
	must(pgops.ProveSeed(ctx, sconn, lateSlot.Name, lateSeed))
	must(pgops.EnsureSubscription(ctx, lconn, pgops.SubscriptionSpec{Name: "proof_late", Publication: pub, Slot: lateSlot.Name, Conninfo: conninfo, Seed: lateSeed}))
	p.step("negative proofs subscribed: early seed %s (the slot's consistent point), late seed %s (after the snapshot)", earlySeed, lateSeed)

	// ---- catch up while the writer runs, then stop it
	time.Sleep(3 * time.Second)
	lag := must(pgops.SlotLag(ctx, sconn, slot.Name))
	p.step("replicating under load: slot active=%t, lag %d bytes, %d commits so far", lag.Active, lag.Bytes, writer.Commits.Load())
	writer.Stop()
	writerStopped = true
	p.step("writer stopped after %d commits (%d deadlock retries)", writer.Commits.Load(), writer.Retries.Load())
	if writer.Errors.Load() > 0 {
		t.Fatalf("the writer failed %d transactions: %s", writer.Errors.Load(), writer.FirstErrors())
	}
	if writer.Commits.Load() < 100 {
		t.Fatalf("the writer committed only %d transactions: %s", writer.Commits.Load(), writer.FirstErrors())
	}
	waitLagZero(t, ctx, sconn, slot.Name)
	p.step("lag 0 bytes on the main slot")

	// ---- every table equal: count and content hash
	tables := must(pgops.PublishedTables(ctx, sconn, pub))
	if len(tables) < 9 {
		t.Fatalf("only %d published tables: %v", len(tables), tables)
	}
	for _, tb := range tables {
		c := must(pgops.CompareTable(ctx, sconn, tconn, tb, pgops.CompareOptions{
			WaitReplayed: pgops.WaitSlotPast(sconn, slot.Name, time.Minute)}))
		if c.Verdict != pgops.Equal {
			t.Errorf("%s: %s: source %+v target %+v %s", tb, c.Verdict, c.Source, c.Target, c.Detail)
		} else {
			p.step("  %-28s equal: %8d rows, hash %s", tb, c.Target.Rows, c.Target.Hash)
		}
	}
	var got int
	check(tconn.QueryRow(ctx, `SELECT count(*) FROM orders WHERE customer = -1`).Scan(&got))
	if got != 1 {
		t.Errorf("target has %d rows of the transaction open during the snapshot, want 1", got)
	}
	p.step("the transaction open during the snapshot arrived exactly once")

	// ---- negative proof 1: early seed → replays changes the copy already has
	var earlyEnabled bool
	var earlyErrors int64
	deadline := time.Now().Add(time.Minute)
	for {
		check(econn.QueryRow(ctx, `SELECT s.subenabled, coalesce(st.apply_error_count, 0) FROM pg_subscription s
			LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid WHERE s.subname = 'proof_early'`).Scan(&earlyEnabled, &earlyErrors))
		if !earlyEnabled || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	logText, _ := os.ReadFile(early.LogFile())
	if earlyEnabled || earlyErrors == 0 || !strings.Contains(string(logText), "duplicate key value violates unique constraint") {
		t.Errorf("early seed %s: enabled=%t apply errors=%d; want a duplicate-key conflict that disabled the subscription", earlySeed, earlyEnabled, earlyErrors)
	} else {
		line := firstLine(string(logText), "duplicate key value")
		p.step("early seed: replayed changes already in the copy → %s; subscription disabled itself", line)
	}

	// ---- negative proof 2: late seed → loses what committed between the snapshot and it
	// It settles when it has caught up, or when a lost DELETE makes a later
	// INSERT conflict and the subscription disables itself.
	lateState := "caught up"
	for deadline := time.Now().Add(2 * time.Minute); ; {
		l := must(pgops.SlotLag(ctx, sconn, lateSlot.Name))
		var enabled bool
		check(lconn.QueryRow(ctx, `SELECT subenabled FROM pg_subscription WHERE subname = 'proof_late'`).Scan(&enabled))
		if !enabled {
			lateState = "disabled itself: " + firstLine(string(must(os.ReadFile(late.LogFile()))), "ERROR:")
			break
		}
		if l.Bytes == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("late subscription neither caught up nor stopped: %+v", l)
		}
		time.Sleep(250 * time.Millisecond)
	}
	p.step("late seed subscription %s", lateState)
	var lost int
	check(lconn.QueryRow(ctx, `SELECT count(*) FROM orders WHERE customer = -1`).Scan(&lost))
	if lost != 0 {
		t.Errorf("late seed: the transaction committed before it is on the target (%d rows); it should be lost", lost)
	}
	differing := 0
	for _, tb := range tables {
		s := must(pgops.TableDigest(ctx, sconn, tb))
		l := must(pgops.TableDigest(ctx, lconn, tb))
		if s != l {
			differing++
			p.step("  late seed: %-22s differs: source %d rows, target %d rows", tb, s.Rows, l.Rows)
		}
	}
	if differing == 0 {
		t.Errorf("late seed %s lost nothing: every table is equal", lateSeed)
	}
	p.step("late seed: the open transaction's commit is lost and %d of %d tables differ", differing, len(tables))

	// ---- teardown: drop only what this migration made
	if _, err := pgops.DropSubscription(ctx, tconn, pub); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"proof_early", "proof_late"} {
		if _, err := pgops.DropSubscription(ctx, econn, s); err != nil && s == "proof_early" {
			t.Fatal(err)
		}
		if _, err := pgops.DropSubscription(ctx, lconn, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pgops.DropOwnedSlot(ctx, sconn, "proof_early", migrationID); err == nil {
		t.Error("DropOwnedSlot dropped a slot whose name is not the migration's")
	}
	for _, s := range []string{"proof_early", "proof_late"} {
		must(sconn.Exec(ctx, `SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1`, s))
	}
	if ok := must(pgops.DropOwnedSlot(ctx, sconn, slot.Name, migrationID)); !ok {
		t.Error("the migration's slot was not dropped")
	}
	if ok := must(pgops.DropOwnedPublication(ctx, sconn, pub, migrationID)); !ok {
		t.Error("the migration's publication was not dropped")
	}
	var left int
	check(sconn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)`).Scan(&left))
	if left != 0 {
		t.Errorf("%d slots/publications left on the source", left)
	}
	p.step("teardown: subscription, slot and publication dropped; nothing left on the source")
	p.step("LSNs: slot consistent point %s | backup start %s | seed (backup end, copy consistent) %s | Aurora's own %s",
		slot.ConsistentPoint, backup.StartLSN, seed, own)
}

func connInfo(port int, db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s user=%s password=%s sslmode=disable application_name=seedrepl",
		port, db, replRole, url.QueryEscape(replPass))
}

func waitLagZero(t *testing.T, ctx context.Context, conn *pgx.Conn, slot string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last pgops.Lag
	for time.Now().Before(deadline) {
		l, err := pgops.SlotLag(ctx, conn, slot)
		if err != nil {
			t.Fatal(err)
		}
		if l.Bytes == 0 {
			return
		}
		last = l
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("slot %s never caught up: %+v", slot, last)
}

func firstLine(text, needle string) string {
	for _, l := range strings.Split(text, "\n") {
		if i := strings.Index(l, needle); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	return ""
}
