package steps

// The execution's state document. The execution input (Input) sits at the
// root; each Task state writes its result under one key with ResultPath, so a
// later state, Rollback included, sees what earlier states did. Every field is
// an id, an ARN, a name, a status or a figure: never a password, a secret value
// or a connection string.
//
//	$                     Input (the execution input, see schema/execution-input.schema.json)
//	$.plan                Plan            ValidateInput
//	$.preflight           PreflightResult Preflight
//	$.slot                SlotResult      CreatePublicationAndSlot
//	$.snapshot            Poll            CreateSnapshot, PollSnapshot
//	$.aurora              Poll            RestoreAuroraCluster, PollAuroraCluster, UpgradeAuroraCluster, PollAuroraUpgrade
//	$.auroraInstances     Poll            CreateAuroraInstances, PollAuroraInstances
//	$.temp                Poll            RestoreTempInstance, PollTempInstance, DeleteTempInstance
//	$.seed                SeedResult      ReadSeedLSN
//	$.proof               ProofResult     ProveSeed
//	$.replication         ReplicationResult ConfigureSubscription, ConfigureDMS, PollDMSTask
//	$.lag                 LagResult       VerifyLag
//	$.validation          ValidationResult Validate
//	$.report              Report          Report (the execution's output)
//	$.error               {Error, Cause}  set by every Catch (ResultPath "$.error")
//	$.rollback            RollbackResult  Rollback
//	$.teardown            RollbackResult  Teardown
//
// Inside the Parallel state the two branches each get the whole document; the
// Parallel's ResultSelector puts $[0].aurora, $[0].auroraInstances, $[1].temp
// and $[1].seed back at those keys.

// State is the whole document as a handler reads it. A handler uses only the
// parts it needs and returns only its own result.
type State struct {
	Input
	Plan            *Plan              `json:"plan,omitempty"`
	Preflight       *PreflightResult   `json:"preflight,omitempty"`
	Slot            *SlotResult        `json:"slot,omitempty"`
	Snapshot        *Poll              `json:"snapshot,omitempty"`
	Aurora          *Poll              `json:"aurora,omitempty"`
	AuroraInstances *Poll              `json:"auroraInstances,omitempty"`
	Temp            *Poll              `json:"temp,omitempty"`
	Seed            *SeedResult        `json:"seed,omitempty"`
	Proof           *ProofResult       `json:"proof,omitempty"`
	Replication     *ReplicationResult `json:"replication,omitempty"`
	Lag             *LagResult         `json:"lag,omitempty"`
	Validation      *ValidationResult  `json:"validation,omitempty"`
	Error           *CaughtError       `json:"error,omitempty"`
	// Added: what later states read.
	Report        *Report         `json:"report,omitempty"`
	Rollback      *RollbackResult `json:"rollback,omitempty"`
	RollbackError *CaughtError    `json:"rollbackError,omitempty"` // set by Rollback's Catch
	Teardown      *RollbackResult `json:"teardown,omitempty"`
	// ExecutionID, when the state machine passes $$.Execution.Id, labels
	// every log line; never part of the user's input.
	ExecutionID string `json:"executionId,omitempty"`
}

// CaughtError is what a Catch with ResultPath "$.error" stores.
type CaughtError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// Poll is the result of every create/poll pair. The ASL's Choice reads Ready;
// its Wait reads WaitSeconds (SecondsPath), which the poll handler computes
// with capped backoff, so Step Functions owns the waiting.
type Poll struct {
	ID          string   `json:"id"`                  // snapshot, cluster or instance identifier
	ARN         string   `json:"arn,omitempty"`       // its ARN once known
	IDs         []string `json:"ids,omitempty"`       // several instances (writer first, then readers)
	Status      string   `json:"status"`              // as AWS reports it
	Ready       bool     `json:"ready"`               // the Choice's condition
	WaitSeconds int      `json:"waitSeconds"`         // the next Wait's duration
	Attempt     int      `json:"attempt"`             // polls so far
	StartedAt   string   `json:"startedAt,omitempty"` // RFC 3339, when the create call was made
	Percent     int      `json:"percent,omitempty"`   // progress AWS reported, when it does
	Endpoint    string   `json:"endpoint,omitempty"`  // host name once available
	Port        int      `json:"port,omitempty"`      // port once available
	Created     bool     `json:"created"`             // this migration created it (vs. found it)
	EngineVer   string   `json:"engineVersion,omitempty"`
}
