package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/seedrepl/seedrepl/internal/sferr"
)

func rdsTags(id string) []rdstypes.Tag {
	return []rdstypes.Tag{{Key: aws.String(TagManaged), Value: aws.String("true")}, {Key: aws.String(TagMigration), Value: aws.String(id)}}
}

// ownedBy reports whether a resource's tags say this migration made it.
func ownedBy(tags []rdstypes.Tag, id string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == TagMigration && aws.ToString(t.Value) == id {
			return true
		}
	}
	return false
}

func notOurs(kind, name, id string) error {
	return sferr.ResourceFailedf("%s %s exists but is not tagged %s=%s: it is not this migration's; choose another migrationId (or target.clusterId), or remove it if it is a leftover you own",
		kind, name, TagMigration, id)
}

// Statuses after which waiting is pointless.
var failedStatus = map[string]bool{
	"failed": true, "incompatible-restore": true, "incompatible-parameters": true, "incompatible-network": true,
	"incompatible-option-group": true, "incompatible-credentials": true, "inaccessible-encryption-credentials": true,
	"inaccessible-encryption-credentials-recoverable": true, "storage-full": true, "restore-error": true,
	"insufficient-capacity": true, "deleting": true, "deleted": true, "stopped": true, "stopping": true,
}

func statusCheck(kind, id, status string) error {
	if failedStatus[status] {
		return sferr.ResourceFailedf("%s %s is %s", kind, id, status)
	}
	return nil
}

func ts(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ---------------------------------------------------------------- snapshot

func (s *Steps) describeSnapshot(ctx context.Context, id string) (*rdstypes.DBSnapshot, error) {
	out, err := s.RDS.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String(id)})
	if isCode(err, codeSnapshotNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe snapshot %s: %w", id, err)
	}
	if len(out.DBSnapshots) == 0 {
		return nil, nil
	}
	return &out.DBSnapshots[0], nil
}

func snapshotPoll(sn *rdstypes.DBSnapshot) *Poll {
	p := &Poll{ID: aws.ToString(sn.DBSnapshotIdentifier), ARN: aws.ToString(sn.DBSnapshotArn), Status: aws.ToString(sn.Status),
		Percent: int(aws.ToInt32(sn.PercentProgress)), EngineVer: aws.ToString(sn.EngineVersion)}
	p.Ready = p.Status == "available"
	return p
}

// CreateSnapshot starts the snapshot of the source, after the slot exists.
func (s *Steps) CreateSnapshot(ctx context.Context, st State) (*Poll, error) {
	log := s.logger(&st, "CreateSnapshot")
	in := st.Input
	n := NamesFor(in)
	sn, err := s.describeSnapshot(ctx, n.Snapshot)
	if err != nil {
		return nil, err
	}
	created := false
	if sn == nil {
		out, err := s.RDS.CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{
			DBSnapshotIdentifier: aws.String(n.Snapshot),
			DBInstanceIdentifier: aws.String(in.Source.InstanceID),
			Tags:                 rdsTags(in.MigrationID),
		})
		switch {
		case isCode(err, codeSnapshotExists):
			if sn, err = s.describeSnapshot(ctx, n.Snapshot); err != nil {
				return nil, err
			}
			if sn == nil {
				return nil, sferr.NotReadyYetf("snapshot %s exists but is not visible yet", n.Snapshot)
			}
		case err != nil:
			return nil, fmt.Errorf("create snapshot %s of %s: %w", n.Snapshot, in.Source.InstanceID, err)
		default:
			sn, created = out.DBSnapshot, true
		}
	}
	if !created {
		if !ownedBy(sn.TagList, in.MigrationID) {
			return nil, notOurs("snapshot", n.Snapshot, in.MigrationID)
		}
		if src := aws.ToString(sn.DBInstanceIdentifier); src != "" && src != in.Source.InstanceID {
			return nil, sferr.ResourceFailedf("snapshot %s is of %s, not of the source %s", n.Snapshot, src, in.Source.InstanceID)
		}
		// A snapshot older than the slot would miss the changes between them.
		if st.Slot != nil && st.Slot.Created && sn.SnapshotCreateTime != nil {
			if slotAt, err := time.Parse(time.RFC3339, st.Slot.At); err == nil && sn.SnapshotCreateTime.Before(slotAt.Add(-time.Second)) {
				return nil, sferr.ResourceFailedf("snapshot %s was taken at %s, before the slot was created at %s: it cannot seed this slot; delete the snapshot or use a new migrationId",
					n.Snapshot, ts(sn.SnapshotCreateTime), st.Slot.At)
			}
		}
	}
	p := snapshotPoll(sn)
	p.Created = created
	p.StartedAt = s.stamp()
	if !created && sn.SnapshotCreateTime != nil {
		p.StartedAt = ts(sn.SnapshotCreateTime)
	}
	if err := statusCheck("snapshot", n.Snapshot, p.Status); err != nil {
		return nil, err
	}
	s.nextPoll(nil, p, time.Time{})
	p.Attempt = 0
	log.Info("snapshot", "snapshot", n.Snapshot, "created", created, "status", p.Status, "waitSeconds", p.WaitSeconds)
	return p, nil
}

// PollSnapshot reports the snapshot's status and the next wait.
func (s *Steps) PollSnapshot(ctx context.Context, st State) (*Poll, error) {
	log := s.logger(&st, "PollSnapshot")
	n := NamesFor(st.Input)
	sn, err := s.describeSnapshot(ctx, n.Snapshot)
	if err != nil {
		return nil, err
	}
	if sn == nil {
		return nil, sferr.NotReadyYetf("snapshot %s not found (yet)", n.Snapshot)
	}
	p := snapshotPoll(sn)
	if err := statusCheck("snapshot", n.Snapshot, p.Status); err != nil {
		return nil, err
	}
	if err := s.nextPoll(st.Snapshot, p, aws.ToTime(sn.SnapshotCreateTime)); err != nil {
		return nil, err
	}
	log.Info("snapshot polled", "status", p.Status, "percent", p.Percent, "ready", p.Ready, "waitSeconds", p.WaitSeconds)
	return p, nil
}

// ---------------------------------------------------------------- Aurora cluster

func clusterPoll(c *rdstypes.DBCluster) *Poll {
	p := &Poll{ID: aws.ToString(c.DBClusterIdentifier), ARN: aws.ToString(c.DBClusterArn), Status: aws.ToString(c.Status),
		Endpoint: aws.ToString(c.Endpoint), Port: int(aws.ToInt32(c.Port)), EngineVer: aws.ToString(c.EngineVersion)}
	if pct := aws.ToString(c.PercentProgress); pct != "" {
		var v int
		if _, err := fmt.Sscanf(strings.TrimSuffix(pct, "%"), "%d", &v); err == nil {
			p.Percent = v
		}
	}
	p.Ready = p.Status == "available"
	return p
}

// RestoreAuroraCluster restores the Aurora PostgreSQL cluster from the snapshot.
func (s *Steps) RestoreAuroraCluster(ctx context.Context, st State) (*Poll, error) {
	log := s.logger(&st, "RestoreAuroraCluster")
	in := st.Input
	n := NamesFor(in)
	c, err := s.describeCluster(ctx, n.Cluster)
	if err != nil {
		return nil, err
	}
	created := false
	if c == nil {
		snapARN := ""
		if st.Snapshot != nil {
			snapARN = st.Snapshot.ARN
		}
		if snapARN == "" {
			sn, err := s.describeSnapshot(ctx, n.Snapshot)
			if err != nil {
				return nil, err
			}
			if sn == nil {
				return nil, sferr.ResourceFailedf("snapshot %s does not exist", n.Snapshot)
			}
			snapARN = aws.ToString(sn.DBSnapshotArn)
		}
		req := &rds.RestoreDBClusterFromSnapshotInput{
			DBClusterIdentifier: aws.String(n.Cluster),
			SnapshotIdentifier:  aws.String(snapARN),
			Engine:              aws.String("aurora-postgresql"),
			DBSubnetGroupName:   aws.String(in.Target.DBSubnetGroupName),
			VpcSecurityGroupIds: in.Target.VPCSecurityGroupIDs,
			CopyTagsToSnapshot:  aws.Bool(true),
			Tags:                rdsTags(in.MigrationID),
		}
		if in.Target.DBClusterParameterGroupName != "" {
			req.DBClusterParameterGroupName = aws.String(in.Target.DBClusterParameterGroupName)
		}
		if in.Target.KMSKeyID != "" {
			req.KmsKeyId = aws.String(in.Target.KMSKeyID)
		}
		out, err := s.RDS.RestoreDBClusterFromSnapshot(ctx, req)
		switch {
		case isCode(err, codeClusterExists):
			if c, err = s.describeCluster(ctx, n.Cluster); err != nil {
				return nil, err
			}
			if c == nil {
				return nil, sferr.NotReadyYetf("cluster %s exists but is not visible yet", n.Cluster)
			}
		case err != nil:
			return nil, fmt.Errorf("restore cluster %s from %s: %w", n.Cluster, n.Snapshot, err)
		default:
			c, created = out.DBCluster, true
		}
	}
	if !created && !ownedBy(c.TagList, in.MigrationID) {
		return nil, notOurs("DB cluster", n.Cluster, in.MigrationID)
	}
	p := clusterPoll(c)
	if err := statusCheck("DB cluster", n.Cluster, p.Status); err != nil {
		return nil, err
	}
	p.Created = created
	p.StartedAt = s.stamp()
	if !created && c.ClusterCreateTime != nil {
		p.StartedAt = ts(c.ClusterCreateTime)
	}
	s.nextPoll(nil, p, time.Time{})
	p.Attempt = 0
	log.Info("cluster", "cluster", n.Cluster, "created", created, "status", p.Status)
	return p, nil
}

// PollAuroraCluster reports the restored cluster's status.
func (s *Steps) PollAuroraCluster(ctx context.Context, st State) (*Poll, error) {
	return s.pollCluster(ctx, st, "PollAuroraCluster", "")
}

func (s *Steps) pollCluster(ctx context.Context, st State, step, wantVersion string) (*Poll, error) {
	log := s.logger(&st, step)
	n := NamesFor(st.Input)
	c, err := s.describeCluster(ctx, n.Cluster)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, sferr.NotReadyYetf("DB cluster %s not found (yet)", n.Cluster)
	}
	p := clusterPoll(c)
	if err := statusCheck("DB cluster", n.Cluster, p.Status); err != nil {
		return nil, err
	}
	if wantVersion != "" {
		// Upgraded: the cluster is available at the new version and so is every instance.
		p.Ready = p.Ready && p.EngineVer == wantVersion
		if p.Ready {
			ids, ready, err := s.clusterInstances(ctx, n)
			if err != nil {
				return nil, err
			}
			p.IDs = ids
			p.Ready = ready
		}
	}
	if err := s.nextPoll(st.Aurora, p, aws.ToTime(c.ClusterCreateTime)); err != nil {
		return nil, err
	}
	log.Info("cluster polled", "status", p.Status, "percent", p.Percent, "engineVersion", p.EngineVer, "ready", p.Ready, "waitSeconds", p.WaitSeconds)
	return p, nil
}

// clusterInstances describes the writer and readers: their ids and whether all are available.
func (s *Steps) clusterInstances(ctx context.Context, n Names) ([]string, bool, error) {
	ids := append([]string{n.Writer}, n.Readers...)
	all := true
	for _, id := range ids {
		db, err := s.describeInstance(ctx, id)
		if err != nil {
			return ids, false, err
		}
		if db == nil {
			return ids, false, sferr.ResourceFailedf("DB instance %s is gone", id)
		}
		status := aws.ToString(db.DBInstanceStatus)
		if err := statusCheck("DB instance", id, status); err != nil {
			return ids, false, err
		}
		if status != "available" {
			all = false
		}
	}
	return ids, all, nil
}

// ---------------------------------------------------------------- Aurora instances

// CreateAuroraInstances creates the writer, then the readers.
func (s *Steps) CreateAuroraInstances(ctx context.Context, st State) (*Poll, error) {
	log := s.logger(&st, "CreateAuroraInstances")
	in := st.Input
	n := NamesFor(in)
	// No DescribeDBClusters here (not in this Lambda's grant): the cluster
	// was seen available by PollAuroraCluster; CreateDBInstance fails with
	// DBClusterNotFoundFault otherwise.
	ids := append([]string{n.Writer}, n.Readers...)
	anyCreated := false
	status := "available"
	for i, id := range ids {
		db, err := s.describeInstance(ctx, id)
		if err != nil {
			return nil, err
		}
		if db != nil {
			if !ownedBy(db.TagList, in.MigrationID) || aws.ToString(db.DBClusterIdentifier) != n.Cluster {
				return nil, notOurs("DB instance", id, in.MigrationID)
			}
			if err := statusCheck("DB instance", id, aws.ToString(db.DBInstanceStatus)); err != nil {
				return nil, err
			}
			if aws.ToString(db.DBInstanceStatus) != "available" {
				status = "creating"
			}
			continue
		}
		req := &rds.CreateDBInstanceInput{
			DBInstanceIdentifier: aws.String(id),
			DBClusterIdentifier:  aws.String(n.Cluster),
			DBInstanceClass:      aws.String(in.Target.InstanceClass),
			Engine:               aws.String("aurora-postgresql"),
			PromotionTier:        aws.Int32(int32(min(i, 15))),
			PubliclyAccessible:   aws.Bool(false),
			Tags:                 rdsTags(in.MigrationID),
		}
		if in.Target.DBParameterGroupName != "" {
			req.DBParameterGroupName = aws.String(in.Target.DBParameterGroupName)
		}
		_, err = s.RDS.CreateDBInstance(ctx, req)
		if err != nil && !isCode(err, codeInstanceExists) {
			return nil, fmt.Errorf("create DB instance %s in %s: %w", id, n.Cluster, err)
		}
		anyCreated = anyCreated || err == nil
		status = "creating"
		log.Info("instance requested", "instance", id, "writer", i == 0)
	}
	p := &Poll{ID: n.Cluster, IDs: ids, Status: status, Ready: status == "available", Created: anyCreated, StartedAt: s.stamp()}
	s.nextPoll(nil, p, time.Time{})
	p.Attempt = 0
	return p, nil
}

// PollAuroraInstances reports whether the writer and every reader are available.
func (s *Steps) PollAuroraInstances(ctx context.Context, st State) (*Poll, error) {
	log := s.logger(&st, "PollAuroraInstances")
	n := NamesFor(st.Input)
	ids, ready, err := s.clusterInstances(ctx, n)
	if err != nil {
		return nil, err
	}
	p := &Poll{ID: n.Cluster, IDs: ids, Status: "creating", Ready: ready}
	if ready {
		p.Status = "available"
	}
	if err := s.nextPoll(st.AuroraInstances, p, time.Time{}); err != nil {
		return nil, err
	}
	log.Info("instances polled", "ready", ready, "waitSeconds", p.WaitSeconds)
	return p, nil
}

// ---------------------------------------------------------------- upgrade

func major(v string) string {
	if i := strings.IndexByte(v, '.'); i >= 0 {
		return v[:i]
	}
	return v
}

// UpgradeAuroraCluster asks for the engine version the input names. Already
// at it, or already upgrading: nothing is asked again.
func (s *Steps) UpgradeAuroraCluster(ctx context.Context, st State) (*Poll, error) {
	log := s.logger(&st, "UpgradeAuroraCluster")
	in := st.Input
	n := NamesFor(in)
	want := in.Target.EngineVersion
	if want == "" {
		return nil, sferr.InvalidInputf("/target/engineVersion is not set: no upgrade to make")
	}
	c, err := s.describeCluster(ctx, n.Cluster)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, sferr.ResourceFailedf("DB cluster %s does not exist", n.Cluster)
	}
	if !ownedBy(c.TagList, in.MigrationID) {
		return nil, notOurs("DB cluster", n.Cluster, in.MigrationID)
	}
	p := clusterPoll(c)
	from := p.EngineVer
	switch {
	case p.EngineVer == want:
		p.Ready = p.Status == "available"
	case p.Status == "upgrading" || p.Status == "modifying":
		p.Ready = false
	default:
		out, err := s.RDS.ModifyDBCluster(ctx, &rds.ModifyDBClusterInput{
			DBClusterIdentifier:      aws.String(n.Cluster),
			EngineVersion:            aws.String(want),
			AllowMajorVersionUpgrade: aws.Bool(major(want) != major(from)),
			ApplyImmediately:         aws.Bool(true),
		})
		if err != nil {
			return nil, fmt.Errorf("upgrade cluster %s from %s to %s: %w", n.Cluster, from, want, err)
		}
		p = clusterPoll(out.DBCluster)
		p.Ready = false
		p.Status = "upgrading"
	}
	p.StartedAt = s.stamp()
	s.nextPoll(nil, p, time.Time{})
	p.Attempt = 0
	log.Info("upgrade", "from", from, "to", want, "status", p.Status)
	return p, nil
}

// PollAuroraUpgrade reports whether the cluster and its instances are
// available at the new version.
func (s *Steps) PollAuroraUpgrade(ctx context.Context, st State) (*Poll, error) {
	return s.pollCluster(ctx, st, "PollAuroraUpgrade", st.Input.Target.EngineVersion)
}

// ---------------------------------------------------------------- temporary instance

func instancePoll(db *rdstypes.DBInstance) *Poll {
	p := &Poll{ID: aws.ToString(db.DBInstanceIdentifier), ARN: aws.ToString(db.DBInstanceArn), Status: aws.ToString(db.DBInstanceStatus),
		EngineVer: aws.ToString(db.EngineVersion)}
	if db.Endpoint != nil {
		p.Endpoint, p.Port = aws.ToString(db.Endpoint.Address), int(aws.ToInt32(db.Endpoint.Port))
	}
	p.Ready = p.Status == "available"
	return p
}

// RestoreTempInstance restores the temporary RDS instance that yields the seed.
func (s *Steps) RestoreTempInstance(ctx context.Context, st State) (*Poll, error) {
	log := s.logger(&st, "RestoreTempInstance")
	in := st.Input
	n := NamesFor(in)
	db, err := s.describeInstance(ctx, n.TempInstance)
	if err != nil {
		return nil, err
	}
	created := false
	if db == nil {
		subnet, sgs := in.Temp.DBSubnetGroupName, in.Temp.VPCSecurityGroupIDs
		if subnet == "" {
			subnet = in.Target.DBSubnetGroupName
		}
		if len(sgs) == 0 {
			sgs = in.Target.VPCSecurityGroupIDs
		}
		out, err := s.RDS.RestoreDBInstanceFromDBSnapshot(ctx, &rds.RestoreDBInstanceFromDBSnapshotInput{
			DBInstanceIdentifier: aws.String(n.TempInstance),
			DBSnapshotIdentifier: aws.String(n.Snapshot),
			DBInstanceClass:      aws.String(in.Temp.InstanceClass),
			DBSubnetGroupName:    aws.String(subnet),
			VpcSecurityGroupIds:  sgs,
			MultiAZ:              aws.Bool(false),
			PubliclyAccessible:   aws.Bool(false),
			DeletionProtection:   aws.Bool(false),
			Tags:                 rdsTags(in.MigrationID),
		})
		switch {
		case isCode(err, codeInstanceExists):
			if db, err = s.describeInstance(ctx, n.TempInstance); err != nil {
				return nil, err
			}
			if db == nil {
				return nil, sferr.NotReadyYetf("instance %s exists but is not visible yet", n.TempInstance)
			}
		case err != nil:
			return nil, fmt.Errorf("restore temporary instance %s from %s: %w", n.TempInstance, n.Snapshot, err)
		default:
			db, created = out.DBInstance, true
		}
	}
	if !created && !ownedBy(db.TagList, in.MigrationID) {
		return nil, notOurs("DB instance", n.TempInstance, in.MigrationID)
	}
	p := instancePoll(db)
	if err := statusCheck("temporary instance", n.TempInstance, p.Status); err != nil {
		return nil, err
	}
	p.Created = created
	p.StartedAt = s.stamp()
	s.nextPoll(nil, p, time.Time{})
	p.Attempt = 0
	log.Info("temporary instance", "instance", n.TempInstance, "created", created, "status", p.Status)
	return p, nil
}

// PollTempInstance reports the temporary instance's status.
func (s *Steps) PollTempInstance(ctx context.Context, st State) (*Poll, error) {
	log := s.logger(&st, "PollTempInstance")
	n := NamesFor(st.Input)
	db, err := s.describeInstance(ctx, n.TempInstance)
	if err != nil {
		return nil, err
	}
	if db == nil {
		return nil, sferr.NotReadyYetf("temporary instance %s not found (yet)", n.TempInstance)
	}
	p := instancePoll(db)
	if err := statusCheck("temporary instance", n.TempInstance, p.Status); err != nil {
		return nil, err
	}
	if err := s.nextPoll(st.Temp, p, aws.ToTime(db.InstanceCreateTime)); err != nil {
		return nil, err
	}
	log.Info("temporary instance polled", "status", p.Status, "ready", p.Ready, "waitSeconds", p.WaitSeconds)
	return p, nil
}

// DeleteTempInstance deletes the temporary instance right after the seed
// is read. Gone already: fine.
func (s *Steps) DeleteTempInstance(ctx context.Context, st State) (*Poll, error) {
	log := s.logger(&st, "DeleteTempInstance")
	in := st.Input
	n := NamesFor(in)
	p := &Poll{ID: n.TempInstance, Status: "deleted", Ready: true}
	if st.Temp != nil {
		p.StartedAt, p.Created = st.Temp.StartedAt, st.Temp.Created
	}
	db, err := s.describeInstance(ctx, n.TempInstance)
	if err != nil {
		return nil, err
	}
	if db == nil {
		return p, nil
	}
	if !ownedBy(db.TagList, in.MigrationID) {
		return nil, notOurs("DB instance", n.TempInstance, in.MigrationID)
	}
	if aws.ToString(db.DBInstanceStatus) == "deleting" {
		p.Status = "deleting"
		return p, nil
	}
	_, err = s.RDS.DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{
		DBInstanceIdentifier:   aws.String(n.TempInstance),
		SkipFinalSnapshot:      aws.Bool(true),
		DeleteAutomatedBackups: aws.Bool(true),
	})
	if err != nil && !isCode(err, codeInstanceNotFound) {
		return nil, fmt.Errorf("delete temporary instance %s: %w", n.TempInstance, err)
	}
	if err == nil {
		p.Status = "deleting"
	}
	log.Info("temporary instance deleted", "instance", n.TempInstance)
	return p, nil
}
