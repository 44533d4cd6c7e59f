// Package grants is the one table of which AWS API actions each state's
// Lambda may call. The CDK stack grants exactly these (infra/stack tests
// compare its synthesized policies with it) and the handlers call nothing
// else (internal/steps tests record every call and compare it with it).
package grants

// Actions by Task state name (statemachine.Functions).
var Actions = map[string][]string{
	"ValidateInput":            {},
	"Preflight":                {"rds:DescribeDBInstances", "rds:DescribeDBParameters", "secretsmanager:GetSecretValue"},
	"CreatePublicationAndSlot": {"rds:DescribeDBInstances", "secretsmanager:GetSecretValue"},
	"CreateSnapshot":           {"rds:CreateDBSnapshot", "rds:AddTagsToResource", "rds:DescribeDBSnapshots"},
	"PollSnapshot":             {"rds:DescribeDBSnapshots"},
	// DescribeDBSnapshots: the restore needs the snapshot's ARN when the state lacks it.
	"RestoreAuroraCluster":  {"rds:RestoreDBClusterFromSnapshot", "rds:AddTagsToResource", "rds:DescribeDBClusters", "rds:DescribeDBSnapshots"},
	"PollAuroraCluster":     {"rds:DescribeDBClusters", "rds:DescribeDBInstances"},
	"PollAuroraUpgrade":     {"rds:DescribeDBClusters", "rds:DescribeDBInstances"},
	"CreateAuroraInstances": {"rds:CreateDBInstance", "rds:AddTagsToResource", "rds:DescribeDBInstances"},
	"PollAuroraInstances":   {"rds:DescribeDBInstances"},
	"PollTempInstance":      {"rds:DescribeDBInstances"},
	"UpgradeAuroraCluster":  {"rds:ModifyDBCluster", "rds:DescribeDBClusters"},
	"RestoreTempInstance":   {"rds:RestoreDBInstanceFromDBSnapshot", "rds:AddTagsToResource", "rds:DescribeDBInstances"},
	"ReadSeedLSN":           {"rds:DescribeDBInstances", "rds:DescribeDBClusters", "secretsmanager:GetSecretValue"},
	"ProveSeed":             {"rds:DescribeDBInstances", "rds:DescribeDBClusters", "secretsmanager:GetSecretValue"},
	"VerifyLag":             {"rds:DescribeDBInstances", "rds:DescribeDBClusters", "secretsmanager:GetSecretValue"},
	"Validate":              {"rds:DescribeDBInstances", "rds:DescribeDBClusters", "secretsmanager:GetSecretValue"},
	"ConfigureSubscription": {"rds:DescribeDBInstances", "rds:DescribeDBClusters", "secretsmanager:GetSecretValue"},
	"DeleteTempInstance":    {"rds:DeleteDBInstance", "rds:DescribeDBInstances"},
	"ConfigureDMS": {"dms:CreateEndpoint", "dms:CreateReplicationInstance", "dms:CreateReplicationTask",
		"dms:StartReplicationTask", "dms:DescribeEndpoints", "dms:DescribeReplicationInstances",
		"dms:DescribeReplicationTasks", "dms:AddTagsToResource", "iam:PassRole", "rds:DescribeDBInstances",
		"rds:DescribeDBClusters", "secretsmanager:GetSecretValue"},
	"PollDMSTask": {"dms:DescribeReplicationTasks", "dms:DescribeReplicationInstances"},
	"Report":      {},
	"Notify":      {"sns:Publish"},
	"Teardown":    cleanup,
	"Rollback":    cleanup,
}

var cleanup = []string{"rds:DeleteDBCluster", "rds:DeleteDBInstance", "rds:DeleteDBSnapshot",
	"rds:DescribeDBClusters", "rds:DescribeDBInstances", "rds:DescribeDBSnapshots",
	"dms:StopReplicationTask", "dms:DeleteReplicationTask", "dms:DeleteEndpoint", "dms:DeleteReplicationInstance",
	"dms:DescribeEndpoints", "dms:DescribeReplicationInstances", "dms:DescribeReplicationTasks",
	"secretsmanager:GetSecretValue"}
