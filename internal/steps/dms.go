package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	dmstypes "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/seedrepl/seedrepl/internal/lsn"
	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sferr"
)

func dmsTags(id string) []dmstypes.Tag {
	return []dmstypes.Tag{{Key: aws.String(TagManaged), Value: aws.String("true")}, {Key: aws.String(TagMigration), Value: aws.String(id)}}
}

func dmsFilter(name, value string) []dmstypes.Filter {
	return []dmstypes.Filter{{Name: aws.String(name), Values: []string{value}}}
}

func (s *Steps) describeReplicationInstance(ctx context.Context, id string) (*dmstypes.ReplicationInstance, error) {
	out, err := s.DMS.DescribeReplicationInstances(ctx, &dms.DescribeReplicationInstancesInput{Filters: dmsFilter("replication-instance-id", id)})
	if isCode(err, codeDMSNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe replication instance %s: %w", id, err)
	}
	for i := range out.ReplicationInstances {
		if aws.ToString(out.ReplicationInstances[i].ReplicationInstanceIdentifier) == id {
			return &out.ReplicationInstances[i], nil
		}
	}
	return nil, nil
}

func (s *Steps) describeEndpoint(ctx context.Context, id string) (*dmstypes.Endpoint, error) {
	out, err := s.DMS.DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{Filters: dmsFilter("endpoint-id", id)})
	if isCode(err, codeDMSNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe endpoint %s: %w", id, err)
	}
	for i := range out.Endpoints {
		if aws.ToString(out.Endpoints[i].EndpointIdentifier) == id {
			return &out.Endpoints[i], nil
		}
	}
	return nil, nil
}

func (s *Steps) describeTask(ctx context.Context, id string) (*dmstypes.ReplicationTask, error) {
	out, err := s.DMS.DescribeReplicationTasks(ctx, &dms.DescribeReplicationTasksInput{Filters: dmsFilter("replication-task-id", id), WithoutSettings: aws.Bool(true)})
	if isCode(err, codeDMSNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe replication task %s: %w", id, err)
	}
	for i := range out.ReplicationTasks {
		if aws.ToString(out.ReplicationTasks[i].ReplicationTaskIdentifier) == id {
			return &out.ReplicationTasks[i], nil
		}
	}
	return nil, nil
}

// TableMappings is the DMS selection rules for the scope. partitions are
// the leaf partitions of the scope's partitioned tables: test_decoding
// reports their changes under the partitions' names, so a rule naming only
// the parent would drop them all.
func TableMappings(scope pgops.Scope, partitions []pgops.Table) (string, error) {
	type locator struct {
		Schema string `json:"schema-name"`
		Table  string `json:"table-name"`
	}
	type rule struct {
		Type    string  `json:"rule-type"`
		ID      string  `json:"rule-id"`
		Name    string  `json:"rule-name"`
		Locator locator `json:"object-locator"`
		Action  string  `json:"rule-action"`
	}
	var rules []rule
	add := func(schema, table string) {
		id := strconv.Itoa(len(rules) + 1)
		rules = append(rules, rule{Type: "selection", ID: id, Name: "seedrepl-" + id, Locator: locator{schema, table}, Action: "include"})
	}
	for _, t := range scope.Tables {
		tb, err := pgops.ParseTable(t)
		if err != nil {
			return "", sferr.NewInvalidInput(err)
		}
		add(tb.Schema, tb.Name)
	}
	for _, p := range partitions {
		add(p.Schema, p.Name)
	}
	for _, sc := range scope.Schemas {
		add(sc, "%")
	}
	b, err := json.Marshal(map[string]any{"rules": rules})
	return string(b), err
}

// taskSettings: CDC into existing tables (the restore made them), logging on.
const taskSettings = `{"TargetMetadata":{"SupportLobs":true,"LimitedSizeLobMode":true,"LobMaxSize":32},` +
	`"FullLoadSettings":{"TargetTablePrepMode":"DO_NOTHING"},"Logging":{"EnableLogging":true}}`

// ConfigureDMS creates (or finds) the replication instance, the source
// endpoint on the existing slot (test_decoding, credentials from the
// replication secret through Secrets Manager), the target endpoint, and a
// CDC-only task starting at the seed; then starts it. While the replication
// instance is still being created it returns NotReadyYet (retried).
func (s *Steps) ConfigureDMS(ctx context.Context, st State) (*ReplicationResult, error) {
	log := s.logger(&st, "ConfigureDMS")
	in := st.Input
	if in.DMS == nil {
		return nil, sferr.InvalidInputf("/dms is required in mode dms")
	}
	if st.Proof == nil || !st.Proof.Proved || st.Seed == nil || st.Seed.LSN == lsn.Invalid {
		return nil, sferr.NewSeedProofFailed(fmt.Errorf("the seed is not proven ($.proof): refusing to start DMS"))
	}
	if s.Config.DMSSecretsRoleARN == "" {
		return nil, sferr.Terminalf("SEEDREPL_DMS_SECRETS_ROLE_ARN is not set: DMS needs a role to read the replication secret")
	}
	n := NamesFor(in)
	res := &ReplicationResult{Mode: ModeDMS, Seed: st.Seed.LSN, CdcStartPosition: st.Seed.LSN.String(), StartedAt: s.stamp()}

	// Replication instance.
	ri, err := s.describeReplicationInstance(ctx, n.DMSInstance)
	if err != nil {
		return nil, err
	}
	if ri == nil {
		req := &dms.CreateReplicationInstanceInput{
			ReplicationInstanceIdentifier:    aws.String(n.DMSInstance),
			ReplicationInstanceClass:         aws.String(in.DMS.ReplicationInstanceClass),
			ReplicationSubnetGroupIdentifier: aws.String(in.DMS.ReplicationSubnetGroupID),
			VpcSecurityGroupIds:              in.DMS.VPCSecurityGroupIDs,
			MultiAZ:                          aws.Bool(in.DMS.MultiAZ),
			PubliclyAccessible:               aws.Bool(false),
			Tags:                             dmsTags(in.MigrationID),
		}
		if in.DMS.AllocatedStorageGiB > 0 {
			req.AllocatedStorage = aws.Int32(int32(in.DMS.AllocatedStorageGiB))
		}
		if in.DMS.EngineVersion != "" {
			req.EngineVersion = aws.String(in.DMS.EngineVersion)
		}
		out, err := s.DMS.CreateReplicationInstance(ctx, req)
		if err != nil && !isCode(err, codeDMSExists) {
			return nil, fmt.Errorf("create replication instance %s: %w", n.DMSInstance, err)
		}
		if err == nil {
			ri = out.ReplicationInstance
			log.Info("replication instance requested", "id", n.DMSInstance)
		} else if ri, err = s.describeReplicationInstance(ctx, n.DMSInstance); err != nil || ri == nil {
			return nil, sferr.NotReadyYetf("replication instance %s exists but is not visible yet", n.DMSInstance)
		}
	}
	res.ReplicationInstanceARN = aws.ToString(ri.ReplicationInstanceArn)

	// Source endpoint: the existing slot, credentials through Secrets Manager.
	srcEP, err := s.describeEndpoint(ctx, n.DMSSource)
	if err != nil {
		return nil, err
	}
	if srcEP == nil {
		out, err := s.DMS.CreateEndpoint(ctx, &dms.CreateEndpointInput{
			EndpointIdentifier: aws.String(n.DMSSource),
			EndpointType:       dmstypes.ReplicationEndpointTypeValueSource,
			EngineName:         aws.String("postgres"),
			DatabaseName:       aws.String(in.Source.Database),
			SslMode:            dmsSSLMode(in.DMS),
			PostgreSQLSettings: &dmstypes.PostgreSQLSettings{
				SlotName:                    aws.String(n.Slot),
				PluginName:                  dmstypes.PluginNameValueTestDecoding,
				DatabaseName:                aws.String(in.Source.Database),
				SecretsManagerSecretId:      aws.String(in.Source.ReplicationSecretARN),
				SecretsManagerAccessRoleArn: aws.String(s.Config.DMSSecretsRoleARN),
				HeartbeatEnable:             aws.Bool(true),
			},
			Tags: dmsTags(in.MigrationID),
		})
		if err != nil && !isCode(err, codeDMSExists) {
			return nil, fmt.Errorf("create source endpoint %s: %w", n.DMSSource, err)
		}
		if err == nil {
			srcEP = out.Endpoint
		} else if srcEP, err = s.describeEndpoint(ctx, n.DMSSource); err != nil || srcEP == nil {
			return nil, sferr.NotReadyYetf("endpoint %s exists but is not visible yet", n.DMSSource)
		}
	}
	res.SourceEndpointARN = aws.ToString(srcEP.EndpointArn)

	// Target endpoint: the cluster's writer endpoint. The admin secret's
	// host is the source's (the restore kept its roles), so the target is
	// named explicitly and the credentials read here, never passed on.
	tgtEP, err := s.describeEndpoint(ctx, n.DMSTarget)
	if err != nil {
		return nil, err
	}
	if tgtEP == nil {
		ep, _, err := s.clusterEndpoint(ctx, n.Cluster)
		if err != nil {
			return nil, err
		}
		sec, err := s.secret(ctx, targetSecretARN(in))
		if err != nil {
			return nil, err
		}
		out, err := s.DMS.CreateEndpoint(ctx, &dms.CreateEndpointInput{
			EndpointIdentifier: aws.String(n.DMSTarget),
			EndpointType:       dmstypes.ReplicationEndpointTypeValueTarget,
			EngineName:         aws.String("aurora-postgresql"),
			ServerName:         aws.String(ep.Host),
			Port:               aws.Int32(int32(ep.Port)),
			DatabaseName:       aws.String(in.Source.Database),
			Username:           aws.String(sec.Username),
			Password:           aws.String(sec.Password),
			SslMode:            dmsSSLMode(in.DMS),
			Tags:               dmsTags(in.MigrationID),
		})
		if err != nil && !isCode(err, codeDMSExists) {
			return nil, fmt.Errorf("create target endpoint %s: %w", n.DMSTarget, err)
		}
		if err == nil {
			tgtEP = out.Endpoint
		} else if tgtEP, err = s.describeEndpoint(ctx, n.DMSTarget); err != nil || tgtEP == nil {
			return nil, sferr.NotReadyYetf("endpoint %s exists but is not visible yet", n.DMSTarget)
		}
	}
	res.TargetEndpointARN = aws.ToString(tgtEP.EndpointArn)

	if st := aws.ToString(ri.ReplicationInstanceStatus); st != "available" {
		if st == "failed" || st == "deleting" || st == "incompatible-network" || st == "storage-full" {
			return nil, sferr.ResourceFailedf("replication instance %s is %s", n.DMSInstance, st)
		}
		return nil, sferr.NotReadyYetf("replication instance %s is %s; the task is created once it is available", n.DMSInstance, st)
	}

	// The CDC-only task from the seed.
	task, err := s.describeTask(ctx, n.DMSTask)
	if err != nil {
		return nil, err
	}
	if task == nil {
		list := s.scopePartitions
		if s.Partitions != nil {
			list = s.Partitions
		}
		partitions, err := list(ctx, in)
		if err != nil {
			return nil, err
		}
		mappings, err := TableMappings(in.Scope, partitions)
		if err != nil {
			return nil, err
		}
		out, err := s.DMS.CreateReplicationTask(ctx, &dms.CreateReplicationTaskInput{
			ReplicationTaskIdentifier: aws.String(n.DMSTask),
			MigrationType:             dmstypes.MigrationTypeValueCdc,
			ReplicationInstanceArn:    ri.ReplicationInstanceArn,
			SourceEndpointArn:         srcEP.EndpointArn,
			TargetEndpointArn:         tgtEP.EndpointArn,
			TableMappings:             aws.String(mappings),
			CdcStartPosition:          aws.String(st.Seed.LSN.String()),
			ReplicationTaskSettings:   aws.String(taskSettings),
			Tags:                      dmsTags(in.MigrationID),
		})
		if err != nil && !isCode(err, codeDMSExists) {
			return nil, fmt.Errorf("create replication task %s: %w", n.DMSTask, err)
		}
		if err == nil {
			task = out.ReplicationTask
		} else if task, err = s.describeTask(ctx, n.DMSTask); err != nil || task == nil {
			return nil, sferr.NotReadyYetf("task %s exists but is not visible yet", n.DMSTask)
		}
		log.Info("task created", "task", n.DMSTask, "cdcStartPosition", st.Seed.LSN.String())
	}
	res.TaskARN = aws.ToString(task.ReplicationTaskArn)
	res.Status = aws.ToString(task.Status)
	switch res.Status {
	case "creating", "modifying":
		return nil, sferr.NotReadyYetf("replication task %s is %s", n.DMSTask, res.Status)
	case "ready":
		_, err := s.DMS.StartReplicationTask(ctx, &dms.StartReplicationTaskInput{
			ReplicationTaskArn:       task.ReplicationTaskArn,
			StartReplicationTaskType: dmstypes.StartReplicationTaskTypeValueStartReplication,
			CdcStartPosition:         aws.String(st.Seed.LSN.String()),
		})
		if err != nil {
			return nil, fmt.Errorf("start replication task %s: %w", n.DMSTask, err)
		}
		res.Status = "starting"
		log.Info("task started", "task", n.DMSTask)
	case "starting", "running":
	case "stopped":
		if task.ReplicationTaskStartDate == nil {
			return nil, sferr.NotReadyYetf("replication task %s is stopped and was never started", n.DMSTask)
		}
		return nil, sferr.ResourceFailedf("replication task %s stopped: %s %s", n.DMSTask, aws.ToString(task.StopReason), aws.ToString(task.LastFailureMessage))
	default:
		return nil, sferr.ResourceFailedf("replication task %s is %s: %s", n.DMSTask, res.Status, aws.ToString(task.LastFailureMessage))
	}
	res.Ready = res.Status == "running"
	res.Attempt = 0
	if !res.Ready {
		res.WaitSeconds = NextWait(0, 0, -1)
	}
	return res, nil
}

// PollDMSTask waits for the task to run; a failed or stopped task fails.
func (s *Steps) PollDMSTask(ctx context.Context, st State) (*ReplicationResult, error) {
	log := s.logger(&st, "PollDMSTask")
	n := NamesFor(st.Input)
	task, err := s.describeTask(ctx, n.DMSTask)
	if err != nil {
		return nil, err
	}
	if task == nil {
		return nil, sferr.ResourceFailedf("replication task %s does not exist", n.DMSTask)
	}
	res := &ReplicationResult{Mode: ModeDMS}
	if st.Replication != nil {
		r := *st.Replication
		res = &r
	}
	res.TaskARN = aws.ToString(task.ReplicationTaskArn)
	res.Status = aws.ToString(task.Status)
	switch res.Status {
	case "running":
		res.Ready = true
		res.FinishedAt = s.stamp()
	case "starting", "creating", "ready", "modifying":
		res.Ready = false
	default:
		return nil, sferr.ResourceFailedf("replication task %s is %s: %s %s", n.DMSTask, res.Status, aws.ToString(task.StopReason), aws.ToString(task.LastFailureMessage))
	}
	res.Attempt++
	res.WaitSeconds = 0
	if !res.Ready {
		var elapsed time.Duration
		if t, err := time.Parse(time.RFC3339, res.StartedAt); err == nil {
			elapsed = s.now().Sub(t)
		}
		if err := s.pollExpired(n.DMSTask, res.Status, elapsed); err != nil {
			return nil, err
		}
		res.WaitSeconds = NextWait(res.Attempt, elapsed, -1)
	}
	log.Info("task polled", "status", res.Status, "ready", res.Ready, "waitSeconds", res.WaitSeconds)
	return res, nil
}

// dmsSSLMode is the endpoints' SslMode: the input's, else require.
func dmsSSLMode(d *DMSInput) dmstypes.DmsSslModeValue {
	if d != nil && d.SSLMode != "" {
		return dmstypes.DmsSslModeValue(d.SSLMode)
	}
	return dmstypes.DmsSslModeValueRequire
}

// scopePartitions lists the leaf partitions of the listed tables, read on the source.
func (s *Steps) scopePartitions(ctx context.Context, in Input) ([]pgops.Table, error) {
	if len(in.Scope.Tables) == 0 {
		return nil, nil // a schema rule (%) selects the partitions too
	}
	conn, err := s.connectSource(ctx, in)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var out []pgops.Table
	for _, name := range in.Scope.Tables {
		t, err := pgops.ParseTable(name)
		if err != nil {
			return nil, sferr.NewInvalidInput(err)
		}
		parts, err := pgops.LeafPartitions(ctx, conn, t)
		if err != nil {
			return nil, err
		}
		out = append(out, parts...)
	}
	return out, nil
}
