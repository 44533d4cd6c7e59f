// Package statemachine holds the workflow's Amazon States Language definition
// (migration.asl.json) and the one list that ties its Task states to Lambda
// functions, so the ASL, the CDK stack, the build and the local engine agree.
package statemachine

// Function is one Lambda of the workflow. Name is the Task state's name in
// the console graph, Dir the folder under lambdas/ (and dist/), and
// Placeholder the ${...} substitution that stands for its ARN in the ASL.
type Function struct {
	Name        string
	Dir         string
	Placeholder string
	// ResultKey is where the state writes its result in the document
	// (ResultPath "$.<key>", the contract of internal/steps/state.go);
	// empty: the result is discarded (ResultPath null).
	ResultKey string
}

// Functions lists every Lambda of the workflow, one per Task state name.
// State names, lambda folders and internal/steps functions use the same words.
var Functions = []Function{
	fn("ValidateInput", "validate-input", "plan"),
	fn("Preflight", "preflight", "preflight"),
	fn("CreatePublicationAndSlot", "create-publication-and-slot", "slot"),
	fn("CreateSnapshot", "create-snapshot", "snapshot"),
	fn("PollSnapshot", "poll-snapshot", "snapshot"),
	fn("RestoreAuroraCluster", "restore-aurora-cluster", "aurora"),
	fn("PollAuroraCluster", "poll-aurora-cluster", "aurora"),
	fn("CreateAuroraInstances", "create-aurora-instances", "auroraInstances"),
	fn("PollAuroraInstances", "poll-aurora-instances", "auroraInstances"),
	fn("UpgradeAuroraCluster", "upgrade-aurora-cluster", "aurora"),
	fn("PollAuroraUpgrade", "poll-aurora-upgrade", "aurora"),
	fn("RestoreTempInstance", "restore-temp-instance", "temp"),
	fn("PollTempInstance", "poll-temp-instance", "temp"),
	fn("ReadSeedLSN", "read-seed-lsn", "seed"),
	fn("DeleteTempInstance", "delete-temp-instance", "temp"),
	fn("ProveSeed", "prove-seed", "proof"),
	fn("ConfigureSubscription", "configure-subscription", "replication"),
	fn("ConfigureDMS", "configure-dms", "replication"),
	fn("PollDMSTask", "poll-dms-task", "replication"),
	fn("VerifyLag", "verify-lag", "lag"),
	fn("Validate", "validate", "validation"),
	fn("Report", "report", "report"),
	fn("Notify", "notify", ""),
	fn("Teardown", "teardown", "teardown"),
	fn("Rollback", "rollback", "rollback"),
}

func fn(name, dir, resultKey string) Function {
	return Function{Name: name, Dir: dir, Placeholder: name + "FunctionArn", ResultKey: resultKey}
}
