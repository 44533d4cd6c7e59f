package pgcluster

import (
	"context"
	"testing"
	"time"
)

func TestClusterBackupAndRestores(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src, err := Init(ctx, Options{Name: "src", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.CleanupFunc(t))
	conn, err := src.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil || walLevel != "logical" {
		t.Fatalf("wal_level = %q, %v", walLevel, err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t(id int primary key); INSERT INTO t SELECT generate_series(1,100)"); err != nil {
		t.Fatal(err)
	}
	b, err := src.BaseBackup(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Remove() })
	if b.EndLSN <= b.StartLSN {
		t.Fatalf("backup end %s not after start %s", b.EndLSN, b.StartLSN)
	}
	rds, err := RestoreRDS(ctx, b, Options{Name: "rds", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rds.CleanupFunc(t))
	if rds.ConsistentLSN != b.EndLSN {
		t.Errorf("RDS copy consistent at %s, backup end point %s", rds.ConsistentLSN, b.EndLSN)
	}
	rc, err := rds.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	var seed string
	var n int
	if err := rc.QueryRow(ctx, "SELECT rds_tools.logical_seed_lsn()::text, (SELECT count(*) FROM t)").Scan(&seed, &n); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS rds_tools"); err != nil {
		t.Fatalf("the statement run on RDS fails on the local RDS restore: %v", err)
	}
	if seed != rds.ConsistentLSN.String() || n != 100 {
		t.Errorf("seed %s rows %d; want %s and 100", seed, n, rds.ConsistentLSN)
	}
	aur, err := RestoreAurora(ctx, b, Options{Name: "aurora", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(aur.CleanupFunc(t))
	if aur.OwnStartLSN.Sub(b.EndLSN) < 1<<39 {
		t.Errorf("Aurora's own LSN %s is not far from the source's %s", aur.OwnStartLSN, b.EndLSN)
	}
	ac, err := aur.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close(ctx)
	var own string
	if err := ac.QueryRow(ctx, "SELECT aurora_volume_logical_start_lsn()::text, (SELECT count(*) FROM t)").Scan(&own, &n); err != nil {
		t.Fatal(err)
	}
	if own != aur.OwnStartLSN.String() || n != 100 {
		t.Errorf("aurora lsn %s rows %d", own, n)
	}
}
