package steps

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	dmstypes "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/seedrepl/seedrepl/internal/grants"
	"github.com/seedrepl/seedrepl/internal/lsn"
	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sferr"
)

// IAM is the table the CDK stack grants: each handler may call only these.
var IAM = grants.Actions

// checkIAM fails the test if step called anything outside its grant.
func checkIAM(t *testing.T, c *cloud, step string, mark int) {
	t.Helper()
	allowed, ok := IAM[step]
	if !ok {
		t.Fatalf("no IAM entry for %s", step)
	}
	for _, op := range c.callsSince(mark) {
		if !slices.Contains(allowed, op) {
			t.Errorf("%s called %s, which its IAM policy does not grant", step, op)
		}
	}
}

func exampleInput(t *testing.T, name string) Input {
	t.Helper()
	b, err := os.ReadFile("../../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	in, err := CheckInput(b)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// run calls one step, checks its IAM, and returns its result.
func run[R any](t *testing.T, c *cloud, step string, f func(context.Context, State) (R, error), st State) (R, error) {
	t.Helper()
	c.mu.Lock()
	mark := len(c.calls)
	c.mu.Unlock()
	r, err := f(context.Background(), st)
	checkIAM(t, c, step, mark)
	if err != nil && !sferr.IsDeclared(sferr.Classify(err)) {
		t.Errorf("%s: unclassifiable error %v", step, err)
	}
	return r, err
}

func mustRun[R any](t *testing.T, c *cloud, step string, f func(context.Context, State) (R, error), st State) R {
	t.Helper()
	r, err := run(t, c, step, f, st)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return r
}

// TestAWSStepsAreIdempotentAndStayInTheirGrant drives every AWS-creating
// step twice (and the polls until ready): each resource is created once,
// tagged, and each handler calls only what its IAM grant allows.
func TestAWSStepsAreIdempotentAndStayInTheirGrant(t *testing.T) {
	c := newCloud()
	in := exampleInput(t, "subscription.json")
	c.addSource(in.Source.InstanceID)
	s := c.steps()
	n := NamesFor(in)
	st := State{Input: in}

	for i := 0; i < 2; i++ {
		st.Snapshot = mustRun(t, c, "CreateSnapshot", s.CreateSnapshot, st)
	}
	if got := c.count("rds:CreateDBSnapshot"); got != 1 {
		t.Errorf("CreateDBSnapshot called %d times, want 1", got)
	}
	if st.Snapshot.Ready || st.Snapshot.WaitSeconds < MinWait || st.Snapshot.ID != n.Snapshot {
		t.Errorf("snapshot poll %+v", st.Snapshot)
	}
	// Progress is reported: the next wait follows it.
	c.mu.Lock()
	c.snapshots[n.Snapshot].PercentProgress = aws.Int32(50)
	c.mu.Unlock()
	st.Snapshot = mustRun(t, c, "PollSnapshot", s.PollSnapshot, st)
	if st.Snapshot.Percent != 50 || st.Snapshot.Attempt != 1 || st.Snapshot.Ready {
		t.Errorf("poll %+v", st.Snapshot)
	}
	c.settle()
	st.Snapshot = mustRun(t, c, "PollSnapshot", s.PollSnapshot, st)
	if !st.Snapshot.Ready || st.Snapshot.WaitSeconds != 0 || st.Snapshot.Attempt != 2 || st.Snapshot.ARN == "" {
		t.Errorf("poll %+v", st.Snapshot)
	}

	for i := 0; i < 2; i++ {
		st.Aurora = mustRun(t, c, "RestoreAuroraCluster", s.RestoreAuroraCluster, st)
		st.Temp = mustRun(t, c, "RestoreTempInstance", s.RestoreTempInstance, st)
	}
	if c.count("rds:RestoreDBClusterFromSnapshot") != 1 || c.count("rds:RestoreDBInstanceFromDBSnapshot") != 1 {
		t.Errorf("restores: %d cluster, %d instance; want 1 each", c.count("rds:RestoreDBClusterFromSnapshot"), c.count("rds:RestoreDBInstanceFromDBSnapshot"))
	}
	c.settle()
	st.Aurora = mustRun(t, c, "PollAuroraCluster", s.PollAuroraCluster, st)
	st.Temp = mustRun(t, c, "PollTempInstance", s.PollTempInstance, st)
	if !st.Aurora.Ready || !st.Temp.Ready || st.Aurora.Endpoint == "" {
		t.Fatalf("aurora %+v temp %+v", st.Aurora, st.Temp)
	}
	for i := 0; i < 2; i++ {
		st.AuroraInstances = mustRun(t, c, "CreateAuroraInstances", s.CreateAuroraInstances, st)
	}
	if got := c.count("rds:CreateDBInstance"); got != 1+in.Target.Readers {
		t.Errorf("CreateDBInstance called %d times, want %d", got, 1+in.Target.Readers)
	}
	st.AuroraInstances = mustRun(t, c, "PollAuroraInstances", s.PollAuroraInstances, st)
	if st.AuroraInstances.Ready {
		t.Errorf("instances ready before they are available")
	}
	c.settle()
	st.AuroraInstances = mustRun(t, c, "PollAuroraInstances", s.PollAuroraInstances, st)
	if !st.AuroraInstances.Ready || len(st.AuroraInstances.IDs) != 1+in.Target.Readers || st.AuroraInstances.IDs[0] != n.Writer {
		t.Errorf("instances %+v", st.AuroraInstances)
	}
	for i := 0; i < 2; i++ {
		st.Aurora = mustRun(t, c, "UpgradeAuroraCluster", s.UpgradeAuroraCluster, st)
	}
	if c.count("rds:ModifyDBCluster") != 1 {
		t.Errorf("ModifyDBCluster called %d times, want 1", c.count("rds:ModifyDBCluster"))
	}
	st.Aurora = mustRun(t, c, "PollAuroraUpgrade", s.PollAuroraUpgrade, st)
	if st.Aurora.Ready {
		t.Errorf("upgrade ready while upgrading")
	}
	c.settle()
	st.Aurora = mustRun(t, c, "PollAuroraUpgrade", s.PollAuroraUpgrade, st)
	if !st.Aurora.Ready || st.Aurora.EngineVer != in.Target.EngineVersion {
		t.Errorf("upgrade %+v", st.Aurora)
	}
	// Every created resource carries both tags.
	c.mu.Lock()
	for id, db := range c.instances {
		if id != in.Source.InstanceID && !ownedBy(db.TagList, in.MigrationID) {
			t.Errorf("instance %s not tagged", id)
		}
	}
	for id, cl := range c.clusters {
		if !ownedBy(cl.TagList, in.MigrationID) || !slices.ContainsFunc(cl.TagList, func(t rdstypes.Tag) bool { return *t.Key == TagManaged && *t.Value == "true" }) {
			t.Errorf("cluster %s not tagged", id)
		}
	}
	c.mu.Unlock()
	for i := 0; i < 2; i++ {
		st.Temp = mustRun(t, c, "DeleteTempInstance", s.DeleteTempInstance, st)
	}
	if c.count("rds:DeleteDBInstance") != 1 || !st.Temp.Ready {
		t.Errorf("DeleteDBInstance called %d times", c.count("rds:DeleteDBInstance"))
	}
	c.settle()
	st.Temp = mustRun(t, c, "DeleteTempInstance", s.DeleteTempInstance, st)
	if st.Temp.Status != "deleted" {
		t.Errorf("temp %+v", st.Temp)
	}
}

func TestConfigureDMSIsIdempotent(t *testing.T) {
	c := newCloud()
	in := exampleInput(t, "dms.json")
	c.addSource(in.Source.InstanceID)
	n := NamesFor(in)
	c.secrets[in.Source.AdminSecretARN] = `{"username":"admin","password":"pw","host":"src","port":5432}`
	c.mu.Lock()
	c.clusters[n.Cluster] = &rdstypes.DBCluster{DBClusterIdentifier: aws.String(n.Cluster), Status: aws.String("available"),
		Endpoint: aws.String("aurora.local"), Port: aws.Int32(5432), TagList: rdsTags(in.MigrationID)}
	c.mu.Unlock()
	s := c.steps()
	s.Partitions = func(context.Context, Input) ([]pgops.Table, error) {
		return []pgops.Table{{Schema: "public", Name: "ledger_2025"}}, nil
	}
	seed := lsn.MustParse("4AF/B00000D0")
	st := State{Input: in, Seed: &SeedResult{LSN: seed}, Proof: &ProofResult{Proved: true}}

	// The replication instance is still creating: NotReadyYet, retried.
	_, err := run(t, c, "ConfigureDMS", s.ConfigureDMS, st)
	if sferr.Name(err) != "NotReadyYet" {
		t.Fatalf("first call: %v, want NotReadyYet", err)
	}
	_, err = run(t, c, "ConfigureDMS", s.ConfigureDMS, st)
	if sferr.Name(err) != "NotReadyYet" {
		t.Fatalf("second call: %v", err)
	}
	c.settle()
	_, err = run(t, c, "ConfigureDMS", s.ConfigureDMS, st) // creates the task, still creating
	if sferr.Name(err) != "NotReadyYet" {
		t.Fatalf("task creating: %v", err)
	}
	c.settle()
	r := mustRun(t, c, "ConfigureDMS", s.ConfigureDMS, st)
	if r.Status != "starting" || r.Ready || r.CdcStartPosition != "4AF/B00000D0" {
		t.Errorf("result %+v", r)
	}
	r = mustRun(t, c, "ConfigureDMS", s.ConfigureDMS, st)
	for op, want := range map[string]int{"dms:CreateReplicationInstance": 1, "dms:CreateEndpoint": 2, "dms:CreateReplicationTask": 1, "dms:StartReplicationTask": 1} {
		if got := c.count(op); got != want {
			t.Errorf("%s called %d times, want %d", op, got, want)
		}
	}
	c.mu.Lock()
	task := c.tasks[n.DMSTask]
	src := c.endpoints[n.DMSSource]
	tgt := c.endpoints[n.DMSTarget]
	c.mu.Unlock()
	if aws.ToString(task.CdcStartPosition) != "4AF/B00000D0" || task.MigrationType != "cdc" {
		t.Errorf("task %+v", task)
	}
	var m struct {
		Rules []struct {
			Locator map[string]string `json:"object-locator"`
		} `json:"rules"`
	}
	_ = json.Unmarshal([]byte(aws.ToString(task.TableMappings)), &m)
	if len(m.Rules) != 4 || m.Rules[2].Locator["schema-name"] != "audit" || m.Rules[2].Locator["table-name"] != "events" ||
		m.Rules[3].Locator["table-name"] != "ledger_2025" {
		t.Errorf("table mappings %s", aws.ToString(task.TableMappings))
	}
	ps := src.PostgreSQLSettings
	if aws.ToString(ps.SlotName) != n.Slot || ps.PluginName != dmstypes.PluginNameValueTestDecoding || aws.ToString(ps.SecretsManagerSecretId) != in.Source.ReplicationSecretARN ||
		aws.ToString(ps.SecretsManagerAccessRoleArn) == "" {
		t.Errorf("source endpoint settings %+v", ps)
	}
	if aws.ToString(tgt.ServerName) != "aurora.local" {
		t.Errorf("target endpoint server %q, want the cluster endpoint (not the secret's host)", aws.ToString(tgt.ServerName))
	}
	st.Replication = r
	c.settle()
	p := mustRun(t, c, "PollDMSTask", s.PollDMSTask, st)
	if !p.Ready || p.Status != "running" || p.TaskARN == "" {
		t.Errorf("poll %+v", p)
	}
	// Without a proven seed nothing starts.
	_, err = run(t, c, "ConfigureDMS", s.ConfigureDMS, State{Input: in, Seed: st.Seed})
	if sferr.Name(err) != "SeedProofFailed" {
		t.Errorf("unproven seed: %v", err)
	}
}

func TestNotOursIsRefused(t *testing.T) {
	c := newCloud()
	in := exampleInput(t, "subscription.json")
	c.addSource(in.Source.InstanceID)
	n := NamesFor(in)
	c.snapshots[n.Snapshot] = &rdstypes.DBSnapshot{DBSnapshotIdentifier: aws.String(n.Snapshot), Status: aws.String("available")}
	_, err := c.steps().CreateSnapshot(context.Background(), State{Input: in})
	if sferr.Name(err) != "ResourceFailed" || !strings.Contains(err.Error(), "not this migration's") {
		t.Errorf("untagged snapshot with our name: %v", err)
	}
}

func TestPollFailures(t *testing.T) {
	c := newCloud()
	in := exampleInput(t, "subscription.json")
	n := NamesFor(in)
	s := c.steps()
	if _, err := s.PollSnapshot(context.Background(), State{Input: in}); sferr.Name(err) != "NotReadyYet" {
		t.Errorf("missing snapshot: %v", err)
	}
	c.snapshots[n.Snapshot] = &rdstypes.DBSnapshot{DBSnapshotIdentifier: aws.String(n.Snapshot), Status: aws.String("failed"), TagList: rdsTags(in.MigrationID)}
	if _, err := s.PollSnapshot(context.Background(), State{Input: in}); sferr.Name(err) != "ResourceFailed" {
		t.Errorf("failed snapshot: %v", err)
	}
	c.fail = func(op string) error {
		if op == "rds:DescribeDBClusters" {
			return apiErr("Throttling")
		}
		return nil
	}
	if _, err := s.PollAuroraCluster(context.Background(), State{Input: in}); sferr.Name(sferr.Classify(err)) != "Transient" {
		t.Errorf("throttled: %v", err)
	}
}

func TestNotifyAndReport(t *testing.T) {
	c := newCloud()
	in := exampleInput(t, "subscription.json")
	s := c.steps()
	st := State{Input: in, Seed: &SeedResult{LSN: lsn.MustParse("0/16B3748"), At: "2025-01-01T00:00:00Z"},
		Slot:       &SlotResult{SlotName: "seedrepl_orders_2025_06", ConsistentPoint: lsn.MustParse("0/16B0000"), At: "2025-01-01T00:00:00Z"},
		Validation: &ValidationResult{OK: true, Equal: 2, Unverified: 1}}
	r := mustRun(t, c, "Report", s.Report, st)
	if r.SeedLSN != "0/16B3748" || r.ConsistentPoint != "0/16B0000" || r.Outcome != "replicating-unverified" || !strings.Contains(r.SecurityNote, "replication role") {
		t.Errorf("report %+v", r)
	}
	st.Report = r
	res := mustRun(t, c, "Notify", s.Notify, st)
	if !res.Published || !strings.Contains(res.Subject, "replicating-unverified") {
		t.Errorf("notify %+v", res)
	}
	st.Error = &CaughtError{Error: "SeedProofFailed", Cause: "seed ahead"}
	st.RollbackError = &CaughtError{Error: "Transient", Cause: "slot"}
	res = mustRun(t, c, "Notify", s.Notify, st)
	if !strings.Contains(res.Subject, "FAILED (SeedProofFailed)") || !strings.Contains(res.Subject, "ROLLBACK FAILED") {
		t.Errorf("subject %q", res.Subject)
	}
	s.Config.TopicARN = ""
	res = mustRun(t, c, "Notify", s.Notify, st)
	if res.Published {
		t.Errorf("published without a topic")
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	var sec Secret
	if err := json.Unmarshal([]byte(`{"username":"u","password":"s3cr3t","host":"h","port":"5432","dbname":"d"}`), &sec); err != nil || sec.Port != 5432 {
		t.Fatalf("%v %+v", err, sec.Port)
	}
	for _, s := range []string{sec.String(), sec.GoString()} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("secret printed: %s", s)
		}
	}
	ci := subscriptionConninfo(Endpoint{"h", 5432}, Secret{Username: "rep'l", Password: `p\w'd`}, "db", "")
	if !strings.Contains(ci, `user='rep\'l'`) || !strings.Contains(ci, `password='p\\w\'d'`) || !strings.Contains(ci, "sslmode='require'") {
		t.Errorf("conninfo quoting: %s", ci)
	}
}
