package localcloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	dmstypes "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lsn"
	"github.com/seedrepl/seedrepl/internal/pgcluster"
)

type clients struct {
	rds *rds.Client
	dms *dms.Client
	sm  *secretsmanager.Client
	cfg aws.Config
}

// newClients builds the SDK's clients with static dummy credentials and the
// server as the base endpoint (what AWS_ENDPOINT_URL_<SERVICE> does for a
// Lambda that loads its config from the environment).
func newClients(t *testing.T, srv *Server) clients {
	t.Helper()
	cfg := aws.Config{
		Region: Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local", Source: "test"}, nil
		}),
		BaseEndpoint: aws.String(srv.URL()),
	}
	return clients{rds: rds.NewFromConfig(cfg), dms: dms.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg), cfg: cfg}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func execSQL(t *testing.T, ctx context.Context, conn *pgx.Conn, sqls ...string) {
	t.Helper()
	for _, s := range sqls {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func queryString(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s *string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if s == nil {
		return "<null>"
	}
	return *s
}

// waitFor polls cond until it returns true or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last: %s)", timeout, what, last)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

const tableHash = `SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY %s), '')) FROM %s t`

// TestLocalCloud runs the whole seeded path against the local cloud with the
// real SDK clients: errors and throttling, a snapshot taken while a writer
// runs, an Aurora-like cluster restore with two instances, an RDS-like
// temporary restore giving the seed, an engine "upgrade", parameters, tags, a
// DMS CDC task from the seed to equality, and teardown.
func TestLocalCloud(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	begin := time.Now()
	stateDir := t.TempDir()
	srv, err := New(Options{Delays: FastDelays(), StateDir: stateDir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = srv.Close()
		}
	})
	c := newClients(t, srv)

	// The source: a sample cluster the program made.
	src, err := pgcluster.Init(ctx, pgcluster.Options{Name: "src", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.CleanupFunc(t))
	sc, err := src.Connect(ctx, "app")
	if err != nil {
		// the database does not exist yet
		pc, err := src.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, ctx, pc, "CREATE DATABASE app")
		pc.Close(ctx)
		if sc, err = src.Connect(ctx, "app"); err != nil {
			t.Fatal(err)
		}
	}
	defer sc.Close(context.Background())
	execSQL(t, ctx, sc,
		`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int)`,
		`CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL, n int NOT NULL)`,
		`ALTER TABLE docs ALTER body SET STORAGE EXTERNAL`, // out of line, uncompressed: a real TOAST pointer
		`CREATE TABLE keyless (a int, b text)`,
		`CREATE TABLE skipme (id int PRIMARY KEY)`,
		`INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 200) g`,
		`INSERT INTO docs SELECT g, repeat(md5(g::text), 200), 0 FROM generate_series(1, 5) g`,
		`INSERT INTO keyless VALUES (1, 'one'), (2, 'two'), (3, 'three')`,
		`CREATE TABLE trunc (id int PRIMARY KEY)`,
		`INSERT INTO trunc VALUES (1), (2), (3)`,
		// The slot exists before the snapshot, so WAL is retained.
		`SELECT pg_create_logical_replication_slot('dms_slot', 'test_decoding')`,
		// A second slot, for a task started at a wrong (too early) position.
		`SELECT pg_create_logical_replication_slot('early_slot', 'test_decoding')`)
	secretARN := SecretARN("seedrepl/source")
	if err := srv.AddSourceInstance(ctx, "prod-db", src, SourceOptions{SecretARN: secretARN, DBName: "app"}); err != nil {
		t.Fatal(err)
	}

	// A writer that keeps committing while the snapshot is taken: the seed
	// must split its commits exactly (no duplicates, no gaps on the target).
	var nextID atomic.Int64
	nextID.Store(1000)
	stopWriter := make(chan struct{})
	var writerWG sync.WaitGroup
	writerWG.Add(1)
	go func() {
		defer writerWG.Done()
		wc, err := src.Connect(ctx, "app")
		if err != nil {
			t.Error(err)
			return
		}
		defer wc.Close(context.Background())
		for {
			select {
			case <-stopWriter:
				return
			default:
			}
			id := nextID.Add(1)
			if _, err := wc.Exec(ctx, "INSERT INTO items VALUES ($1::int, 'w' || $1::int, 0)", id); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	stopWriterOnce := sync.OnceFunc(func() { close(stopWriter); writerWG.Wait() })
	defer stopWriterOnce()

	t.Run("errors map to the SDK's typed faults", func(t *testing.T) {
		_, err := c.rds.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("nope")})
		var nf *rdstypes.DBInstanceNotFoundFault
		if !errors.As(err, &nf) || httpStatus(err) != 404 {
			t.Errorf("DescribeDBInstances(nope): %T %v (status %d)", err, err, httpStatus(err))
		}
		_, err = c.rds.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String("nope")})
		var snf *rdstypes.DBSnapshotNotFoundFault
		if !errors.As(err, &snf) {
			t.Errorf("DescribeDBSnapshots(nope): %T %v", err, err)
		}
		_, err = c.rds.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String("nope")})
		var cnf *rdstypes.DBClusterNotFoundFault
		if !errors.As(err, &cnf) {
			t.Errorf("DescribeDBClusters(nope): %T %v", err, err)
		}
		_, err = c.rds.CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{DBInstanceIdentifier: aws.String("nope"), DBSnapshotIdentifier: aws.String("s")})
		if !errors.As(err, &nf) {
			t.Errorf("CreateDBSnapshot(instance nope): %T %v", err, err)
		}
		_, err = c.rds.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("w"), DBClusterIdentifier: aws.String("nope"),
			Engine: aws.String("aurora-postgresql"), DBInstanceClass: aws.String("db.r6g.large")})
		if !errors.As(err, &cnf) {
			t.Errorf("CreateDBInstance(cluster nope): %T %v", err, err)
		}
		_, err = c.rds.DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String("prod-db"), SkipFinalSnapshot: aws.Bool(true)})
		var bad *rdstypes.InvalidDBInstanceStateFault
		if !errors.As(err, &bad) || httpStatus(err) != 400 {
			t.Errorf("DeleteDBInstance(source): %T %v", err, err)
		}
		_, err = c.rds.RestoreDBClusterFromSnapshot(ctx, &rds.RestoreDBClusterFromSnapshotInput{DBClusterIdentifier: aws.String("x"),
			SnapshotIdentifier: aws.String("nope"), Engine: aws.String("aurora-postgresql")})
		if !errors.As(err, &snf) {
			t.Errorf("RestoreDBClusterFromSnapshot(nope): %T %v", err, err)
		}
		_, err = c.dms.DescribeReplicationTasks(ctx, &dms.DescribeReplicationTasksInput{Filters: []dmstypes.Filter{{Name: aws.String("replication-task-id"), Values: []string{"nope"}}}})
		var rnf *dmstypes.ResourceNotFoundFault
		if !errors.As(err, &rnf) {
			t.Errorf("DescribeReplicationTasks(nope): %T %v", err, err)
		}
		_, err = c.dms.StartReplicationTask(ctx, &dms.StartReplicationTaskInput{ReplicationTaskArn: aws.String("arn:aws:dms:us-east-1:000000000000:task:NOPE"),
			StartReplicationTaskType: dmstypes.StartReplicationTaskTypeValueStartReplication})
		if !errors.As(err, &rnf) {
			t.Errorf("StartReplicationTask(nope): %T %v", err, err)
		}
		_, err = c.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("nope")})
		var snf2 *smtypes.ResourceNotFoundException
		if !errors.As(err, &snf2) {
			t.Errorf("GetSecretValue(nope): %T %v", err, err)
		}
		out, err := c.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretARN)})
		if err != nil || !strings.Contains(aws.ToString(out.SecretString), `"engine":"postgres"`) ||
			!strings.Contains(aws.ToString(out.SecretString), fmt.Sprintf(`"port":%d`, src.Port)) {
			t.Errorf("GetSecretValue(source secret): %v %v", err, out)
		}
	})

	t.Run("injected throttling is retryable", func(t *testing.T) {
		srv.InjectFault("DescribeDBInstances", "Throttling", 2)
		start := time.Now()
		out, err := c.rds.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("prod-db")})
		if err != nil || len(out.DBInstances) != 1 {
			t.Fatalf("with two throttles and the standard retryer (3 attempts): %v", err)
		}
		if n := srv.PendingFaults("DescribeDBInstances"); n != 0 {
			t.Errorf("%d injected faults left: the SDK did not retry", n)
		}
		t.Logf("two throttles absorbed by the SDK's retries in %s", time.Since(start).Round(time.Millisecond))
		srv.InjectFault("CreateDBSnapshot", "Throttling", 1)
		once := rds.NewFromConfig(c.cfg, func(o *rds.Options) { o.RetryMaxAttempts = 1 })
		_, err = once.CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{DBInstanceIdentifier: aws.String("prod-db"), DBSnapshotIdentifier: aws.String("snap1")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "Throttling" {
			t.Fatalf("want a Throttling API error, got %T %v", err, err)
		}
		if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) != aws.TrueTernary ||
			retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) != aws.TrueTernary {
			t.Errorf("Throttling is not classified as a retryable throttle by the SDK")
		}
		srv.InjectFault("DescribeReplicationTasks", "ThrottlingException", 1)
		_, err = dms.NewFromConfig(c.cfg, func(o *dms.Options) { o.RetryMaxAttempts = 1 }).DescribeReplicationTasks(ctx, &dms.DescribeReplicationTasksInput{})
		if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" || retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) != aws.TrueTernary {
			t.Errorf("DMS ThrottlingException: %T %v", err, err)
		}
	})

	var snapARN string
	t.Run("snapshot", func(t *testing.T) {
		start := time.Now()
		out, err := c.rds.CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{DBInstanceIdentifier: aws.String("prod-db"),
			DBSnapshotIdentifier: aws.String("snap1"), Tags: []rdstypes.Tag{{Key: aws.String("migration"), Value: aws.String("m1")}}})
		if err != nil {
			t.Fatal(err)
		}
		snapARN = aws.ToString(out.DBSnapshot.DBSnapshotArn)
		if st := aws.ToString(out.DBSnapshot.Status); st != "creating" || snapARN != "arn:aws:rds:us-east-1:000000000000:snapshot:snap1" {
			t.Errorf("new snapshot: status %q arn %q", st, snapARN)
		}
		_, err = c.rds.CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{DBInstanceIdentifier: aws.String("prod-db"), DBSnapshotIdentifier: aws.String("snap1")})
		var exists *rdstypes.DBSnapshotAlreadyExistsFault
		if !errors.As(err, &exists) {
			t.Errorf("second CreateDBSnapshot: %T %v", err, err)
		}
		if di, err := c.rds.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("prod-db")}); err != nil ||
			aws.ToString(di.DBInstances[0].DBInstanceStatus) != "backing-up" {
			t.Errorf("source while snapshotting: %v %v", err, di)
		}
		w := rds.NewDBSnapshotAvailableWaiter(c.rds, func(o *rds.DBSnapshotAvailableWaiterOptions) {
			o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
		})
		got, err := w.WaitForOutput(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String("snap1")}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		sn := got.DBSnapshots[0]
		if aws.ToInt32(sn.PercentProgress) != 100 || aws.ToString(sn.Engine) != "postgres" || len(sn.TagList) != 1 {
			t.Errorf("available snapshot: %+v", sn)
		}
		t.Logf("snapshot available after %s (SDK waiter)", time.Since(start).Round(time.Millisecond))
	})
	if snapARN == "" {
		t.FailNow()
	}

	var seed lsn.LSN
	var auroraPort int
	t.Run("restores", func(t *testing.T) {
		start := time.Now()
		// Aurora: cluster from the snapshot's ARN, then a writer and a reader.
		rc, err := c.rds.RestoreDBClusterFromSnapshot(ctx, &rds.RestoreDBClusterFromSnapshotInput{DBClusterIdentifier: aws.String("aurora-m1"),
			SnapshotIdentifier: aws.String(snapARN), Engine: aws.String("aurora-postgresql"),
			Tags: []rdstypes.Tag{{Key: aws.String("migration"), Value: aws.String("m1")}}})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(rc.DBCluster.Status) != "creating" || rc.DBCluster.Endpoint != nil {
			t.Errorf("new cluster: %+v", rc.DBCluster)
		}
		_, err = c.rds.RestoreDBClusterFromSnapshot(ctx, &rds.RestoreDBClusterFromSnapshotInput{DBClusterIdentifier: aws.String("aurora-m1"),
			SnapshotIdentifier: aws.String(snapARN), Engine: aws.String("aurora-postgresql")})
		var cexists *rdstypes.DBClusterAlreadyExistsFault
		if !errors.As(err, &cexists) {
			t.Errorf("second RestoreDBClusterFromSnapshot: %T %v", err, err)
		}
		for _, id := range []string{"aurora-m1-writer", "aurora-m1-reader-1"} {
			if _, err := c.rds.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String(id),
				DBClusterIdentifier: aws.String("aurora-m1"), Engine: aws.String("aurora-postgresql"), DBInstanceClass: aws.String("db.r6g.large")}); err != nil {
				t.Fatal(err)
			}
		}
		_, err = c.rds.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("aurora-m1-writer"),
			DBClusterIdentifier: aws.String("aurora-m1"), Engine: aws.String("aurora-postgresql"), DBInstanceClass: aws.String("db.r6g.large")})
		var iexists *rdstypes.DBInstanceAlreadyExistsFault
		if !errors.As(err, &iexists) {
			t.Errorf("second CreateDBInstance: %T %v", err, err)
		}
		// RDS: the temporary instance from the snapshot's id.
		if _, err := c.rds.RestoreDBInstanceFromDBSnapshot(ctx, &rds.RestoreDBInstanceFromDBSnapshotInput{DBInstanceIdentifier: aws.String("temp-m1"),
			DBSnapshotIdentifier: aws.String("snap1"), DBInstanceClass: aws.String("db.t3.micro")}); err != nil {
			t.Fatal(err)
		}
		_, err = c.rds.DeleteDBCluster(ctx, &rds.DeleteDBClusterInput{DBClusterIdentifier: aws.String("aurora-m1"), SkipFinalSnapshot: aws.Bool(true)})
		var cstate *rdstypes.InvalidDBClusterStateFault
		if !errors.As(err, &cstate) {
			t.Errorf("DeleteDBCluster with instances: %T %v", err, err)
		}

		waitOpts := func(o *rds.DBInstanceAvailableWaiterOptions) {
			o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
		}
		if err := rds.NewDBClusterAvailableWaiter(c.rds, func(o *rds.DBClusterAvailableWaiterOptions) {
			o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
		}).Wait(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String("aurora-m1")}, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		members, err := rds.NewDBInstanceAvailableWaiter(c.rds, waitOpts).WaitForOutput(ctx, &rds.DescribeDBInstancesInput{
			Filters: []rdstypes.Filter{{Name: aws.String("db-cluster-id"), Values: []string{"aurora-m1"}}}}, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		temp, err := rds.NewDBInstanceAvailableWaiter(c.rds, waitOpts).WaitForOutput(ctx, &rds.DescribeDBInstancesInput{
			DBInstanceIdentifier: aws.String("temp-m1")}, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("cluster, 2 instances and the temporary instance available after %s", time.Since(start).Round(time.Millisecond))
		if len(members.DBInstances) != 2 {
			t.Fatalf("cluster members: %d", len(members.DBInstances))
		}
		dc, err := c.rds.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String("aurora-m1")})
		if err != nil {
			t.Fatal(err)
		}
		cl := dc.DBClusters[0]
		auroraPort = int(aws.ToInt32(cl.Port))
		if len(cl.DBClusterMembers) != 2 || !aws.ToBool(cl.DBClusterMembers[0].IsClusterWriter) || aws.ToBool(cl.DBClusterMembers[1].IsClusterWriter) ||
			aws.ToString(cl.Endpoint) != "127.0.0.1" || auroraPort == 0 || aws.ToString(cl.Engine) != "aurora-postgresql" || len(cl.TagList) != 1 {
			t.Errorf("cluster: %+v", cl)
		}
		for _, m := range members.DBInstances {
			if m.Endpoint == nil || int(aws.ToInt32(m.Endpoint.Port)) != auroraPort || aws.ToString(m.DBClusterIdentifier) != "aurora-m1" {
				t.Errorf("member %s endpoint %+v", aws.ToString(m.DBInstanceIdentifier), m.Endpoint)
			}
		}
		// The writer's endpoint accepts the source's credentials (the copy
		// keeps its roles) and holds the data and Aurora's function.
		wc, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/app?sslmode=disable", src.Password, auroraPort))
		if err != nil {
			t.Fatal(err)
		}
		defer wc.Close(context.Background())
		var own lsn.LSN
		var docs int
		if err := wc.QueryRow(ctx, "SELECT aurora_volume_logical_start_lsn(), (SELECT count(*) FROM docs)").Scan(&own, &docs); err != nil || docs != 5 {
			t.Fatalf("aurora: %v docs=%d", err, docs)
		}
		// The temporary instance gives the seed.
		ti := temp.DBInstances[0]
		tc, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres:%s@%s:%d/app?sslmode=disable", src.Password,
			aws.ToString(ti.Endpoint.Address), aws.ToInt32(ti.Endpoint.Port)))
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close(context.Background())
		execSQL(t, ctx, tc, "CREATE EXTENSION IF NOT EXISTS rds_tools") // a no-op locally, needed on RDS
		if err := tc.QueryRow(ctx, "SELECT rds_tools.logical_seed_lsn()").Scan(&seed); err != nil {
			t.Fatal(err)
		}
		var confirmed, current lsn.LSN
		if err := sc.QueryRow(ctx, "SELECT confirmed_flush_lsn, pg_current_wal_lsn() FROM pg_replication_slots WHERE slot_name = 'dms_slot'").Scan(&confirmed, &current); err != nil {
			t.Fatal(err)
		}
		if !(confirmed <= seed && seed <= current) || own.Sub(current) < 1<<39 {
			t.Errorf("seed %s: want confirmed_flush %s <= seed <= current %s; Aurora's own LSN %s far away", seed, confirmed, current, own)
		}
		// Aurora and the temporary instance hold the same rows: both are the snapshot.
		h1 := queryString(t, ctx, wc, fmt.Sprintf(tableHash, "id", "items"))
		h2 := queryString(t, ctx, tc, fmt.Sprintf(tableHash, "id", "items"))
		if h1 != h2 {
			t.Errorf("aurora and temp differ: %s vs %s", h1, h2)
		}
		t.Logf("seed %s (slot confirmed %s, source now %s), Aurora's own LSN %s", seed, confirmed, current, own)

		// Tear the temporary instance down as the workflow does.
		if _, err := c.rds.DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String("temp-m1"), SkipFinalSnapshot: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		tc.Close(ctx)
		if err := rds.NewDBInstanceDeletedWaiter(c.rds, func(o *rds.DBInstanceDeletedWaiterOptions) {
			o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
		}).Wait(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("temp-m1")}, time.Minute); err != nil {
			t.Fatal(err)
		}
	})
	if seed == 0 || auroraPort == 0 {
		t.FailNow()
	}

	t.Run("upgrade, parameters, tags", func(t *testing.T) {
		_, err := c.rds.ModifyDBCluster(ctx, &rds.ModifyDBClusterInput{DBClusterIdentifier: aws.String("aurora-m1"), EngineVersion: aws.String("16.4"), ApplyImmediately: aws.Bool(true)})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterCombination" {
			t.Errorf("major upgrade without AllowMajorVersionUpgrade: %v", err)
		}
		out, err := c.rds.ModifyDBCluster(ctx, &rds.ModifyDBClusterInput{DBClusterIdentifier: aws.String("aurora-m1"), EngineVersion: aws.String("16.4"),
			AllowMajorVersionUpgrade: aws.Bool(true), ApplyImmediately: aws.Bool(true)})
		if err != nil || aws.ToString(out.DBCluster.Status) != "upgrading" {
			t.Fatalf("ModifyDBCluster: %v %+v", err, out)
		}
		waitFor(t, "upgrade", 30*time.Second, func() (bool, string) {
			d, err := c.rds.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String("aurora-m1")})
			if err != nil {
				return false, err.Error()
			}
			cl := d.DBClusters[0]
			return aws.ToString(cl.Status) == "available" && aws.ToString(cl.EngineVersion) == "16.4", aws.ToString(cl.Status) + " " + aws.ToString(cl.EngineVersion)
		})
		di, err := c.rds.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("prod-db")})
		if err != nil {
			t.Fatal(err)
		}
		group := aws.ToString(di.DBInstances[0].DBParameterGroups[0].DBParameterGroupName)
		ps, err := c.rds.DescribeDBParameters(ctx, &rds.DescribeDBParametersInput{DBParameterGroupName: aws.String(group)})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range ps.Parameters {
			if aws.ToString(p.ParameterName) == "rds.logical_replication" {
				found = aws.ToString(p.ParameterValue) == "1"
			}
		}
		if !found {
			t.Errorf("rds.logical_replication is not 1 in %s: %+v", group, ps.Parameters)
		}
		_, err = c.rds.DescribeDBParameters(ctx, &rds.DescribeDBParametersInput{DBParameterGroupName: aws.String("nope")})
		var pnf *rdstypes.DBParameterGroupNotFoundFault
		if !errors.As(err, &pnf) {
			t.Errorf("DescribeDBParameters(nope): %T %v", err, err)
		}
		arn := "arn:aws:rds:us-east-1:000000000000:cluster:aurora-m1"
		if _, err := c.rds.AddTagsToResource(ctx, &rds.AddTagsToResourceInput{ResourceName: aws.String(arn),
			Tags: []rdstypes.Tag{{Key: aws.String("owner"), Value: aws.String("dba")}, {Key: aws.String("migration"), Value: aws.String("m1b")}}}); err != nil {
			t.Fatal(err)
		}
		lt, err := c.rds.ListTagsForResource(ctx, &rds.ListTagsForResourceInput{ResourceName: aws.String(arn)})
		if err != nil || len(lt.TagList) != 2 {
			t.Fatalf("tags: %v %+v", err, lt)
		}
		_, err = c.rds.ListTagsForResource(ctx, &rds.ListTagsForResourceInput{ResourceName: aws.String("arn:aws:rds:us-east-1:000000000000:db:nope")})
		var nf *rdstypes.DBInstanceNotFoundFault
		if !errors.As(err, &nf) {
			t.Errorf("ListTagsForResource(nope): %T %v", err, err)
		}
	})

	t.Run("DMS CDC from the seed", func(t *testing.T) {
		start := time.Now()
		srcEP, err := c.dms.CreateEndpoint(ctx, &dms.CreateEndpointInput{EndpointIdentifier: aws.String("m1-source"),
			EndpointType: dmstypes.ReplicationEndpointTypeValueSource, EngineName: aws.String("postgres"),
			PostgreSQLSettings: &dmstypes.PostgreSQLSettings{SecretsManagerSecretId: aws.String(secretARN),
				SecretsManagerAccessRoleArn: aws.String("arn:aws:iam::000000000000:role/dms-secrets"), DatabaseName: aws.String("app"),
				SlotName: aws.String("dms_slot"), PluginName: dmstypes.PluginNameValueTestDecoding}})
		if err != nil {
			t.Fatal(err)
		}
		tgtEP, err := c.dms.CreateEndpoint(ctx, &dms.CreateEndpointInput{EndpointIdentifier: aws.String("m1-target"),
			EndpointType: dmstypes.ReplicationEndpointTypeValueTarget, EngineName: aws.String("aurora-postgresql"),
			ServerName: aws.String("127.0.0.1"), Port: aws.Int32(int32(auroraPort)), Username: aws.String("postgres"),
			Password: aws.String(src.Password), DatabaseName: aws.String("app")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.dms.CreateEndpoint(ctx, &dms.CreateEndpointInput{EndpointIdentifier: aws.String("m1-target"),
			EndpointType: dmstypes.ReplicationEndpointTypeValueTarget, EngineName: aws.String("aurora-postgresql"),
			ServerName: aws.String("127.0.0.1"), Port: aws.Int32(1), Username: aws.String("x"), DatabaseName: aws.String("app")})
		var dup *dmstypes.ResourceAlreadyExistsFault
		if !errors.As(err, &dup) {
			t.Errorf("duplicate endpoint: %T %v", err, err)
		}
		ri, err := c.dms.CreateReplicationInstance(ctx, &dms.CreateReplicationInstanceInput{ReplicationInstanceIdentifier: aws.String("m1-ri"),
			ReplicationInstanceClass: aws.String("dms.t3.medium")})
		if err != nil {
			t.Fatal(err)
		}
		riArn := aws.ToString(ri.ReplicationInstance.ReplicationInstanceArn)
		waitFor(t, "replication instance", 30*time.Second, func() (bool, string) {
			d, err := c.dms.DescribeReplicationInstances(ctx, &dms.DescribeReplicationInstancesInput{
				Filters: []dmstypes.Filter{{Name: aws.String("replication-instance-arn"), Values: []string{riArn}}}})
			if err != nil {
				return false, err.Error()
			}
			st := aws.ToString(d.ReplicationInstances[0].ReplicationInstanceStatus)
			return st == "available", st
		})
		mappings := `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"1","object-locator":{"schema-name":"public","table-name":"%"},"rule-action":"include"},` +
			`{"rule-type":"selection","rule-id":"2","rule-name":"2","object-locator":{"schema-name":"public","table-name":"skipme"},"rule-action":"exclude"}]}`
		task, err := c.dms.CreateReplicationTask(ctx, &dms.CreateReplicationTaskInput{ReplicationTaskIdentifier: aws.String("m1-cdc"),
			SourceEndpointArn: srcEP.Endpoint.EndpointArn, TargetEndpointArn: tgtEP.Endpoint.EndpointArn, ReplicationInstanceArn: aws.String(riArn),
			MigrationType: dmstypes.MigrationTypeValueCdc, TableMappings: aws.String(mappings), CdcStartPosition: aws.String(seed.String())})
		if err != nil {
			t.Fatal(err)
		}
		taskArn := aws.ToString(task.ReplicationTask.ReplicationTaskArn)
		taskStatus := func() (string, *dmstypes.ReplicationTask) {
			d, err := c.dms.DescribeReplicationTasks(ctx, &dms.DescribeReplicationTasksInput{
				Filters: []dmstypes.Filter{{Name: aws.String("replication-task-arn"), Values: []string{taskArn}}}})
			if err != nil {
				return err.Error(), nil
			}
			return aws.ToString(d.ReplicationTasks[0].Status), &d.ReplicationTasks[0]
		}
		if st := aws.ToString(task.ReplicationTask.Status); st != "creating" {
			t.Errorf("new task status %q", st)
		}
		waitFor(t, "task ready", 30*time.Second, func() (bool, string) { st, _ := taskStatus(); return st == "ready", st })
		if _, err := c.dms.StartReplicationTask(ctx, &dms.StartReplicationTaskInput{ReplicationTaskArn: aws.String(taskArn),
			StartReplicationTaskType: dmstypes.StartReplicationTaskTypeValueStartReplication}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "task running", 30*time.Second, func() (bool, string) {
			st, rt := taskStatus()
			if rt != nil && aws.ToString(rt.LastFailureMessage) != "" {
				return false, st + ": " + aws.ToString(rt.LastFailureMessage)
			}
			return st == "running", st
		})
		// Changes of every kind while the task runs (and the writer too).
		execSQL(t, ctx, sc,
			`UPDATE items SET qty = qty + 100 WHERE id <= 20`,
			`UPDATE items SET id = 100000 WHERE id = 21`, // a key change: old-key in the stream
			`DELETE FROM items WHERE id BETWEEN 30 AND 39`,
			`UPDATE docs SET n = n + 1`, // body untouched: unchanged-toast-datum
			`INSERT INTO keyless VALUES (4, 'four')`,
			`UPDATE keyless SET b = 'changed' WHERE a = 1`, // DMS drops it
			`DELETE FROM keyless WHERE a = 2`,              // DMS drops it
			`INSERT INTO skipme VALUES (1)`,                // excluded by the mappings
			`BEGIN; INSERT INTO items VALUES (200001, 'tx', 1); UPDATE items SET name = 'in tx' WHERE id = 200001; COMMIT`,
			`TRUNCATE trunc`)
		// Cut the applier's replication connection: it reconnects and resumes
		// after its last applied commit.
		time.Sleep(300 * time.Millisecond)
		execSQL(t, ctx, sc, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'dms_slot' AND active`)
		execSQL(t, ctx, sc, `UPDATE items SET qty = -1 WHERE id BETWEEN 50 AND 60`, `DELETE FROM items WHERE id = 61`)
		stopWriterOnce()
		var endLSN lsn.LSN
		if err := sc.QueryRow(ctx, "SELECT pg_current_wal_lsn()").Scan(&endLSN); err != nil {
			t.Fatal(err)
		}
		tc, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/app?sslmode=disable", src.Password, auroraPort))
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close(context.Background())
		for _, tbl := range []struct{ name, order string }{{"items", "id"}, {"docs", "id"}} {
			q := fmt.Sprintf(tableHash, tbl.order, tbl.name)
			want := queryString(t, ctx, sc, q)
			waitFor(t, tbl.name+" equal on the target", 60*time.Second, func() (bool, string) {
				got := queryString(t, ctx, tc, q)
				if st, rt := taskStatus(); st != "running" {
					t.Fatalf("task %s: %s", st, aws.ToString(rt.LastFailureMessage))
				}
				return got == want, got + " vs " + want
			})
		}
		// The slot's confirmed position follows the applied commits.
		waitFor(t, "slot confirmed_flush_lsn to pass the writes", 30*time.Second, func() (bool, string) {
			var confirmed lsn.LSN
			if err := sc.QueryRow(ctx, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'dms_slot'").Scan(&confirmed); err != nil {
				return false, err.Error()
			}
			return confirmed >= endLSN, confirmed.String() + " < " + endLSN.String()
		})
		t.Logf("items and docs equal on the target, slot caught up, %s after CreateEndpoint; %d rows written by the concurrent writer",
			time.Since(start).Round(time.Millisecond), nextID.Load()-1000)

		// DMS's keyless semantics: the INSERT arrived; the UPDATE and DELETE did not.
		if got := queryString(t, ctx, tc, `SELECT string_agg(a || ':' || b, ',' ORDER BY a) FROM keyless`); got != "1:one,2:two,3:three,4:four" {
			t.Errorf("keyless on the target = %s, want 1:one,2:two,3:three,4:four", got)
		}
		if got := queryString(t, ctx, tc, `SELECT count(*)::text FROM skipme`); got != "0" {
			t.Errorf("excluded table skipme has %s rows on the target", got)
		}
		if got := queryString(t, ctx, tc, `SELECT count(*)::text FROM trunc`); got != "0" {
			t.Errorf("TRUNCATE not applied: trunc has %s rows on the target", got)
		}
		counters, ok := srv.TaskCounters(taskArn)
		if !ok || counters.Skipped != 2 || counters.Reconnects < 1 || counters.NoRowChanged != 0 {
			t.Errorf("task counters: skipped %d (want 2), reconnects %d (want >= 1), no-row changes %d (want 0): %+v",
				counters.Skipped, counters.Reconnects, counters.NoRowChanged, counters)
		}
		ts, err := c.dms.DescribeTableStatistics(ctx, &dms.DescribeTableStatisticsInput{ReplicationTaskArn: aws.String(taskArn)})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ts.TableStatistics {
			if aws.ToString(s.TableName) == "keyless" {
				if s.Inserts != 1 || aws.ToInt64(s.AppliedInserts) != 1 || s.Updates != 1 || aws.ToInt64(s.AppliedUpdates) != 0 ||
					s.Deletes != 1 || aws.ToInt64(s.AppliedDeletes) != 0 {
					t.Errorf("keyless statistics: %+v", s)
				}
			}
			if aws.ToString(s.TableName) == "skipme" {
				t.Errorf("statistics for the excluded table skipme")
			}
		}
		if _, rt := taskStatus(); rt == nil || rt.ReplicationTaskStats == nil || rt.ReplicationTaskStats.ElapsedTimeMillis <= 0 {
			t.Errorf("task stats: %+v", rt)
		}

		_, err = c.dms.DeleteReplicationTask(ctx, &dms.DeleteReplicationTaskInput{ReplicationTaskArn: aws.String(taskArn)})
		var badState *dmstypes.InvalidResourceStateFault
		if !errors.As(err, &badState) {
			t.Errorf("DeleteReplicationTask while running: %T %v", err, err)
		}
		if _, err := c.dms.StopReplicationTask(ctx, &dms.StopReplicationTaskInput{ReplicationTaskArn: aws.String(taskArn)}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "task stopped", 30*time.Second, func() (bool, string) { st, _ := taskStatus(); return st == "stopped", st })
		if got := queryString(t, ctx, sc, `SELECT active::text FROM pg_replication_slots WHERE slot_name = 'dms_slot'`); got != "false" {
			t.Errorf("slot still active after StopReplicationTask")
		}
		if _, err := c.dms.DeleteReplicationTask(ctx, &dms.DeleteReplicationTaskInput{ReplicationTaskArn: aws.String(taskArn)}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "task gone", 30*time.Second, func() (bool, string) {
			_, err := c.dms.DescribeReplicationTasks(ctx, &dms.DescribeReplicationTasksInput{
				Filters: []dmstypes.Filter{{Name: aws.String("replication-task-arn"), Values: []string{taskArn}}}})
			var nf *dmstypes.ResourceNotFoundFault
			return errors.As(err, &nf), fmt.Sprint(err)
		})
	})

	t.Run("a seed before the snapshot point fails the task loudly", func(t *testing.T) {
		var early lsn.LSN
		if err := sc.QueryRow(ctx, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'early_slot'").Scan(&early); err != nil {
			t.Fatal(err)
		}
		if early >= seed {
			t.Fatalf("early slot at %s is not before the seed %s", early, seed)
		}
		srcEP, err := c.dms.CreateEndpoint(ctx, &dms.CreateEndpointInput{EndpointIdentifier: aws.String("early-source"),
			EndpointType: dmstypes.ReplicationEndpointTypeValueSource, EngineName: aws.String("postgres"),
			ServerName: aws.String("127.0.0.1"), Port: aws.Int32(int32(src.Port)), Username: aws.String("postgres"), Password: aws.String(src.Password),
			DatabaseName: aws.String("app"), PostgreSQLSettings: &dmstypes.PostgreSQLSettings{SlotName: aws.String("early_slot")}})
		if err != nil {
			t.Fatal(err)
		}
		eps, err := c.dms.DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{Filters: []dmstypes.Filter{{Name: aws.String("endpoint-id"), Values: []string{"m1-target"}}}})
		if err != nil || len(eps.Endpoints) != 1 {
			t.Fatalf("DescribeEndpoints: %v", err)
		}
		ris, err := c.dms.DescribeReplicationInstances(ctx, &dms.DescribeReplicationInstancesInput{})
		if err != nil || len(ris.ReplicationInstances) != 1 {
			t.Fatalf("DescribeReplicationInstances: %v", err)
		}
		task, err := c.dms.CreateReplicationTask(ctx, &dms.CreateReplicationTaskInput{ReplicationTaskIdentifier: aws.String("early-cdc"),
			SourceEndpointArn: srcEP.Endpoint.EndpointArn, TargetEndpointArn: eps.Endpoints[0].EndpointArn,
			ReplicationInstanceArn: ris.ReplicationInstances[0].ReplicationInstanceArn, MigrationType: dmstypes.MigrationTypeValueCdc,
			TableMappings:    aws.String(`{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"1","object-locator":{"schema-name":"public","table-name":"items"},"rule-action":"include"}]}`),
			CdcStartPosition: aws.String(early.String())})
		if err != nil {
			t.Fatal(err)
		}
		arn := task.ReplicationTask.ReplicationTaskArn
		var last *dmstypes.ReplicationTask
		waitFor(t, "early task ready", 30*time.Second, func() (bool, string) {
			d, err := c.dms.DescribeReplicationTasks(ctx, &dms.DescribeReplicationTasksInput{Filters: []dmstypes.Filter{{Name: aws.String("replication-task-arn"), Values: []string{*arn}}}})
			if err != nil {
				return false, err.Error()
			}
			return aws.ToString(d.ReplicationTasks[0].Status) == "ready", aws.ToString(d.ReplicationTasks[0].Status)
		})
		if _, err := c.dms.StartReplicationTask(ctx, &dms.StartReplicationTaskInput{ReplicationTaskArn: arn,
			StartReplicationTaskType: dmstypes.StartReplicationTaskTypeValueStartReplication}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "early task failed", 30*time.Second, func() (bool, string) {
			d, err := c.dms.DescribeReplicationTasks(ctx, &dms.DescribeReplicationTasksInput{Filters: []dmstypes.Filter{{Name: aws.String("replication-task-arn"), Values: []string{*arn}}}})
			if err != nil {
				return false, err.Error()
			}
			last = &d.ReplicationTasks[0]
			return aws.ToString(last.Status) == "failed", aws.ToString(last.Status)
		})
		if msg := aws.ToString(last.LastFailureMessage); !strings.Contains(msg, "duplicate key") {
			t.Errorf("failure message %q does not name the key conflict", msg)
		}
		t.Logf("task from %s (before the seed %s) failed: %s", early, seed, aws.ToString(last.LastFailureMessage))
		if _, err := c.dms.DeleteReplicationTask(ctx, &dms.DeleteReplicationTaskInput{ReplicationTaskArn: arn}); err != nil {
			t.Fatal(err)
		}
		execSQL(t, ctx, sc, `SELECT pg_drop_replication_slot('early_slot')`)
	})

	t.Run("a task whose source cannot be reached fails instead of starting forever", func(t *testing.T) {
		srcEP, err := c.dms.CreateEndpoint(ctx, &dms.CreateEndpointInput{EndpointIdentifier: aws.String("tls-source"),
			EndpointType: dmstypes.ReplicationEndpointTypeValueSource, EngineName: aws.String("postgres"),
			ServerName: aws.String("127.0.0.1"), Port: aws.Int32(int32(src.Port)), Username: aws.String("postgres"), Password: aws.String(src.Password),
			DatabaseName: aws.String("app"), SslMode: dmstypes.DmsSslModeValueRequire, // the local source has no TLS
			PostgreSQLSettings: &dmstypes.PostgreSQLSettings{SlotName: aws.String("no_such_slot_needed")}})
		if err != nil {
			t.Fatal(err)
		}
		eps, err := c.dms.DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{Filters: []dmstypes.Filter{{Name: aws.String("endpoint-id"), Values: []string{"m1-target"}}}})
		if err != nil || len(eps.Endpoints) != 1 {
			t.Fatalf("DescribeEndpoints: %v", err)
		}
		ris, err := c.dms.DescribeReplicationInstances(ctx, &dms.DescribeReplicationInstancesInput{})
		if err != nil || len(ris.ReplicationInstances) != 1 {
			t.Fatalf("DescribeReplicationInstances: %v", err)
		}
		task, err := c.dms.CreateReplicationTask(ctx, &dms.CreateReplicationTaskInput{ReplicationTaskIdentifier: aws.String("tls-cdc"),
			SourceEndpointArn: srcEP.Endpoint.EndpointArn, TargetEndpointArn: eps.Endpoints[0].EndpointArn,
			ReplicationInstanceArn: ris.ReplicationInstances[0].ReplicationInstanceArn, MigrationType: dmstypes.MigrationTypeValueCdc,
			TableMappings:    aws.String(`{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"1","object-locator":{"schema-name":"public","table-name":"items"},"rule-action":"include"}]}`),
			CdcStartPosition: aws.String(seed.String())})
		if err != nil {
			t.Fatal(err)
		}
		arn := task.ReplicationTask.ReplicationTaskArn
		describe := func() *dmstypes.ReplicationTask {
			d, err := c.dms.DescribeReplicationTasks(ctx, &dms.DescribeReplicationTasksInput{Filters: []dmstypes.Filter{{Name: aws.String("replication-task-arn"), Values: []string{*arn}}}})
			if err != nil {
				t.Fatal(err)
			}
			return &d.ReplicationTasks[0]
		}
		waitFor(t, "tls task ready", 30*time.Second, func() (bool, string) { s := aws.ToString(describe().Status); return s == "ready", s })
		if _, err := c.dms.StartReplicationTask(ctx, &dms.StartReplicationTaskInput{ReplicationTaskArn: arn,
			StartReplicationTaskType: dmstypes.StartReplicationTaskTypeValueStartReplication}); err != nil {
			t.Fatal(err)
		}
		var last *dmstypes.ReplicationTask
		waitFor(t, "tls task failed", 60*time.Second, func() (bool, string) { last = describe(); s := aws.ToString(last.Status); return s == "failed", s })
		if msg := aws.ToString(last.LastFailureMessage); !strings.Contains(msg, "TLS") {
			t.Errorf("failure message %q does not name the TLS refusal", msg)
		}
		if _, err := c.dms.DeleteReplicationTask(ctx, &dms.DeleteReplicationTaskInput{ReplicationTaskArn: arn}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("teardown", func(t *testing.T) {
		for _, id := range []string{"aurora-m1-writer", "aurora-m1-reader-1"} {
			if _, err := c.rds.DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(id), SkipFinalSnapshot: aws.Bool(true)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.rds.DeleteDBCluster(ctx, &rds.DeleteDBClusterInput{DBClusterIdentifier: aws.String("aurora-m1"), SkipFinalSnapshot: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		if err := rds.NewDBClusterDeletedWaiter(c.rds, func(o *rds.DBClusterDeletedWaiterOptions) {
			o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
		}).Wait(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String("aurora-m1")}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := c.rds.DeleteDBSnapshot(ctx, &rds.DeleteDBSnapshotInput{DBSnapshotIdentifier: aws.String("snap1")}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "snapshot gone", 30*time.Second, func() (bool, string) {
			_, err := c.rds.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String("snap1")})
			var nf *rdstypes.DBSnapshotNotFoundFault
			return errors.As(err, &nf), fmt.Sprint(err)
		})
		st, err := ReadState(stateDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Dirs) != 0 {
			t.Errorf("state file still lists %+v after every resource was deleted", st.Dirs)
		}
		entries, _ := os.ReadDir(srv.BaseDir())
		if len(entries) != 0 {
			t.Errorf("base dir still holds %d entries", len(entries))
		}
		base := srv.BaseDir()
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		closed = true
		if _, err := os.Stat(base); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("base dir %s survives Close", base)
		}
		if _, err := ReadState(stateDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("state file survives Close: %v", err)
		}
		// The source is never touched.
		var n int
		if err := sc.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n == 0 {
			t.Errorf("source after Close: %v (%d rows)", err, n)
		}
	})
	t.Logf("TestLocalCloud took %s", time.Since(begin).Round(time.Millisecond))
}
