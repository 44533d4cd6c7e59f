package steps

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dmstypes "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lsn"
	"github.com/seedrepl/seedrepl/internal/pgcluster"
	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sferr"
)

const (
	adminARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:src-admin"
	replARN  = "arn:aws:secretsmanager:us-east-1:000000000000:secret:src-repl"
)

func sqlInput(id string) Input {
	return Input{MigrationID: id, Mode: ModeSubscription,
		Source: SourceInput{InstanceID: "src", Database: "postgres", AdminSecretARN: adminARN, ReplicationSecretARN: replARN},
		Scope:  scopeOf("public.t", "public.k"),
		Target: TargetInput{InstanceClass: "db.r6g.large", Readers: 1, DBSubnetGroupName: "g", VPCSecurityGroupIDs: []string{"sg-01234567"}},
		Temp:   TempInput{InstanceClass: "db.t4g.medium"}, Verify: VerifyInput{MaxLagBytes: 0, ReplayTimeoutSeconds: 30},
		Subscription: &SubscriptionInput{SSLMode: "disable"}}
}

// startSource makes a local "RDS source" with two tables, a replication
// role, and a cloud that points the source instance at it.
func startSource(t *testing.T, ctx context.Context) (*pgcluster.Cluster, *pgx.Conn, *cloud, map[string]int) {
	t.Helper()
	src, err := pgcluster.Init(ctx, pgcluster.Options{Name: "src", Logf: t.Logf})
	if err != nil {
		t.Fatalf("PostgreSQL is required for this test: %v", err)
	}
	t.Cleanup(src.CleanupFunc(t))
	conn, err := src.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, q := range []string{
		`CREATE TABLE t (id int PRIMARY KEY, v text)`,
		`CREATE TABLE k (a int, b text)`,
		`ALTER TABLE k REPLICA IDENTITY FULL`,
		`INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 500) g`,
		`INSERT INTO k SELECT g % 7, 'k' FROM generate_series(1, 100) g`,
		`CREATE ROLE repl LOGIN REPLICATION PASSWORD 'repl-pw'`,
		`GRANT SELECT ON t, k TO repl`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	ports := map[string]int{"src": src.Port}
	c := newCloud()
	c.endpointOf = func(id string) (string, int32) { return "127.0.0.1", int32(ports[id]) }
	c.addSource("src")
	c.secrets[adminARN] = fmt.Sprintf(`{"username":"postgres","password":%q,"host":"127.0.0.1","port":%d,"dbname":"postgres"}`, src.Password, src.Port)
	c.secrets[replARN] = `{"username":"repl","password":"repl-pw","host":"127.0.0.1","port":5432}`
	return src, conn, c, ports
}

func slotExists(t *testing.T, ctx context.Context, conn *pgx.Conn, slot string) bool {
	t.Helper()
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, slot).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestSubscriptionPathOnRealPostgres runs the SQL steps of the subscription
// path against real clusters: a source under writes, its base backup (the
// snapshot), an RDS-like copy (the temporary instance) and an Aurora-like
// copy (the target), with the cloud fake pointing RDS ids at them. Then
// Rollback releases everything, the slot first of all.
func TestSubscriptionPathOnRealPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	srcCluster, srcConn, c, ports := startSource(t, ctx)
	in := sqlInput("sql1")
	n := NamesFor(in)
	s := c.steps()
	st := State{Input: in}

	st.Preflight = mustRun(t, c, "Preflight", s.Preflight, st)
	if !st.Preflight.OK || len(st.Preflight.Report.Tables) != 2 {
		t.Fatalf("preflight %+v", st.Preflight.Report)
	}
	st.Slot = mustRun(t, c, "CreatePublicationAndSlot", s.CreatePublicationAndSlot, st)
	again := mustRun(t, c, "CreatePublicationAndSlot", s.CreatePublicationAndSlot, st)
	if !st.Slot.Created || !st.Slot.PublicationCreated || again.Created || again.PublicationCreated {
		t.Errorf("slot first %+v, again %+v: want created once", st.Slot, again)
	}
	// Writes between slot and snapshot, the snapshot, writes after it.
	exec := func(q string) {
		t.Helper()
		if _, err := srcConn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`UPDATE t SET v = v || 'x' WHERE id <= 50; DELETE FROM k WHERE a = 3; INSERT INTO t VALUES (1001, 'pre-snapshot')`)
	backup, err := srcCluster.BaseBackup(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = backup.Remove() })
	exec(`INSERT INTO t VALUES (1002, 'post-snapshot'); UPDATE t SET v = 'changed' WHERE id = 7; INSERT INTO k VALUES (42, 'post')`)
	temp, err := pgcluster.RestoreRDS(ctx, backup, pgcluster.Options{Name: "temp", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(temp.CleanupFunc(t))
	aur, err := pgcluster.RestoreAurora(ctx, backup, pgcluster.Options{Name: "aurora", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(aur.CleanupFunc(t))
	ports[n.TempInstance], ports[n.Cluster] = temp.Port, aur.Port
	now := time.Now()
	c.mu.Lock()
	c.snapshots[n.Snapshot] = &rdstypes.DBSnapshot{DBSnapshotIdentifier: aws.String(n.Snapshot), Status: aws.String("available"), TagList: rdsTags(in.MigrationID), SnapshotCreateTime: &now}
	c.instances[n.TempInstance] = &rdstypes.DBInstance{DBInstanceIdentifier: aws.String(n.TempInstance), DBInstanceStatus: aws.String("available"), TagList: rdsTags(in.MigrationID),
		Endpoint: &rdstypes.Endpoint{Address: aws.String("127.0.0.1"), Port: aws.Int32(int32(temp.Port))}}
	c.clusters[n.Cluster] = &rdstypes.DBCluster{DBClusterIdentifier: aws.String(n.Cluster), Status: aws.String("available"), TagList: rdsTags(in.MigrationID),
		Endpoint: aws.String("127.0.0.1"), Port: aws.Int32(int32(aur.Port)), Engine: aws.String("aurora-postgresql")}
	for _, id := range append([]string{n.Writer}, n.Readers...) {
		c.instances[id] = &rdstypes.DBInstance{DBInstanceIdentifier: aws.String(id), DBClusterIdentifier: aws.String(n.Cluster), DBInstanceStatus: aws.String("available"), TagList: rdsTags(in.MigrationID)}
	}
	c.mu.Unlock()

	st.Seed = mustRun(t, c, "ReadSeedLSN", s.ReadSeedLSN, st)
	if st.Seed.LSN != temp.ConsistentLSN {
		t.Fatalf("seed %s, want the copy's consistent point %s", st.Seed.LSN, temp.ConsistentLSN)
	}
	// A wrong seed (Aurora's own LSN) is refused before anything is enabled.
	bad := st
	bad.Seed = &SeedResult{LSN: aur.OwnStartLSN}
	if _, err := run(t, c, "ProveSeed", s.ProveSeed, bad); sferr.Name(sferr.Classify(err)) != "SeedProofFailed" {
		t.Errorf("Aurora's LSN as seed: %v, want SeedProofFailed", err)
	}
	st.Proof = mustRun(t, c, "ProveSeed", s.ProveSeed, st)
	if !st.Proof.Proved || st.Proof.AuroraStartLSN != aur.OwnStartLSN.String() {
		t.Errorf("proof %+v", st.Proof)
	}
	st.Replication = mustRun(t, c, "ConfigureSubscription", s.ConfigureSubscription, st)
	r2 := mustRun(t, c, "ConfigureSubscription", s.ConfigureSubscription, st)
	if !st.Replication.Subscription.Created || !st.Replication.Subscription.Advanced || r2.Subscription.Created || !r2.Subscription.WasEnabled {
		t.Errorf("subscription first %+v again %+v", st.Replication.Subscription, r2.Subscription)
	}
	// The copied publication went; the subscription's connection is the replication role's.
	tgt, err := aur.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close(context.Background())
	var conninfo string
	if err := tgt.QueryRow(ctx, `SELECT subconninfo FROM pg_subscription WHERE subname = $1`, n.Subscription).Scan(&conninfo); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conninfo, "user='repl'") || strings.Contains(conninfo, "user='postgres'") {
		t.Errorf("subscription connects as %q, want the replication role", conninfo)
	}
	exec(`INSERT INTO t VALUES (1003, 'after-enable'); DELETE FROM t WHERE id = 9`)

	deadline := time.Now().Add(60 * time.Second)
	for {
		st.Lag = mustRun(t, c, "VerifyLag", s.VerifyLag, st)
		if st.Lag.Ready {
			break
		}
		if st.Lag.WaitSeconds < MinWait {
			t.Errorf("waitSeconds %d", st.Lag.WaitSeconds)
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag never caught up: %+v", st.Lag)
		}
		time.Sleep(300 * time.Millisecond)
	}
	st.Validation = mustRun(t, c, "Validate", s.Validate, st)
	if !st.Validation.OK || st.Validation.Equal != 2 {
		t.Errorf("validation %+v", st.Validation)
	}
	// A real difference is found and named.
	if _, err := tgt.Exec(ctx, `ALTER SUBSCRIPTION `+n.Subscription+` DISABLE`); err != nil {
		t.Fatal(err)
	}
	if _, err := tgt.Exec(ctx, `DELETE FROM t WHERE id = 11`); err != nil {
		t.Fatal(err)
	}
	st2 := st
	st2.Input.Verify.CompareAttempts = 2
	st2.Input.Verify.ReplayTimeoutSeconds = 10
	st2.Input.Scope = scopeOf("public.t")
	_, err = run(t, c, "Validate", s.Validate, st2)
	if sferr.Name(err) != "ValidationFailed" || !strings.Contains(err.Error(), "public.t") {
		t.Errorf("validate after a target-only delete: %v, want ValidationFailed naming public.t", err)
	}
	if _, err := tgt.Exec(ctx, `ALTER SUBSCRIPTION `+n.Subscription+` ENABLE`); err != nil {
		t.Fatal(err)
	}

	st.Error = &CaughtError{Error: "ValidationFailed", Cause: "test"}
	rb := mustRun(t, c, "Rollback", s.Rollback, st)
	if !rb.SlotGone || slotExists(t, ctx, srcConn, n.Slot) {
		t.Fatalf("slot still on the source after Rollback: %+v", rb)
	}
	for _, want := range []string{"subscription " + n.Subscription, "replication slot " + n.Slot, "publication " + n.Publication, "snapshot " + n.Snapshot, "DB cluster " + n.Cluster} {
		if !containsPrefix(rb.Released, want) {
			t.Errorf("Rollback did not release %q: %+v", want, rb)
		}
	}
	var subs int
	if err := tgt.QueryRow(ctx, `SELECT count(*) FROM pg_subscription`).Scan(&subs); err != nil || subs != 0 {
		t.Errorf("subscriptions left on the target: %d %v", subs, err)
	}
	c.settle()
	rb = mustRun(t, c, "Rollback", s.Rollback, st)
	if len(rb.Released) != 0 || !rb.SlotGone {
		t.Errorf("second Rollback released %v", rb.Released)
	}
	if l := c.leftovers("src"); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
}

func containsPrefix(list []string, p string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// TestRollbackFromPartialStates: after the slot only; after the snapshot;
// in the middle of the Parallel (cluster still creating: it cannot be
// deleted yet); with DMS resources. The slot is dropped on the first run
// whatever else is pending, and a re-run after AWS settles releases the rest.
func TestRollbackFromPartialStates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, srcConn, c, _ := startSource(t, ctx)
	s := c.steps()
	for i, stage := range []string{"slot", "snapshot", "parallel", "dms"} {
		in := sqlInput(fmt.Sprintf("part%d", i))
		if stage == "dms" {
			in.Mode, in.Subscription = ModeDMS, nil
			in.DMS = &DMSInput{ReplicationInstanceClass: "dms.t3.medium", ReplicationSubnetGroupID: "g"}
		}
		n := NamesFor(in)
		st := State{Input: in, Error: &CaughtError{Error: "Terminal", Cause: "injected at " + stage}}
		st.Slot = mustRun(t, c, "CreatePublicationAndSlot", s.CreatePublicationAndSlot, st)
		if stage != "slot" {
			st.Snapshot = mustRun(t, c, "CreateSnapshot", s.CreateSnapshot, st)
		}
		if stage == "parallel" || stage == "dms" {
			c.settle()
			mustRun(t, c, "RestoreAuroraCluster", s.RestoreAuroraCluster, st) // creating: not deletable yet
			mustRun(t, c, "RestoreTempInstance", s.RestoreTempInstance, st)
		}
		if stage == "dms" {
			c.settle()
			c.mu.Lock()
			c.ris[n.DMSInstance] = &dmstypes.ReplicationInstance{ReplicationInstanceIdentifier: aws.String(n.DMSInstance), ReplicationInstanceArn: aws.String("arn:ri"), ReplicationInstanceStatus: aws.String("available")}
			c.endpoints[n.DMSSource] = &dmstypes.Endpoint{EndpointIdentifier: aws.String(n.DMSSource), EndpointArn: aws.String("arn:src")}
			c.tasks[n.DMSTask] = &dmstypes.ReplicationTask{ReplicationTaskIdentifier: aws.String(n.DMSTask), ReplicationTaskArn: aws.String("arn:task"), Status: aws.String("running")}
			c.mu.Unlock()
		}
		// The Catch of a failed Parallel keeps no branch result: Rollback
		// sees only the input, the plan and the error.
		rbState := State{Input: in, Error: st.Error}
		rb, err := run(t, c, "Rollback", s.Rollback, rbState)
		if slotExists(t, ctx, srcConn, n.Slot) || rb == nil || !rb.SlotGone {
			t.Fatalf("%s: slot %s left on the source (err %v, result %+v)", stage, n.Slot, err, rb)
		}
		if stage == "parallel" || stage == "dms" {
			if sferr.Name(err) != "NotReadyYet" {
				t.Errorf("%s: resources in a passing state should make Rollback NotReadyYet, got %v", stage, err)
			}
			for try := 0; err != nil && try < 5; try++ {
				c.settle()
				_, err = run(t, c, "Rollback", s.Rollback, rbState)
			}
		}
		if err != nil {
			t.Errorf("%s: Rollback: %v", stage, err)
		}
		c.settle()
		if l := c.leftovers("src"); len(l) != 0 {
			t.Errorf("%s: left behind %v", stage, l)
		}
		var pubs int
		_ = srcConn.QueryRow(ctx, `SELECT count(*) FROM pg_publication WHERE pubname = $1`, n.Publication).Scan(&pubs)
		if pubs != 0 {
			t.Errorf("%s: publication %s left", stage, n.Publication)
		}
	}
	// The source unreachable: the slot cannot be dropped, Rollback is Transient.
	in := sqlInput("part9")
	c.mu.Lock()
	c.secrets[adminARN] = `{"username":"postgres","password":"wrong"}`
	c.mu.Unlock()
	_, err := run(t, c, "Rollback", s.Rollback, State{Input: in})
	if sferr.Name(sferr.Classify(err)) != "Transient" || !strings.Contains(err.Error(), "could not be dropped") {
		t.Errorf("source unreachable: %v, want Transient naming the slot", err)
	}
}

var _ = lsn.Invalid

func scopeOf(tables ...string) pgops.Scope { return pgops.Scope{Tables: tables} }
