package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	dmstypes "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/steps"
	"github.com/seedrepl/seedrepl/statemachine"
	"github.com/seedrepl/seedrepl/test/sfnlocal"
)

// waitScale turns a 30 s Wait into 0.3 s and a 5 s retry interval into 50 ms.
const waitScale = 0.01

// input is the execution input a user would give for the local cloud (as
// the rehearsal's buildInput builds it).
func (w *world) input(id, mode string, rehearsal bool) map[string]any {
	scope := map[string]any{"schemas": []string{"public"}}
	if mode == "dms" {
		// The DMS preflight refuses keyless tables (DMS drops their UPDATE
		// and DELETE): the DMS scope lists only keyed tables.
		scope = map[string]any{"tables": []string{"public.accounts", "public.docs", "public.measurements"}}
	}
	in := map[string]any{
		"migrationId": id,
		"mode":        mode,
		"rehearsal":   rehearsal,
		"source": map[string]any{"instanceId": sourceID, "database": sourceDB,
			"adminSecretArn": w.adminARN, "replicationSecretArn": w.replARN},
		"scope": scope,
		"target": map[string]any{"instanceClass": "db.r6g.large", "readers": 1, "dbSubnetGroupName": "local-db-subnets",
			"vpcSecurityGroupIds": []string{"sg-0123456789abcdef0"}},
		"temp":   map[string]any{"instanceClass": "db.t4g.medium"},
		"verify": map[string]any{"maxLagBytes": 1 << 20, "compareAttempts": 15, "replayTimeoutSeconds": 60},
	}
	if mode == "dms" {
		in["dms"] = map[string]any{"replicationInstanceClass": "dms.t3.medium", "replicationSubnetGroupId": "local-dms-subnets",
			"sslMode": "none"} // local clusters have no TLS
	} else {
		in["subscription"] = map[string]any{"sslmode": "disable"}
	}
	return in
}

// withUpgrade asks for an engine upgrade after the restore (a newer minor
// version of the source's major), so UpgradeAuroraCluster and
// PollAuroraUpgrade run.
func (w *world) withUpgrade(in map[string]any) map[string]any {
	major, _, _ := strings.Cut(w.engine, ".")
	in["target"].(map[string]any)["engineVersion"] = major + ".99"
	return in
}

// wrapper replaces a state's handler; real is the real one.
type wrapper func(state string, real sfnlocal.Handler) sfnlocal.Handler

// outcome of one run.
type outcome struct {
	*sfnlocal.Result
	handlers map[string]sfnlocal.Handler // the real handlers (unwrapped)
	took     time.Duration
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// realHandlers are every state's real handler behind the Lambda boundary,
// with the real SDK clients (pointed at the local cloud) and a logger of
// their own.
func realHandlers(t *testing.T, log *syncBuffer) map[string]sfnlocal.Handler {
	t.Helper()
	s, err := lambdamain.New(context.Background())
	if err != nil {
		t.Fatalf("lambdamain.New: %v", err)
	}
	s.Log = slog.New(slog.NewJSONHandler(log, nil))
	out := map[string]sfnlocal.Handler{}
	for name, inv := range lambdamain.Invokers(s) {
		out[name] = sfnlocal.Handler(inv)
	}
	for _, f := range statemachine.Functions {
		if out[f.Name] == nil {
			t.Fatalf("lambdamain.Invokers has no handler for %s", f.Name)
		}
	}
	return out
}

// The runs share one source instance, and RDS (the local cloud as AWS)
// refuses a snapshot of an instance while another is being taken
// (InvalidDBInstanceState, backing-up). One migration per source is the
// real case (Preflight, too, waits while the source is backing-up); here a
// run holds sourceSnapshot from its Preflight until its PollSnapshot reports
// the snapshot ready (or the run ends), so concurrent runs take their
// snapshots one after the other.
var sourceSnapshot = make(chan struct{}, 1)

// faultMu: a run that injects faults into the local cloud's RDS actions
// holds it exclusively around its own call, every other run shares it
// around the calls that could take those faults.
var faultMu sync.RWMutex

// exclusiveKey marks a call made while its run holds faultMu exclusively.
type exclusiveKey struct{}

func sharedFaults(ctx context.Context) func() {
	if ctx.Value(exclusiveKey{}) != nil {
		return func() {}
	}
	faultMu.RLock()
	return faultMu.RUnlock
}

type snapshotHold struct {
	mu   sync.Mutex
	held bool
}

func (h *snapshotHold) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held {
		h.held = false
		<-sourceSnapshot
	}
}

func (h *snapshotHold) acquire(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held {
		return nil
	}
	select {
	case sourceSnapshot <- struct{}{}:
		h.held = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *snapshotHold) wrap(state string, real sfnlocal.Handler) sfnlocal.Handler {
	switch state {
	case "Preflight":
		return func(ctx context.Context, p json.RawMessage) (any, error) {
			if err := h.acquire(ctx); err != nil {
				return nil, err
			}
			return real(ctx, p)
		}
	case "CreateSnapshot":
		return func(ctx context.Context, p json.RawMessage) (any, error) {
			if err := h.acquire(ctx); err != nil {
				return nil, err
			}
			defer sharedFaults(ctx)()
			return real(ctx, p)
		}
	case "PollSnapshot":
		return func(ctx context.Context, p json.RawMessage) (any, error) {
			out, err := real(ctx, p)
			if poll, ok := out.(*steps.Poll); ok && err == nil && poll.Ready {
				h.release()
			}
			return out, err
		}
	case "RestoreAuroraCluster":
		return func(ctx context.Context, p json.RawMessage) (any, error) {
			defer sharedFaults(ctx)()
			return real(ctx, p)
		}
	}
	return real
}

// execute runs the real ASL on the local engine with the real handlers
// (optionally wrapped), within the package's concurrency bound.
func execute(t *testing.T, in map[string]any, wrap wrapper) *outcome {
	t.Helper()
	slots <- struct{}{}
	defer func() { <-slots }()
	start := time.Now()
	var log syncBuffer
	real := realHandlers(t, &log)
	hold := &snapshotHold{}
	defer hold.release()
	handlers := map[string]sfnlocal.Handler{}
	for name, h := range real {
		h = hold.wrap(name, h)
		if wrap != nil {
			h = wrap(name, h)
		}
		handlers[name] = h
	}
	raw, _ := json.Marshal(in)
	if _, err := steps.CheckInput(raw); err != nil {
		t.Fatalf("the test's own execution input is invalid: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var evMu sync.Mutex
	var lines []string
	res, err := sfnlocal.Run(ctx, sfnlocal.Options{Input: json.RawMessage(raw), Handlers: handlers, WaitScale: waitScale,
		Events: func(e sfnlocal.Event) {
			evMu.Lock()
			defer evMu.Unlock()
			l := fmt.Sprintf("%s %s %s", e.Time.Format("15:04:05.000"), e.Type, e.State)
			if e.Error != "" {
				l += " " + e.Error + ": " + trim(e.Cause, 300)
			}
			lines = append(lines, l)
		}})
	took := time.Since(start)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("E2E_VERBOSE") != "" {
			evMu.Lock()
			t.Logf("migration %v: events:\n%s", in["migrationId"], strings.Join(lines, "\n"))
			evMu.Unlock()
			t.Logf("handler log (tail):\n%s", tail(log.String(), 12000))
		}
	})
	if err != nil {
		t.Fatalf("sfnlocal.Run: %v", err)
	}
	t.Logf("%v: %s %s in %s (%d states entered, %d handler calls)", in["migrationId"], res.Status, res.Error,
		took.Round(10*time.Millisecond), len(res.Entered()), len(res.Invocations))
	return &outcome{Result: res, handlers: real, took: took}
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// report decodes a successful run's output.
func (o *outcome) report(t *testing.T) *steps.Report {
	t.Helper()
	if o.Status != "SUCCEEDED" {
		t.Fatalf("status %s (%s: %s), want SUCCEEDED", o.Status, o.Error, trim(o.Cause, 2000))
	}
	var r steps.Report
	dec := json.NewDecoder(bytes.NewReader(o.Output))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("the execution output is not the report: %v\n%s", err, o.Output)
	}
	return &r
}

// checkReport: the report of a replicating migration with every table in
// scope verified equal.
func checkReport(t *testing.T, r *steps.Report, id, mode string, rehearsal bool, wantTables []string) {
	t.Helper()
	if r.MigrationID != id || r.Mode != mode || r.Rehearsal != rehearsal {
		t.Errorf("report is for %s/%s/rehearsal=%t, want %s/%s/%t", r.MigrationID, r.Mode, r.Rehearsal, id, mode, rehearsal)
	}
	if r.Outcome != "replicating" {
		t.Errorf("report outcome %q, want replicating (warnings %v)", r.Outcome, r.Warnings)
	}
	if r.SeedLSN == "" || r.SlotName != pgops.ObjectName(id) || r.ClusterID == "" {
		t.Errorf("report lacks seed/slot/cluster: seed %q slot %q cluster %q", r.SeedLSN, r.SlotName, r.ClusterID)
	}
	var got []string
	for _, c := range r.Validation {
		got = append(got, c.Table)
		if c.Verdict != pgops.Equal {
			t.Errorf("table %s: verdict %s (%s), want equal", c.Table, c.Verdict, c.Detail)
		}
		if c.Source.Rows == 0 {
			t.Errorf("table %s: compared with no rows on the source", c.Table)
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, wantTables) {
		t.Errorf("validated tables %v, want %v", got, wantTables)
	}
}

// ---------------------------------------------------------------- the world as it is

func (w *world) connSource(t *testing.T, ctx context.Context) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, w.sourceDSN())
	if err != nil {
		t.Errorf("connect source: %v", err)
		return nil
	}
	return c
}

// sourceObjects reports whether this migration's slot and publication
// exist on the source, and whether the slot is active.
func (w *world) sourceObjects(t *testing.T, id string) (slot, active, pub bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := w.connSource(t, ctx)
	if c == nil {
		return true, true, true // unknown: the error is reported
	}
	defer c.Close(ctx)
	name := pgops.ObjectName(id)
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1),
		coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = $1), false),
		EXISTS (SELECT FROM pg_publication WHERE pubname = $1)`, name).Scan(&slot, &active, &pub); err != nil {
		t.Errorf("source catalog: %v", err)
		return true, true, true
	}
	return slot, active, pub
}

// resources lists what the local cloud holds of one migration, as the SDK
// sees it: every RDS instance, cluster and snapshot, and every DMS task,
// endpoint and replication instance whose identifier starts with
// seedrepl-<id>-, with its status.
func (w *world) resources(t *testing.T, id string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prefix := "seedrepl-" + id + "-"
	var out []string
	add := func(kind, name, status string) {
		if strings.HasPrefix(name, prefix) {
			out = append(out, kind+" "+name+" ("+status+")")
		}
	}
	insts, err := w.rds.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{})
	if err != nil {
		t.Errorf("DescribeDBInstances: %v", err)
		return []string{"unknown (DescribeDBInstances failed)"}
	}
	for _, i := range insts.DBInstances {
		add("DB instance", aws.ToString(i.DBInstanceIdentifier), aws.ToString(i.DBInstanceStatus))
	}
	cls, err := w.rds.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{})
	if err != nil {
		t.Errorf("DescribeDBClusters: %v", err)
		return []string{"unknown (DescribeDBClusters failed)"}
	}
	for _, c := range cls.DBClusters {
		add("DB cluster", aws.ToString(c.DBClusterIdentifier), aws.ToString(c.Status))
	}
	sns, err := w.rds.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{})
	if err != nil {
		t.Errorf("DescribeDBSnapshots: %v", err)
		return []string{"unknown (DescribeDBSnapshots failed)"}
	}
	for _, s := range sns.DBSnapshots {
		add("DB snapshot", aws.ToString(s.DBSnapshotIdentifier), aws.ToString(s.Status))
	}
	tasks, err := w.dms.DescribeReplicationTasks(ctx, &dms.DescribeReplicationTasksInput{WithoutSettings: aws.Bool(true)})
	if err != nil && !dmsNotFound(err) {
		t.Errorf("DescribeReplicationTasks: %v", err)
		return []string{"unknown (DescribeReplicationTasks failed)"}
	}
	if tasks != nil {
		for _, x := range tasks.ReplicationTasks {
			add("DMS task", aws.ToString(x.ReplicationTaskIdentifier), aws.ToString(x.Status))
		}
	}
	eps, err := w.dms.DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{})
	if err != nil && !dmsNotFound(err) {
		t.Errorf("DescribeEndpoints: %v", err)
		return []string{"unknown (DescribeEndpoints failed)"}
	}
	if eps != nil {
		for _, x := range eps.Endpoints {
			add("DMS endpoint", aws.ToString(x.EndpointIdentifier), aws.ToString(x.Status))
		}
	}
	ris, err := w.dms.DescribeReplicationInstances(ctx, &dms.DescribeReplicationInstancesInput{})
	if err != nil && !dmsNotFound(err) {
		t.Errorf("DescribeReplicationInstances: %v", err)
		return []string{"unknown (DescribeReplicationInstances failed)"}
	}
	if ris != nil {
		for _, x := range ris.ReplicationInstances {
			add("DMS replication instance", aws.ToString(x.ReplicationInstanceIdentifier), aws.ToString(x.ReplicationInstanceStatus))
		}
	}
	sort.Strings(out)
	return out
}

func dmsNotFound(err error) bool {
	var nf *dmstypes.ResourceNotFoundFault
	if errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundFault"
}

// subscriptionsOnTargets lists, on every available DB cluster of the local
// cloud (any migration's), the subscriptions named as this migration's.
func (w *world) subscriptionsOnTargets(t *testing.T, id string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cls, err := w.rds.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{})
	if err != nil {
		t.Errorf("DescribeDBClusters: %v", err)
		return []string{"unknown (DescribeDBClusters failed)"}
	}
	name := pgops.ObjectName(id)
	var out []string
	for _, c := range cls.DBClusters {
		if aws.ToString(c.Status) != "available" || aws.ToString(c.Endpoint) == "" {
			continue
		}
		n, err := w.countOnTarget(ctx, aws.ToString(c.Endpoint), int(aws.ToInt32(c.Port)),
			`SELECT count(*) FROM pg_subscription WHERE subname = $1`, name)
		if err != nil {
			// A cluster being torn down by a parallel run may vanish meanwhile.
			if again, _ := w.rds.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: c.DBClusterIdentifier}); again != nil &&
				len(again.DBClusters) > 0 && aws.ToString(again.DBClusters[0].Status) == "available" {
				t.Errorf("cluster %s: %v", aws.ToString(c.DBClusterIdentifier), err)
			}
			continue
		}
		if n > 0 {
			out = append(out, aws.ToString(c.DBClusterIdentifier)+": subscription "+name)
		}
	}
	return out
}

// countOnTarget runs a count query on a target cluster as the source's
// admin (the restore keeps the source's roles and passwords).
func (w *world) countOnTarget(ctx context.Context, host string, port int, q string, args ...any) (int, error) {
	if port == 0 {
		port = 5432
	}
	dsn := fmt.Sprintf("postgres://postgres:%s@%s:%d/%s?sslmode=disable&connect_timeout=5", w.src.Password, host, port, sourceDB)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	var n int
	err = c.QueryRow(ctx, q, args...).Scan(&n)
	return n, err
}

// targetOf is the endpoint of a migration's cluster.
func (w *world) targetOf(t *testing.T, cluster string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := w.rds.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(cluster)})
	if err != nil || len(out.DBClusters) == 0 {
		t.Errorf("describe cluster %s: %v", cluster, err)
		return "", 0
	}
	c := out.DBClusters[0]
	return aws.ToString(c.Endpoint), int(aws.ToInt32(c.Port))
}

// present lists what exists of a migration: its slot and publication on
// the source ("slot", "publication"), its subscription on any target
// ("subscription ..."), and its RDS and DMS resources (world.resources).
func (w *world) present(t *testing.T, id string) []string {
	var out []string
	slot, _, pub := w.sourceObjects(t, id)
	if slot {
		out = append(out, "slot")
	}
	if pub {
		out = append(out, "publication")
	}
	for _, s := range w.subscriptionsOnTargets(t, id) {
		out = append(out, "subscription on "+s)
	}
	return append(out, w.resources(t, id)...)
}

// expectReleased waits (deletions take the local cloud's Delete delay)
// until nothing of the migration is left: no slot, no publication on the
// source, no RDS or DMS resource in the local cloud, no subscription on any
// target.
func (w *world) expectReleased(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var left []string
	for {
		left = left[:0]
		slot, _, pub := w.sourceObjects(t, id)
		if slot {
			left = append(left, "replication slot "+pgops.ObjectName(id)+" on the source")
		}
		if pub {
			left = append(left, "publication "+pgops.ObjectName(id)+" on the source")
		}
		left = append(left, w.resources(t, id)...)
		left = append(left, w.subscriptionsOnTargets(t, id)...)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Errorf("migration %s left behind after its rollback/teardown:\n  %s", id, strings.Join(left, "\n  "))
}

// retriedStates are the states with a StateRetried event on errorName.
func retriedStates(res *sfnlocal.Result, errorName string) map[string]bool {
	out := map[string]bool{}
	for _, e := range res.Events {
		if e.Type == "StateRetried" && slices.Contains(e.ErrorEquals, errorName) {
			out[e.State] = true
		}
	}
	return out
}

// taskStatesEntered: the Task states this run entered, in first-entry order.
func taskStatesEntered(res *sfnlocal.Result) []string {
	tasks := map[string]bool{}
	for _, f := range statemachine.Functions {
		tasks[f.Name] = true
	}
	var out []string
	for _, s := range res.Entered() {
		if tasks[s] && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// invokeDirect calls one real handler outside the engine with a document
// (the input alone is a valid document for Rollback and Teardown: they find
// everything by its deterministic name).
func invokeDirect(t *testing.T, h sfnlocal.Handler, doc any) json.RawMessage {
	t.Helper()
	raw, _ := json.Marshal(doc)
	var out any
	var err error
	for attempt := 1; attempt <= 40; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err = h(ctx, raw)
		cancel()
		if err == nil {
			break
		}
		// As the state machine would: retry the transient names.
		if name := sfnlocal.ErrorType(err); name != "Transient" && name != "NotReadyYet" {
			t.Fatalf("handler: %s: %v", name, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("handler still failing: %s: %v", sfnlocal.ErrorType(err), err)
	}
	b, _ := json.Marshal(out)
	return b
}

// statemachineFunctions are the Task state names of the definition.
func statemachineFunctions() []string {
	var out []string
	for _, f := range statemachine.Functions {
		out = append(out, f.Name)
	}
	return out
}
