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
}

// Functions lists every Lambda of the workflow, one per Task state name.
// State names, lambda folders and internal/steps functions use the same words.
var Functions = []Function{
	fn("ValidateInput", "validate-input"),
	fn("Preflight", "preflight"),
	fn("CreatePublicationAndSlot", "create-publication-and-slot"),
	fn("CreateSnapshot", "create-snapshot"),
	fn("PollSnapshot", "poll-snapshot"),
	fn("RestoreAuroraCluster", "restore-aurora-cluster"),
	fn("PollAuroraCluster", "poll-aurora-cluster"),
	fn("CreateAuroraInstances", "create-aurora-instances"),
	fn("PollAuroraInstances", "poll-aurora-instances"),
	fn("UpgradeAuroraCluster", "upgrade-aurora-cluster"),
	fn("PollAuroraUpgrade", "poll-aurora-upgrade"),
	fn("RestoreTempInstance", "restore-temp-instance"),
	fn("PollTempInstance", "poll-temp-instance"),
	fn("ReadSeedLSN", "read-seed-lsn"),
	fn("DeleteTempInstance", "delete-temp-instance"),
	fn("ProveSeed", "prove-seed"),
	fn("ConfigureSubscription", "configure-subscription"),
	fn("ConfigureDMS", "configure-dms"),
	fn("PollDMSTask", "poll-dms-task"),
	fn("VerifyLag", "verify-lag"),
	fn("Validate", "validate"),
	fn("Report", "report"),
	fn("Notify", "notify"),
	fn("Teardown", "teardown"),
	fn("Rollback", "rollback"),
}

func fn(name, dir string) Function {
	return Function{Name: name, Dir: dir, Placeholder: name + "FunctionArn"}
}
