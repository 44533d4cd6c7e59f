package steps

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	dmstypes "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
)

// Fakes are structs of function fields; cloud fills them with a small
// in-memory AWS that records every call (for the IAM test).

type fakeRDS struct {
	DescribeDBInstancesFn             func(context.Context, *rds.DescribeDBInstancesInput) (*rds.DescribeDBInstancesOutput, error)
	DescribeDBClustersFn              func(context.Context, *rds.DescribeDBClustersInput) (*rds.DescribeDBClustersOutput, error)
	DescribeDBSnapshotsFn             func(context.Context, *rds.DescribeDBSnapshotsInput) (*rds.DescribeDBSnapshotsOutput, error)
	DescribeDBParametersFn            func(context.Context, *rds.DescribeDBParametersInput) (*rds.DescribeDBParametersOutput, error)
	CreateDBSnapshotFn                func(context.Context, *rds.CreateDBSnapshotInput) (*rds.CreateDBSnapshotOutput, error)
	RestoreDBClusterFromSnapshotFn    func(context.Context, *rds.RestoreDBClusterFromSnapshotInput) (*rds.RestoreDBClusterFromSnapshotOutput, error)
	ModifyDBClusterFn                 func(context.Context, *rds.ModifyDBClusterInput) (*rds.ModifyDBClusterOutput, error)
	CreateDBInstanceFn                func(context.Context, *rds.CreateDBInstanceInput) (*rds.CreateDBInstanceOutput, error)
	RestoreDBInstanceFromDBSnapshotFn func(context.Context, *rds.RestoreDBInstanceFromDBSnapshotInput) (*rds.RestoreDBInstanceFromDBSnapshotOutput, error)
	AddTagsToResourceFn               func(context.Context, *rds.AddTagsToResourceInput) (*rds.AddTagsToResourceOutput, error)
	DeleteDBInstanceFn                func(context.Context, *rds.DeleteDBInstanceInput) (*rds.DeleteDBInstanceOutput, error)
	DeleteDBClusterFn                 func(context.Context, *rds.DeleteDBClusterInput) (*rds.DeleteDBClusterOutput, error)
	DeleteDBSnapshotFn                func(context.Context, *rds.DeleteDBSnapshotInput) (*rds.DeleteDBSnapshotOutput, error)
}

var _ RDSAPI = (*fakeRDS)(nil)

func (f *fakeRDS) DescribeDBInstances(c context.Context, i *rds.DescribeDBInstancesInput, _ ...func(*rds.Options)) (*rds.DescribeDBInstancesOutput, error) {
	return f.DescribeDBInstancesFn(c, i)
}
func (f *fakeRDS) DescribeDBClusters(c context.Context, i *rds.DescribeDBClustersInput, _ ...func(*rds.Options)) (*rds.DescribeDBClustersOutput, error) {
	return f.DescribeDBClustersFn(c, i)
}
func (f *fakeRDS) DescribeDBSnapshots(c context.Context, i *rds.DescribeDBSnapshotsInput, _ ...func(*rds.Options)) (*rds.DescribeDBSnapshotsOutput, error) {
	return f.DescribeDBSnapshotsFn(c, i)
}
func (f *fakeRDS) DescribeDBParameters(c context.Context, i *rds.DescribeDBParametersInput, _ ...func(*rds.Options)) (*rds.DescribeDBParametersOutput, error) {
	return f.DescribeDBParametersFn(c, i)
}
func (f *fakeRDS) CreateDBSnapshot(c context.Context, i *rds.CreateDBSnapshotInput, _ ...func(*rds.Options)) (*rds.CreateDBSnapshotOutput, error) {
	return f.CreateDBSnapshotFn(c, i)
}
func (f *fakeRDS) RestoreDBClusterFromSnapshot(c context.Context, i *rds.RestoreDBClusterFromSnapshotInput, _ ...func(*rds.Options)) (*rds.RestoreDBClusterFromSnapshotOutput, error) {
	return f.RestoreDBClusterFromSnapshotFn(c, i)
}
func (f *fakeRDS) ModifyDBCluster(c context.Context, i *rds.ModifyDBClusterInput, _ ...func(*rds.Options)) (*rds.ModifyDBClusterOutput, error) {
	return f.ModifyDBClusterFn(c, i)
}
func (f *fakeRDS) CreateDBInstance(c context.Context, i *rds.CreateDBInstanceInput, _ ...func(*rds.Options)) (*rds.CreateDBInstanceOutput, error) {
	return f.CreateDBInstanceFn(c, i)
}
func (f *fakeRDS) RestoreDBInstanceFromDBSnapshot(c context.Context, i *rds.RestoreDBInstanceFromDBSnapshotInput, _ ...func(*rds.Options)) (*rds.RestoreDBInstanceFromDBSnapshotOutput, error) {
	return f.RestoreDBInstanceFromDBSnapshotFn(c, i)
}
func (f *fakeRDS) AddTagsToResource(c context.Context, i *rds.AddTagsToResourceInput, _ ...func(*rds.Options)) (*rds.AddTagsToResourceOutput, error) {
	return f.AddTagsToResourceFn(c, i)
}
func (f *fakeRDS) DeleteDBInstance(c context.Context, i *rds.DeleteDBInstanceInput, _ ...func(*rds.Options)) (*rds.DeleteDBInstanceOutput, error) {
	return f.DeleteDBInstanceFn(c, i)
}
func (f *fakeRDS) DeleteDBCluster(c context.Context, i *rds.DeleteDBClusterInput, _ ...func(*rds.Options)) (*rds.DeleteDBClusterOutput, error) {
	return f.DeleteDBClusterFn(c, i)
}
func (f *fakeRDS) DeleteDBSnapshot(c context.Context, i *rds.DeleteDBSnapshotInput, _ ...func(*rds.Options)) (*rds.DeleteDBSnapshotOutput, error) {
	return f.DeleteDBSnapshotFn(c, i)
}

type fakeDMS struct {
	CreateReplicationInstanceFn    func(context.Context, *dms.CreateReplicationInstanceInput) (*dms.CreateReplicationInstanceOutput, error)
	DescribeReplicationInstancesFn func(context.Context, *dms.DescribeReplicationInstancesInput) (*dms.DescribeReplicationInstancesOutput, error)
	CreateEndpointFn               func(context.Context, *dms.CreateEndpointInput) (*dms.CreateEndpointOutput, error)
	DescribeEndpointsFn            func(context.Context, *dms.DescribeEndpointsInput) (*dms.DescribeEndpointsOutput, error)
	CreateReplicationTaskFn        func(context.Context, *dms.CreateReplicationTaskInput) (*dms.CreateReplicationTaskOutput, error)
	DescribeReplicationTasksFn     func(context.Context, *dms.DescribeReplicationTasksInput) (*dms.DescribeReplicationTasksOutput, error)
	StartReplicationTaskFn         func(context.Context, *dms.StartReplicationTaskInput) (*dms.StartReplicationTaskOutput, error)
	StopReplicationTaskFn          func(context.Context, *dms.StopReplicationTaskInput) (*dms.StopReplicationTaskOutput, error)
	DeleteReplicationTaskFn        func(context.Context, *dms.DeleteReplicationTaskInput) (*dms.DeleteReplicationTaskOutput, error)
	DeleteEndpointFn               func(context.Context, *dms.DeleteEndpointInput) (*dms.DeleteEndpointOutput, error)
	DeleteReplicationInstanceFn    func(context.Context, *dms.DeleteReplicationInstanceInput) (*dms.DeleteReplicationInstanceOutput, error)
	AddTagsToResourceFn            func(context.Context, *dms.AddTagsToResourceInput) (*dms.AddTagsToResourceOutput, error)
}

var _ DMSAPI = (*fakeDMS)(nil)

func (f *fakeDMS) CreateReplicationInstance(c context.Context, i *dms.CreateReplicationInstanceInput, _ ...func(*dms.Options)) (*dms.CreateReplicationInstanceOutput, error) {
	return f.CreateReplicationInstanceFn(c, i)
}
func (f *fakeDMS) DescribeReplicationInstances(c context.Context, i *dms.DescribeReplicationInstancesInput, _ ...func(*dms.Options)) (*dms.DescribeReplicationInstancesOutput, error) {
	return f.DescribeReplicationInstancesFn(c, i)
}
func (f *fakeDMS) CreateEndpoint(c context.Context, i *dms.CreateEndpointInput, _ ...func(*dms.Options)) (*dms.CreateEndpointOutput, error) {
	return f.CreateEndpointFn(c, i)
}
func (f *fakeDMS) DescribeEndpoints(c context.Context, i *dms.DescribeEndpointsInput, _ ...func(*dms.Options)) (*dms.DescribeEndpointsOutput, error) {
	return f.DescribeEndpointsFn(c, i)
}
func (f *fakeDMS) CreateReplicationTask(c context.Context, i *dms.CreateReplicationTaskInput, _ ...func(*dms.Options)) (*dms.CreateReplicationTaskOutput, error) {
	return f.CreateReplicationTaskFn(c, i)
}
func (f *fakeDMS) DescribeReplicationTasks(c context.Context, i *dms.DescribeReplicationTasksInput, _ ...func(*dms.Options)) (*dms.DescribeReplicationTasksOutput, error) {
	return f.DescribeReplicationTasksFn(c, i)
}
func (f *fakeDMS) StartReplicationTask(c context.Context, i *dms.StartReplicationTaskInput, _ ...func(*dms.Options)) (*dms.StartReplicationTaskOutput, error) {
	return f.StartReplicationTaskFn(c, i)
}
func (f *fakeDMS) StopReplicationTask(c context.Context, i *dms.StopReplicationTaskInput, _ ...func(*dms.Options)) (*dms.StopReplicationTaskOutput, error) {
	return f.StopReplicationTaskFn(c, i)
}
func (f *fakeDMS) DeleteReplicationTask(c context.Context, i *dms.DeleteReplicationTaskInput, _ ...func(*dms.Options)) (*dms.DeleteReplicationTaskOutput, error) {
	return f.DeleteReplicationTaskFn(c, i)
}
func (f *fakeDMS) DeleteEndpoint(c context.Context, i *dms.DeleteEndpointInput, _ ...func(*dms.Options)) (*dms.DeleteEndpointOutput, error) {
	return f.DeleteEndpointFn(c, i)
}
func (f *fakeDMS) DeleteReplicationInstance(c context.Context, i *dms.DeleteReplicationInstanceInput, _ ...func(*dms.Options)) (*dms.DeleteReplicationInstanceOutput, error) {
	return f.DeleteReplicationInstanceFn(c, i)
}
func (f *fakeDMS) AddTagsToResource(c context.Context, i *dms.AddTagsToResourceInput, _ ...func(*dms.Options)) (*dms.AddTagsToResourceOutput, error) {
	return f.AddTagsToResourceFn(c, i)
}

type fakeSecrets struct {
	GetSecretValueFn func(context.Context, *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error)
}

var _ SecretsAPI = (*fakeSecrets)(nil)

func (f *fakeSecrets) GetSecretValue(c context.Context, i *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return f.GetSecretValueFn(c, i)
}

type fakeSNS struct {
	PublishFn func(context.Context, *sns.PublishInput) (*sns.PublishOutput, error)
}

var _ SNSAPI = (*fakeSNS)(nil)

func (f *fakeSNS) Publish(c context.Context, i *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return f.PublishFn(c, i)
}

// ------------------------------------------------------------ the cloud

func apiErr(code string) error { return &smithy.GenericAPIError{Code: code, Message: code} }

// cloud is a tiny in-memory AWS: RDS instances, clusters, snapshots; DMS
// instances, endpoints, tasks; secrets; SNS. New resources start
// "creating"; settle() makes them available.
type cloud struct {
	mu        sync.Mutex
	calls     []string
	instances map[string]*rdstypes.DBInstance
	clusters  map[string]*rdstypes.DBCluster
	snapshots map[string]*rdstypes.DBSnapshot
	params    map[string]string // rds.logical_replication etc. of every group
	ris       map[string]*dmstypes.ReplicationInstance
	endpoints map[string]*dmstypes.Endpoint
	tasks     map[string]*dmstypes.ReplicationTask
	secrets   map[string]string
	published []string
	// fail, if set, is asked before each call ("rds:CreateDBSnapshot").
	fail func(op string) error
	// endpointOf gives the address of a new instance or cluster (the local clusters in SQL tests).
	endpointOf func(id string) (string, int32)
}

func newCloud() *cloud {
	c := &cloud{instances: map[string]*rdstypes.DBInstance{}, clusters: map[string]*rdstypes.DBCluster{},
		snapshots: map[string]*rdstypes.DBSnapshot{}, params: map[string]string{"rds.logical_replication": "1"},
		ris: map[string]*dmstypes.ReplicationInstance{}, endpoints: map[string]*dmstypes.Endpoint{},
		tasks: map[string]*dmstypes.ReplicationTask{}, secrets: map[string]string{}}
	c.endpointOf = func(id string) (string, int32) { return id + ".local", 5432 }
	return c
}

func (c *cloud) call(op string) error {
	c.calls = append(c.calls, op)
	if c.fail != nil {
		return c.fail(op)
	}
	return nil
}

// callsOf returns the distinct operations called since mark.
func (c *cloud) callsSince(mark int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, op := range c.calls[mark:] {
		if !seen[op] {
			seen[op] = true
			out = append(out, op)
		}
	}
	sort.Strings(out)
	return out
}

func (c *cloud) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, o := range c.calls {
		if o == op {
			n++
		}
	}
	return n
}

func (c *cloud) addSource(id string) {
	host, port := c.endpointOf(id)
	c.instances[id] = &rdstypes.DBInstance{DBInstanceIdentifier: aws.String(id), DBInstanceStatus: aws.String("available"),
		Engine: aws.String("postgres"), EngineVersion: aws.String("15.7"),
		Endpoint:          &rdstypes.Endpoint{Address: aws.String(host), Port: aws.Int32(port)},
		DBParameterGroups: []rdstypes.DBParameterGroupStatus{{DBParameterGroupName: aws.String("src-pg15"), ParameterApplyStatus: aws.String("in-sync")}}}
}

// settle makes every creating/modifying/upgrading resource available and
// removes deleting ones, as time would.
func (c *cloud) settle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, db := range c.instances {
		switch aws.ToString(db.DBInstanceStatus) {
		case "deleting":
			delete(c.instances, id)
		default:
			db.DBInstanceStatus = aws.String("available")
			host, port := c.endpointOf(id)
			db.Endpoint = &rdstypes.Endpoint{Address: aws.String(host), Port: aws.Int32(port)}
		}
	}
	for id, cl := range c.clusters {
		switch aws.ToString(cl.Status) {
		case "deleting":
			delete(c.clusters, id)
		case "upgrading":
			cl.EngineVersion = cl.PercentProgress // the pending version is parked there
			cl.PercentProgress = nil
			cl.Status = aws.String("available")
		default:
			cl.Status = aws.String("available")
			host, port := c.endpointOf(id)
			cl.Endpoint, cl.Port = aws.String(host), aws.Int32(port)
		}
	}
	for id, sn := range c.snapshots {
		if aws.ToString(sn.Status) == "deleting" {
			delete(c.snapshots, id)
			continue
		}
		sn.Status, sn.PercentProgress = aws.String("available"), aws.Int32(100)
	}
	for id, ri := range c.ris {
		if aws.ToString(ri.ReplicationInstanceStatus) == "deleting" {
			delete(c.ris, id)
			continue
		}
		ri.ReplicationInstanceStatus = aws.String("available")
	}
	for id, t := range c.tasks {
		switch aws.ToString(t.Status) {
		case "creating":
			t.Status = aws.String("ready")
		case "starting":
			t.Status = aws.String("running")
		case "stopping":
			t.Status = aws.String("stopped")
		case "deleting":
			delete(c.tasks, id)
		}
	}
}

func clusterMembers(c *cloud, cluster string) []rdstypes.DBClusterMember {
	var out []rdstypes.DBClusterMember
	for id, db := range c.instances {
		if aws.ToString(db.DBClusterIdentifier) == cluster {
			out = append(out, rdstypes.DBClusterMember{DBInstanceIdentifier: aws.String(id)})
		}
	}
	return out
}

func (c *cloud) rds() *fakeRDS {
	lock := func(op string) (func(), error) {
		c.mu.Lock()
		return c.mu.Unlock, c.call("rds:" + op)
	}
	return &fakeRDS{
		DescribeDBInstancesFn: func(_ context.Context, in *rds.DescribeDBInstancesInput) (*rds.DescribeDBInstancesOutput, error) {
			u, err := lock("DescribeDBInstances")
			defer u()
			if err != nil {
				return nil, err
			}
			db, ok := c.instances[aws.ToString(in.DBInstanceIdentifier)]
			if !ok {
				return nil, apiErr(codeInstanceNotFound)
			}
			cp := *db
			return &rds.DescribeDBInstancesOutput{DBInstances: []rdstypes.DBInstance{cp}}, nil
		},
		DescribeDBClustersFn: func(_ context.Context, in *rds.DescribeDBClustersInput) (*rds.DescribeDBClustersOutput, error) {
			u, err := lock("DescribeDBClusters")
			defer u()
			if err != nil {
				return nil, err
			}
			cl, ok := c.clusters[aws.ToString(in.DBClusterIdentifier)]
			if !ok {
				return nil, apiErr(codeClusterNotFound)
			}
			cp := *cl
			cp.DBClusterMembers = clusterMembers(c, *cl.DBClusterIdentifier)
			if aws.ToString(cp.Status) == "upgrading" {
				cp.PercentProgress = nil
			}
			return &rds.DescribeDBClustersOutput{DBClusters: []rdstypes.DBCluster{cp}}, nil
		},
		DescribeDBSnapshotsFn: func(_ context.Context, in *rds.DescribeDBSnapshotsInput) (*rds.DescribeDBSnapshotsOutput, error) {
			u, err := lock("DescribeDBSnapshots")
			defer u()
			if err != nil {
				return nil, err
			}
			sn, ok := c.snapshots[aws.ToString(in.DBSnapshotIdentifier)]
			if !ok {
				return nil, apiErr(codeSnapshotNotFound)
			}
			cp := *sn
			return &rds.DescribeDBSnapshotsOutput{DBSnapshots: []rdstypes.DBSnapshot{cp}}, nil
		},
		DescribeDBParametersFn: func(_ context.Context, in *rds.DescribeDBParametersInput) (*rds.DescribeDBParametersOutput, error) {
			u, err := lock("DescribeDBParameters")
			defer u()
			if err != nil {
				return nil, err
			}
			var ps []rdstypes.Parameter
			for k, v := range c.params {
				ps = append(ps, rdstypes.Parameter{ParameterName: aws.String(k), ParameterValue: aws.String(v)})
			}
			return &rds.DescribeDBParametersOutput{Parameters: ps}, nil
		},
		CreateDBSnapshotFn: func(_ context.Context, in *rds.CreateDBSnapshotInput) (*rds.CreateDBSnapshotOutput, error) {
			u, err := lock("CreateDBSnapshot")
			defer u()
			if err != nil {
				return nil, err
			}
			id := aws.ToString(in.DBSnapshotIdentifier)
			if _, ok := c.snapshots[id]; ok {
				return nil, apiErr(codeSnapshotExists)
			}
			now := time.Now()
			sn := &rdstypes.DBSnapshot{DBSnapshotIdentifier: in.DBSnapshotIdentifier, DBInstanceIdentifier: in.DBInstanceIdentifier,
				DBSnapshotArn: aws.String("arn:aws:rds:us-east-1:000000000000:snapshot:" + id), Status: aws.String("creating"),
				PercentProgress: aws.Int32(0), SnapshotCreateTime: &now, TagList: in.Tags}
			c.snapshots[id] = sn
			cp := *sn
			return &rds.CreateDBSnapshotOutput{DBSnapshot: &cp}, nil
		},
		RestoreDBClusterFromSnapshotFn: func(_ context.Context, in *rds.RestoreDBClusterFromSnapshotInput) (*rds.RestoreDBClusterFromSnapshotOutput, error) {
			u, err := lock("RestoreDBClusterFromSnapshot")
			defer u()
			if err != nil {
				return nil, err
			}
			id := aws.ToString(in.DBClusterIdentifier)
			if _, ok := c.clusters[id]; ok {
				return nil, apiErr(codeClusterExists)
			}
			now := time.Now()
			cl := &rdstypes.DBCluster{DBClusterIdentifier: in.DBClusterIdentifier, DBClusterArn: aws.String("arn:aws:rds:us-east-1:000000000000:cluster:" + id),
				Status: aws.String("creating"), Engine: in.Engine, EngineVersion: aws.String("15.7"), TagList: in.Tags, ClusterCreateTime: &now}
			c.clusters[id] = cl
			cp := *cl
			return &rds.RestoreDBClusterFromSnapshotOutput{DBCluster: &cp}, nil
		},
		ModifyDBClusterFn: func(_ context.Context, in *rds.ModifyDBClusterInput) (*rds.ModifyDBClusterOutput, error) {
			u, err := lock("ModifyDBCluster")
			defer u()
			if err != nil {
				return nil, err
			}
			cl, ok := c.clusters[aws.ToString(in.DBClusterIdentifier)]
			if !ok {
				return nil, apiErr(codeClusterNotFound)
			}
			if aws.ToString(cl.Status) != "available" {
				return nil, apiErr(codeInvalidClusterSt)
			}
			if major(aws.ToString(in.EngineVersion)) != major(aws.ToString(cl.EngineVersion)) && !aws.ToBool(in.AllowMajorVersionUpgrade) {
				return nil, apiErr("InvalidParameterCombination")
			}
			cl.Status, cl.PercentProgress = aws.String("upgrading"), in.EngineVersion
			cp := *cl
			cp.PercentProgress = nil
			return &rds.ModifyDBClusterOutput{DBCluster: &cp}, nil
		},
		CreateDBInstanceFn: func(_ context.Context, in *rds.CreateDBInstanceInput) (*rds.CreateDBInstanceOutput, error) {
			u, err := lock("CreateDBInstance")
			defer u()
			if err != nil {
				return nil, err
			}
			id := aws.ToString(in.DBInstanceIdentifier)
			if _, ok := c.instances[id]; ok {
				return nil, apiErr(codeInstanceExists)
			}
			db := &rdstypes.DBInstance{DBInstanceIdentifier: in.DBInstanceIdentifier, DBClusterIdentifier: in.DBClusterIdentifier,
				DBInstanceStatus: aws.String("creating"), Engine: in.Engine, TagList: in.Tags}
			c.instances[id] = db
			cp := *db
			return &rds.CreateDBInstanceOutput{DBInstance: &cp}, nil
		},
		RestoreDBInstanceFromDBSnapshotFn: func(_ context.Context, in *rds.RestoreDBInstanceFromDBSnapshotInput) (*rds.RestoreDBInstanceFromDBSnapshotOutput, error) {
			u, err := lock("RestoreDBInstanceFromDBSnapshot")
			defer u()
			if err != nil {
				return nil, err
			}
			id := aws.ToString(in.DBInstanceIdentifier)
			if _, ok := c.instances[id]; ok {
				return nil, apiErr(codeInstanceExists)
			}
			if _, ok := c.snapshots[aws.ToString(in.DBSnapshotIdentifier)]; !ok {
				return nil, apiErr(codeSnapshotNotFound)
			}
			db := &rdstypes.DBInstance{DBInstanceIdentifier: in.DBInstanceIdentifier, DBInstanceStatus: aws.String("creating"),
				Engine: aws.String("postgres"), TagList: in.Tags}
			c.instances[id] = db
			cp := *db
			return &rds.RestoreDBInstanceFromDBSnapshotOutput{DBInstance: &cp}, nil
		},
		AddTagsToResourceFn: func(_ context.Context, in *rds.AddTagsToResourceInput) (*rds.AddTagsToResourceOutput, error) {
			u, err := lock("AddTagsToResource")
			defer u()
			return &rds.AddTagsToResourceOutput{}, err
		},
		DeleteDBInstanceFn: func(_ context.Context, in *rds.DeleteDBInstanceInput) (*rds.DeleteDBInstanceOutput, error) {
			u, err := lock("DeleteDBInstance")
			defer u()
			if err != nil {
				return nil, err
			}
			db, ok := c.instances[aws.ToString(in.DBInstanceIdentifier)]
			if !ok {
				return nil, apiErr(codeInstanceNotFound)
			}
			if !aws.ToBool(in.SkipFinalSnapshot) {
				return nil, apiErr("InvalidParameterCombination")
			}
			db.DBInstanceStatus = aws.String("deleting")
			return &rds.DeleteDBInstanceOutput{}, nil
		},
		DeleteDBClusterFn: func(_ context.Context, in *rds.DeleteDBClusterInput) (*rds.DeleteDBClusterOutput, error) {
			u, err := lock("DeleteDBCluster")
			defer u()
			if err != nil {
				return nil, err
			}
			cl, ok := c.clusters[aws.ToString(in.DBClusterIdentifier)]
			if !ok {
				return nil, apiErr(codeClusterNotFound)
			}
			if aws.ToString(cl.Status) == "creating" {
				return nil, apiErr(codeInvalidClusterSt)
			}
			cl.Status = aws.String("deleting")
			return &rds.DeleteDBClusterOutput{}, nil
		},
		DeleteDBSnapshotFn: func(_ context.Context, in *rds.DeleteDBSnapshotInput) (*rds.DeleteDBSnapshotOutput, error) {
			u, err := lock("DeleteDBSnapshot")
			defer u()
			if err != nil {
				return nil, err
			}
			sn, ok := c.snapshots[aws.ToString(in.DBSnapshotIdentifier)]
			if !ok {
				return nil, apiErr(codeSnapshotNotFound)
			}
			sn.Status = aws.String("deleting")
			return &rds.DeleteDBSnapshotOutput{}, nil
		},
	}
}

func filterValue(fs []dmstypes.Filter) string {
	if len(fs) == 0 || len(fs[0].Values) == 0 {
		return ""
	}
	return fs[0].Values[0]
}

func (c *cloud) dms() *fakeDMS {
	lock := func(op string) (func(), error) {
		c.mu.Lock()
		return c.mu.Unlock, c.call("dms:" + op)
	}
	arn := func(kind, id string) *string {
		return aws.String("arn:aws:dms:us-east-1:000000000000:" + kind + ":" + id)
	}
	return &fakeDMS{
		CreateReplicationInstanceFn: func(_ context.Context, in *dms.CreateReplicationInstanceInput) (*dms.CreateReplicationInstanceOutput, error) {
			u, err := lock("CreateReplicationInstance")
			defer u()
			if err != nil {
				return nil, err
			}
			id := aws.ToString(in.ReplicationInstanceIdentifier)
			if _, ok := c.ris[id]; ok {
				return nil, apiErr(codeDMSExists)
			}
			ri := &dmstypes.ReplicationInstance{ReplicationInstanceIdentifier: in.ReplicationInstanceIdentifier, ReplicationInstanceArn: arn("rep", id),
				ReplicationInstanceStatus: aws.String("creating")}
			c.ris[id] = ri
			cp := *ri
			return &dms.CreateReplicationInstanceOutput{ReplicationInstance: &cp}, nil
		},
		DescribeReplicationInstancesFn: func(_ context.Context, in *dms.DescribeReplicationInstancesInput) (*dms.DescribeReplicationInstancesOutput, error) {
			u, err := lock("DescribeReplicationInstances")
			defer u()
			if err != nil {
				return nil, err
			}
			ri, ok := c.ris[filterValue(in.Filters)]
			if !ok {
				return nil, apiErr(codeDMSNotFound)
			}
			return &dms.DescribeReplicationInstancesOutput{ReplicationInstances: []dmstypes.ReplicationInstance{*ri}}, nil
		},
		CreateEndpointFn: func(_ context.Context, in *dms.CreateEndpointInput) (*dms.CreateEndpointOutput, error) {
			u, err := lock("CreateEndpoint")
			defer u()
			if err != nil {
				return nil, err
			}
			id := aws.ToString(in.EndpointIdentifier)
			if _, ok := c.endpoints[id]; ok {
				return nil, apiErr(codeDMSExists)
			}
			ep := &dmstypes.Endpoint{EndpointIdentifier: in.EndpointIdentifier, EndpointArn: arn("endpoint", id), EndpointType: in.EndpointType,
				PostgreSQLSettings: in.PostgreSQLSettings, ServerName: in.ServerName, Username: in.Username}
			c.endpoints[id] = ep
			cp := *ep
			return &dms.CreateEndpointOutput{Endpoint: &cp}, nil
		},
		DescribeEndpointsFn: func(_ context.Context, in *dms.DescribeEndpointsInput) (*dms.DescribeEndpointsOutput, error) {
			u, err := lock("DescribeEndpoints")
			defer u()
			if err != nil {
				return nil, err
			}
			ep, ok := c.endpoints[filterValue(in.Filters)]
			if !ok {
				return nil, apiErr(codeDMSNotFound)
			}
			return &dms.DescribeEndpointsOutput{Endpoints: []dmstypes.Endpoint{*ep}}, nil
		},
		CreateReplicationTaskFn: func(_ context.Context, in *dms.CreateReplicationTaskInput) (*dms.CreateReplicationTaskOutput, error) {
			u, err := lock("CreateReplicationTask")
			defer u()
			if err != nil {
				return nil, err
			}
			id := aws.ToString(in.ReplicationTaskIdentifier)
			if _, ok := c.tasks[id]; ok {
				return nil, apiErr(codeDMSExists)
			}
			t := &dmstypes.ReplicationTask{ReplicationTaskIdentifier: in.ReplicationTaskIdentifier, ReplicationTaskArn: arn("task", id),
				Status: aws.String("creating"), CdcStartPosition: in.CdcStartPosition, MigrationType: in.MigrationType, TableMappings: in.TableMappings}
			c.tasks[id] = t
			cp := *t
			return &dms.CreateReplicationTaskOutput{ReplicationTask: &cp}, nil
		},
		DescribeReplicationTasksFn: func(_ context.Context, in *dms.DescribeReplicationTasksInput) (*dms.DescribeReplicationTasksOutput, error) {
			u, err := lock("DescribeReplicationTasks")
			defer u()
			if err != nil {
				return nil, err
			}
			t, ok := c.tasks[filterValue(in.Filters)]
			if !ok {
				return nil, apiErr(codeDMSNotFound)
			}
			return &dms.DescribeReplicationTasksOutput{ReplicationTasks: []dmstypes.ReplicationTask{*t}}, nil
		},
		StartReplicationTaskFn: func(_ context.Context, in *dms.StartReplicationTaskInput) (*dms.StartReplicationTaskOutput, error) {
			u, err := lock("StartReplicationTask")
			defer u()
			if err != nil {
				return nil, err
			}
			for _, t := range c.tasks {
				if aws.ToString(t.ReplicationTaskArn) == aws.ToString(in.ReplicationTaskArn) {
					now := time.Now()
					t.Status, t.ReplicationTaskStartDate = aws.String("starting"), &now
					return &dms.StartReplicationTaskOutput{}, nil
				}
			}
			return nil, apiErr(codeDMSNotFound)
		},
		StopReplicationTaskFn: func(_ context.Context, in *dms.StopReplicationTaskInput) (*dms.StopReplicationTaskOutput, error) {
			u, err := lock("StopReplicationTask")
			defer u()
			if err != nil {
				return nil, err
			}
			for _, t := range c.tasks {
				if aws.ToString(t.ReplicationTaskArn) == aws.ToString(in.ReplicationTaskArn) {
					t.Status = aws.String("stopping")
					return &dms.StopReplicationTaskOutput{}, nil
				}
			}
			return nil, apiErr(codeDMSNotFound)
		},
		DeleteReplicationTaskFn: func(_ context.Context, in *dms.DeleteReplicationTaskInput) (*dms.DeleteReplicationTaskOutput, error) {
			u, err := lock("DeleteReplicationTask")
			defer u()
			if err != nil {
				return nil, err
			}
			for _, t := range c.tasks {
				if aws.ToString(t.ReplicationTaskArn) == aws.ToString(in.ReplicationTaskArn) {
					t.Status = aws.String("deleting")
					return &dms.DeleteReplicationTaskOutput{}, nil
				}
			}
			return nil, apiErr(codeDMSNotFound)
		},
		DeleteEndpointFn: func(_ context.Context, in *dms.DeleteEndpointInput) (*dms.DeleteEndpointOutput, error) {
			u, err := lock("DeleteEndpoint")
			defer u()
			if err != nil {
				return nil, err
			}
			if len(c.tasks) > 0 {
				return nil, apiErr(codeDMSInvalidState)
			}
			for id, e := range c.endpoints {
				if aws.ToString(e.EndpointArn) == aws.ToString(in.EndpointArn) {
					delete(c.endpoints, id)
					return &dms.DeleteEndpointOutput{}, nil
				}
			}
			return nil, apiErr(codeDMSNotFound)
		},
		DeleteReplicationInstanceFn: func(_ context.Context, in *dms.DeleteReplicationInstanceInput) (*dms.DeleteReplicationInstanceOutput, error) {
			u, err := lock("DeleteReplicationInstance")
			defer u()
			if err != nil {
				return nil, err
			}
			if len(c.tasks) > 0 {
				return nil, apiErr(codeDMSInvalidState)
			}
			for _, ri := range c.ris {
				if aws.ToString(ri.ReplicationInstanceArn) == aws.ToString(in.ReplicationInstanceArn) {
					ri.ReplicationInstanceStatus = aws.String("deleting")
					return &dms.DeleteReplicationInstanceOutput{}, nil
				}
			}
			return nil, apiErr(codeDMSNotFound)
		},
		AddTagsToResourceFn: func(_ context.Context, in *dms.AddTagsToResourceInput) (*dms.AddTagsToResourceOutput, error) {
			u, err := lock("AddTagsToResource")
			defer u()
			return &dms.AddTagsToResourceOutput{}, err
		},
	}
}

func (c *cloud) secretsAPI() *fakeSecrets {
	return &fakeSecrets{GetSecretValueFn: func(_ context.Context, in *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.call("secretsmanager:GetSecretValue"); err != nil {
			return nil, err
		}
		v, ok := c.secrets[aws.ToString(in.SecretId)]
		if !ok {
			return nil, apiErr("ResourceNotFoundException")
		}
		return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v)}, nil
	}}
}

func (c *cloud) snsAPI() *fakeSNS {
	return &fakeSNS{PublishFn: func(_ context.Context, in *sns.PublishInput) (*sns.PublishOutput, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.call("sns:Publish"); err != nil {
			return nil, err
		}
		c.published = append(c.published, aws.ToString(in.Subject))
		return &sns.PublishOutput{MessageId: aws.String(fmt.Sprintf("m%d", len(c.published)))}, nil
	}}
}

// steps wires a Steps to the cloud.
func (c *cloud) steps() *Steps {
	return &Steps{RDS: c.rds(), DMS: c.dms(), Secrets: c.secretsAPI(), SNS: c.snsAPI(),
		Config: Config{SSLMode: "disable", TopicARN: "arn:aws:sns:us-east-1:000000000000:seedrepl", DMSSecretsRoleARN: "arn:aws:iam::000000000000:role/dms-secrets"},
		Log:    slog.New(slog.NewJSONHandler(io.Discard, nil))}
}

func (c *cloud) has(kind, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch kind {
	case "instance":
		_, ok := c.instances[id]
		return ok
	case "cluster":
		_, ok := c.clusters[id]
		return ok
	case "snapshot":
		_, ok := c.snapshots[id]
		return ok
	case "ri":
		_, ok := c.ris[id]
		return ok
	case "endpoint":
		_, ok := c.endpoints[id]
		return ok
	case "task":
		_, ok := c.tasks[id]
		return ok
	}
	return false
}

// leftovers lists every resource still in the cloud but the source.
func (c *cloud) leftovers(source string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id := range c.instances {
		if id != source {
			out = append(out, "instance "+id)
		}
	}
	for id := range c.clusters {
		out = append(out, "cluster "+id)
	}
	for id := range c.snapshots {
		out = append(out, "snapshot "+id)
	}
	for id := range c.ris {
		out = append(out, "ri "+id)
	}
	for id := range c.endpoints {
		out = append(out, "endpoint "+id)
	}
	for id := range c.tasks {
		out = append(out, "task "+id)
	}
	sort.Strings(out)
	return out
}

var _ = strings.TrimSpace
