package stack

// The IAM table: for each Task state (statemachine.Functions[].Name), the API
// actions its Lambda may call, and the statements that grant exactly those.
// The handler engineers are bound by the same table; tests and docs read it.
//
// Facts behind the resources and conditions (Service Authorization Reference,
// "Actions, resources, and condition keys for Amazon RDS / AWS DMS"):
//
//   - RDS resource types used: db, cluster, snapshot, pg, cluster-pg, og,
//     subgrp. RestoreDBClusterFromSnapshot authorizes cluster*, cluster-pg*,
//     og*, subgrp* and the source snapshot; RestoreDBInstanceFromDBSnapshot
//     db*, og*, pg*, subgrp* and the snapshot; CreateDBInstance db* plus the
//     optional cluster, og, pg, subgrp; CreateDBSnapshot db* and snapshot*;
//     ModifyDBCluster cluster* plus cluster-pg, og, pg (a major version
//     upgrade names new parameter groups); DescribeDBSnapshots db and
//     snapshot; DescribeDBParameters pg*.
//   - Each resource of a multi-resource request is authorized on its own, so
//     a tag condition on the resource (rds:cluster-tag/...) must sit in a
//     statement that lists only that resource type: a parameter group has no
//     cluster tag and would be denied.
//   - Deletes: RDS documents its own resource-tag keys per type
//     (rds:db-tag/, rds:cluster-tag/, rds:snapshot-tag/) and also lists
//     aws:ResourceTag/; we use the RDS-specific key matching the resource
//     type, which RDS has honoured the longest. DeleteDBCluster also lists
//     cluster-snapshot* (for a final snapshot): the workflow deletes with
//     SkipFinalSnapshot, so no cluster-snapshot permission is granted.
//   - Creates: aws:RequestTag/ is a property of the request, the same for
//     every resource in it, so one statement may require the tag for all
//     resource types of a create. RDS checks rds:AddTagsToResource on the new
//     resource when Tags are passed on create; DMS does the same with
//     dms:AddTagsToResource.
//   - DMS: CreateEndpoint authorizes Endpoint* (and Certificate when one is
//     named); CreateReplicationInstance ReplicationInstance* (and the
//     ReplicationSubnetGroup); CreateReplicationTask the Endpoint* and
//     ReplicationInstance* it uses; Start/Stop/DeleteReplicationTask the task;
//     Describe* support no resource-level permission ("*"). DMS honours
//     aws:ResourceTag/ and dms:<type>-tag/; we use aws:ResourceTag/.
//   - A source instance is never managed: every role that may add RDS tags or
//     delete DB instances also gets an explicit Deny on the source instance.

// Tag keys every resource the workflow creates carries (set on create).
const (
	TagManaged   = "seedrepl-managed"
	TagMigration = "seedrepl-migration"
)

// ARN templates. {partition}, {region}, {account}, {source} are filled in by
// the stack; the other placeholders stand for whole ARNs of stack resources.
const (
	arnDB        = "arn:{partition}:rds:{region}:{account}:db:*"
	arnSourceDB  = "arn:{partition}:rds:{region}:{account}:db:{source}"
	arnCluster   = "arn:{partition}:rds:{region}:{account}:cluster:*"
	arnSnapshot  = "arn:{partition}:rds:{region}:{account}:snapshot:*"
	arnPG        = "arn:{partition}:rds:{region}:{account}:pg:*"
	arnClusterPG = "arn:{partition}:rds:{region}:{account}:cluster-pg:*"
	arnOG        = "arn:{partition}:rds:{region}:{account}:og:*"
	arnSubgrp    = "arn:{partition}:rds:{region}:{account}:subgrp:*"
	arnDMSEndpt  = "arn:{partition}:dms:{region}:{account}:endpoint:*"
	arnDMSCert   = "arn:{partition}:dms:{region}:{account}:cert:*"
	arnDMSRep    = "arn:{partition}:dms:{region}:{account}:rep:*"
	arnDMSTask   = "arn:{partition}:dms:{region}:{account}:task:*"
	arnDMSSubgrp = "arn:{partition}:dms:{region}:{account}:subgrp:*"

	// Whole-ARN placeholders.
	ResSecrets        = "{secrets}"        // each configured secret ARN
	ResTopic          = "{topic}"          // the notification topic
	ResDMSSecretsRole = "{dmsSecretsRole}" // the role DMS assumes to read the secrets
	ResAll            = "*"                // actions without resource-level permissions
)

// Condition operator -> key -> values.
type Conditions map[string]map[string][]string

// Statement is one Allow (or, with Deny, one Deny) statement.
type Statement struct {
	Sid        string
	Deny       bool
	Actions    []string
	Resources  []string
	Conditions Conditions
}

// FunctionPermissions is one row of the table.
type FunctionPermissions struct {
	// Actions is the row as the issue states it: the API actions the Lambda
	// may call, sorted. The Allow statements grant exactly these.
	Actions    []string
	Statements []Statement
}

var (
	requireManagedTagOnCreate = Conditions{
		"StringEquals": {"aws:RequestTag/" + TagManaged: {"true"}},
		"Null":         {"aws:RequestTag/" + TagMigration: {"false"}},
	}
	managedDB       = Conditions{"StringEquals": {"rds:db-tag/" + TagManaged: {"true"}}}
	managedCluster  = Conditions{"StringEquals": {"rds:cluster-tag/" + TagManaged: {"true"}}}
	managedSnapshot = Conditions{"StringEquals": {"rds:snapshot-tag/" + TagManaged: {"true"}}}
	managedDMS      = Conditions{"StringEquals": {"aws:ResourceTag/" + TagManaged: {"true"}}}
	// A restore or create must both carry the tags and use a managed snapshot/cluster.
	createFromManagedSnapshot = merge(requireManagedTagOnCreate, managedSnapshot)
	createInManagedCluster    = merge(requireManagedTagOnCreate, managedCluster)
	createFromManagedDMS      = merge(requireManagedTagOnCreate, managedDMS)
)

func merge(cs ...Conditions) Conditions {
	out := Conditions{}
	for _, c := range cs {
		for op, kv := range c {
			if out[op] == nil {
				out[op] = map[string][]string{}
			}
			for k, v := range kv {
				out[op][k] = v
			}
		}
	}
	return out
}

// Reusable statements.
var (
	describeInstances = Statement{Sid: "DescribeInstances", Actions: []string{"rds:DescribeDBInstances"}, Resources: []string{arnDB}}
	describeClusters  = Statement{Sid: "DescribeClusters", Actions: []string{"rds:DescribeDBClusters"}, Resources: []string{arnCluster}}
	describeSnapshots = Statement{Sid: "DescribeSnapshots", Actions: []string{"rds:DescribeDBSnapshots"}, Resources: []string{arnDB, arnSnapshot}}
	readSecrets       = Statement{Sid: "ReadConfiguredSecrets", Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{ResSecrets}}
	// protectSource denies the dangerous grants on the source instance even
	// if someone tagged it as managed.
	protectSource = Statement{Sid: "ProtectSourceInstance", Deny: true,
		Actions:   []string{"rds:AddTagsToResource", "rds:DeleteDBInstance", "rds:RemoveTagsFromResource"},
		Resources: []string{arnSourceDB}}
	dbReaders = []Statement{describeInstances, describeClusters, readSecrets}
)

// Permissions is the table, keyed by Task state name.
var Permissions = map[string]FunctionPermissions{
	"ValidateInput": row(),
	"Preflight": row(
		describeInstances,
		Statement{Sid: "DescribeParameters", Actions: []string{"rds:DescribeDBParameters"}, Resources: []string{arnPG}},
		readSecrets,
	),
	"CreatePublicationAndSlot": row(describeInstances, readSecrets),
	"CreateSnapshot": row(
		// Only the configured source instance may be snapshotted.
		Statement{Sid: "SnapshotSource", Actions: []string{"rds:CreateDBSnapshot"},
			Resources: []string{arnSourceDB, arnSnapshot}, Conditions: requireManagedTagOnCreate},
		Statement{Sid: "TagOnCreate", Actions: []string{"rds:AddTagsToResource"},
			Resources: []string{arnSnapshot}, Conditions: requireManagedTagOnCreate},
		describeSnapshots,
	),
	"PollSnapshot": row(describeSnapshots),
	"RestoreAuroraCluster": row(
		Statement{Sid: "RestoreCluster", Actions: []string{"rds:RestoreDBClusterFromSnapshot"},
			Resources: []string{arnCluster, arnClusterPG, arnOG, arnSubgrp}, Conditions: requireManagedTagOnCreate},
		Statement{Sid: "RestoreFromManagedSnapshot", Actions: []string{"rds:RestoreDBClusterFromSnapshot"},
			Resources: []string{arnSnapshot}, Conditions: createFromManagedSnapshot},
		Statement{Sid: "TagOnCreate", Actions: []string{"rds:AddTagsToResource"},
			Resources: []string{arnCluster}, Conditions: requireManagedTagOnCreate},
		describeClusters,
		// The restore needs the snapshot's ARN; when the state lacks it the
		// handler reads it (read-only) from DescribeDBSnapshots.
		describeSnapshots,
	),
	"PollAuroraCluster": row(describeClusters, describeInstances),
	"CreateAuroraInstances": row(
		Statement{Sid: "CreateInstances", Actions: []string{"rds:CreateDBInstance"},
			Resources: []string{arnDB, arnOG, arnPG, arnSubgrp}, Conditions: requireManagedTagOnCreate},
		Statement{Sid: "CreateInManagedCluster", Actions: []string{"rds:CreateDBInstance"},
			Resources: []string{arnCluster}, Conditions: createInManagedCluster},
		Statement{Sid: "TagOnCreate", Actions: []string{"rds:AddTagsToResource"},
			Resources: []string{arnDB}, Conditions: requireManagedTagOnCreate},
		describeInstances,
		protectSource,
	),
	"PollAuroraInstances": row(describeInstances),
	"UpgradeAuroraCluster": row(
		Statement{Sid: "ModifyManagedCluster", Actions: []string{"rds:ModifyDBCluster"},
			Resources: []string{arnCluster}, Conditions: managedCluster},
		Statement{Sid: "UseParameterGroups", Actions: []string{"rds:ModifyDBCluster"},
			Resources: []string{arnClusterPG, arnPG, arnOG}},
		describeClusters,
	),
	"PollAuroraUpgrade": row(describeClusters, describeInstances),
	"RestoreTempInstance": row(
		Statement{Sid: "RestoreInstance", Actions: []string{"rds:RestoreDBInstanceFromDBSnapshot"},
			Resources: []string{arnDB, arnOG, arnPG, arnSubgrp}, Conditions: requireManagedTagOnCreate},
		Statement{Sid: "RestoreFromManagedSnapshot", Actions: []string{"rds:RestoreDBInstanceFromDBSnapshot"},
			Resources: []string{arnSnapshot}, Conditions: createFromManagedSnapshot},
		Statement{Sid: "TagOnCreate", Actions: []string{"rds:AddTagsToResource"},
			Resources: []string{arnDB}, Conditions: requireManagedTagOnCreate},
		describeInstances,
		protectSource,
	),
	"PollTempInstance":      row(describeInstances),
	"ReadSeedLSN":           row(dbReaders...),
	"ProveSeed":             row(dbReaders...),
	"VerifyLag":             row(dbReaders...),
	"Validate":              row(dbReaders...),
	"ConfigureSubscription": row(dbReaders...),
	"DeleteTempInstance": row(
		Statement{Sid: "DeleteManagedInstance", Actions: []string{"rds:DeleteDBInstance"},
			Resources: []string{arnDB}, Conditions: managedDB},
		describeInstances,
		protectSource,
	),
	"ConfigureDMS": row(
		Statement{Sid: "CreateEndpoints", Actions: []string{"dms:CreateEndpoint"},
			Resources: []string{arnDMSEndpt, arnDMSCert}, Conditions: requireManagedTagOnCreate},
		Statement{Sid: "CreateReplicationInstance", Actions: []string{"dms:CreateReplicationInstance"},
			Resources: []string{arnDMSRep, arnDMSSubgrp}, Conditions: requireManagedTagOnCreate},
		Statement{Sid: "CreateTaskOnManaged", Actions: []string{"dms:CreateReplicationTask"},
			Resources: []string{arnDMSEndpt, arnDMSRep}, Conditions: createFromManagedDMS},
		Statement{Sid: "StartManagedTask", Actions: []string{"dms:StartReplicationTask"},
			Resources: []string{arnDMSTask}, Conditions: managedDMS},
		Statement{Sid: "TagOnCreate", Actions: []string{"dms:AddTagsToResource"},
			Resources: []string{arnDMSEndpt, arnDMSRep, arnDMSTask}, Conditions: requireManagedTagOnCreate},
		Statement{Sid: "DescribeDMS", Actions: []string{"dms:DescribeEndpoints", "dms:DescribeReplicationInstances", "dms:DescribeReplicationTasks"},
			Resources: []string{ResAll}},
		Statement{Sid: "PassSecretsRoleToDMS", Actions: []string{"iam:PassRole"},
			Resources:  []string{ResDMSSecretsRole},
			Conditions: Conditions{"StringEquals": {"iam:PassedToService": {"dms.amazonaws.com"}}}},
		describeInstances, describeClusters, readSecrets,
	),
	"PollDMSTask": row(
		Statement{Sid: "DescribeDMS", Actions: []string{"dms:DescribeReplicationInstances", "dms:DescribeReplicationTasks"},
			Resources: []string{ResAll}},
	),
	"Report": row(),
	"Notify": row(
		Statement{Sid: "PublishToTopic", Actions: []string{"sns:Publish"}, Resources: []string{ResTopic}},
	),
	"Teardown": row(cleanup()...),
	"Rollback": row(cleanup()...),
}

// cleanup is the shared row of Teardown and Rollback.
func cleanup() []Statement {
	return []Statement{
		{Sid: "DeleteManagedClusters", Actions: []string{"rds:DeleteDBCluster"}, Resources: []string{arnCluster}, Conditions: managedCluster},
		{Sid: "DeleteManagedInstances", Actions: []string{"rds:DeleteDBInstance"}, Resources: []string{arnDB}, Conditions: managedDB},
		{Sid: "DeleteManagedSnapshots", Actions: []string{"rds:DeleteDBSnapshot"}, Resources: []string{arnSnapshot}, Conditions: managedSnapshot},
		describeClusters, describeInstances, describeSnapshots,
		{Sid: "StopDeleteManagedTasks", Actions: []string{"dms:DeleteReplicationTask", "dms:StopReplicationTask"}, Resources: []string{arnDMSTask}, Conditions: managedDMS},
		{Sid: "DeleteManagedEndpoints", Actions: []string{"dms:DeleteEndpoint"}, Resources: []string{arnDMSEndpt}, Conditions: managedDMS},
		{Sid: "DeleteManagedReplicationInstances", Actions: []string{"dms:DeleteReplicationInstance"}, Resources: []string{arnDMSRep}, Conditions: managedDMS},
		{Sid: "DescribeDMS", Actions: []string{"dms:DescribeEndpoints", "dms:DescribeReplicationInstances", "dms:DescribeReplicationTasks"}, Resources: []string{ResAll}},
		readSecrets,
		protectSource,
	}
}

// row builds a table row; Actions is the sorted union of the Allow actions.
func row(sts ...Statement) FunctionPermissions {
	seen := map[string]bool{}
	var actions []string
	for _, s := range sts {
		if s.Deny {
			continue
		}
		for _, a := range s.Actions {
			if !seen[a] {
				seen[a] = true
				actions = append(actions, a)
			}
		}
	}
	sortStrings(actions)
	return FunctionPermissions{Actions: actions, Statements: sts}
}
