package steps

import (
	"github.com/seedrepl/seedrepl/internal/lsn"
	"github.com/seedrepl/seedrepl/internal/pgops"
)

// Input is the execution input (schema/execution-input.schema.json). It
// holds ids, names, classes and secret ARNs: never a password or a
// connection string.
type Input struct {
	MigrationID  string             `json:"migrationId"`
	Mode         string             `json:"mode"` // subscription | dms
	Rehearsal    bool               `json:"rehearsal,omitempty"`
	Source       SourceInput        `json:"source"`
	Scope        pgops.Scope        `json:"scope"`
	Target       TargetInput        `json:"target"`
	Temp         TempInput          `json:"temp"`
	DMS          *DMSInput          `json:"dms,omitempty"`
	Verify       VerifyInput        `json:"verify"`
	Subscription *SubscriptionInput `json:"subscription,omitempty"`
}

// SourceInput names the RDS for PostgreSQL instance being migrated.
type SourceInput struct {
	InstanceID string `json:"instanceId"`
	Database   string `json:"database"`
	// AdminSecretARN: an RDS-format secret (username, password, host, port,
	// dbname) for a role that may create the publication and the slot
	// (rds_superuser, typically the master user). Used by the Lambdas only.
	AdminSecretARN string `json:"adminSecretArn"`
	// ReplicationSecretARN: the dedicated replication role (rds_replication
	// and SELECT on the published tables). Its credentials end up in the
	// target's catalog (the subscription's CONNECTION) or in DMS's source
	// endpoint: never the master user.
	ReplicationSecretARN string `json:"replicationSecretArn"`
}

// TargetInput shapes the Aurora PostgreSQL cluster restored from the snapshot.
type TargetInput struct {
	ClusterID                   string   `json:"clusterId,omitempty"` // default seedrepl-<id>-aurora
	InstanceClass               string   `json:"instanceClass"`
	Readers                     int      `json:"readers"`
	EngineVersion               string   `json:"engineVersion,omitempty"` // set: upgrade after the restore
	DBSubnetGroupName           string   `json:"dbSubnetGroupName"`
	VPCSecurityGroupIDs         []string `json:"vpcSecurityGroupIds"`
	DBClusterParameterGroupName string   `json:"dbClusterParameterGroupName,omitempty"`
	DBParameterGroupName        string   `json:"dbParameterGroupName,omitempty"`
	KMSKeyID                    string   `json:"kmsKeyId,omitempty"`
	// AdminSecretARN for the restored cluster. The restore keeps the
	// source's roles and passwords, so it defaults to the source's.
	AdminSecretARN string `json:"adminSecretArn,omitempty"`
}

// TempInput shapes the temporary RDS instance that yields the seed LSN.
type TempInput struct {
	InstanceClass       string   `json:"instanceClass"`
	DBSubnetGroupName   string   `json:"dbSubnetGroupName,omitempty"`   // default target's
	VPCSecurityGroupIDs []string `json:"vpcSecurityGroupIds,omitempty"` // default target's
}

// DMSInput shapes the DMS path (mode dms).
type DMSInput struct {
	ReplicationInstanceClass string   `json:"replicationInstanceClass"`
	ReplicationSubnetGroupID string   `json:"replicationSubnetGroupId"`
	VPCSecurityGroupIDs      []string `json:"vpcSecurityGroupIds,omitempty"`
	AllocatedStorageGiB      int      `json:"allocatedStorageGiB,omitempty"`
	MultiAZ                  bool     `json:"multiAZ,omitempty"`
	EngineVersion            string   `json:"engineVersion,omitempty"`
	// SSLMode of both endpoints (require by default).
	SSLMode string `json:"sslMode,omitempty"`
}

// VerifyInput: when replication counts as caught up, how to compare.
type VerifyInput struct {
	MaxLagBytes int64 `json:"maxLagBytes"`
	// CompareAttempts per table while the source is written (default 5).
	CompareAttempts int `json:"compareAttempts,omitempty"`
	// ReplayTimeoutSeconds: how long a comparison waits for the target to
	// replay past the source's position (default 120).
	ReplayTimeoutSeconds int `json:"replayTimeoutSeconds,omitempty"`
}

// SubscriptionInput shapes the native subscription (mode subscription).
type SubscriptionInput struct {
	// SSLMode of the subscription's connection to the source (libpq
	// sslmode; default require: the target's server has no RDS CA file by
	// default, verify-full needs one).
	SSLMode string `json:"sslmode,omitempty"`
}

// Names are the deterministic names of everything one migration creates.
type Names struct {
	Slot         string   `json:"slot"`
	Publication  string   `json:"publication"`
	Subscription string   `json:"subscription"`
	Snapshot     string   `json:"snapshot"`
	Cluster      string   `json:"cluster"`
	Writer       string   `json:"writer"`
	Readers      []string `json:"readers"`
	TempInstance string   `json:"tempInstance"`
	DMSInstance  string   `json:"dmsReplicationInstance,omitempty"`
	DMSSource    string   `json:"dmsSourceEndpoint,omitempty"`
	DMSTarget    string   `json:"dmsTargetEndpoint,omitempty"`
	DMSTask      string   `json:"dmsTask,omitempty"`
}

// Plan is ValidateInput's result ($.plan).
type Plan struct {
	MigrationID string `json:"migrationId"`
	Mode        string `json:"mode"`
	Plugin      string `json:"plugin"` // pgoutput (subscription) | test_decoding (dms)
	// Upgrade tells the ASL to run UpgradeAuroraCluster.
	Upgrade       bool     `json:"upgrade"`
	EngineVersion string   `json:"engineVersion,omitempty"`
	Names         Names    `json:"names"`
	ValidatedAt   string   `json:"validatedAt"`
	Warnings      []string `json:"warnings,omitempty"`
}

// PreflightResult is Preflight's result ($.preflight).
type PreflightResult struct {
	OK         bool                   `json:"ok"`
	Report     *pgops.PreflightReport `json:"report"`
	StartedAt  string                 `json:"startedAt"`
	FinishedAt string                 `json:"finishedAt"`
}

// SlotResult is CreatePublicationAndSlot's result ($.slot).
type SlotResult struct {
	SlotName           string  `json:"slotName"`
	Plugin             string  `json:"plugin"`
	Publication        string  `json:"publication,omitempty"`
	PublicationCreated bool    `json:"publicationCreated"`
	Created            bool    `json:"created"`
	ConsistentPoint    lsn.LSN `json:"consistentPoint,omitempty"`
	ConfirmedFlush     lsn.LSN `json:"confirmedFlush"`
	At                 string  `json:"at"`
}

// SeedResult is ReadSeedLSN's result ($.seed).
type SeedResult struct {
	LSN        lsn.LSN `json:"lsn"`
	InstanceID string  `json:"instanceId"`
	At         string  `json:"at"`
}

// ProofResult is ProveSeed's result ($.proof).
type ProofResult struct {
	Proved bool            `json:"proved"`
	Proof  pgops.SeedProof `json:"proof"`
	// AuroraStartLSN is Aurora's own position, recorded only to show it is
	// not the seed (when the target exposes it).
	AuroraStartLSN string `json:"auroraStartLsn,omitempty"`
	At             string `json:"at"`
}

// ReplicationResult is the result of ConfigureSubscription, ConfigureDMS and
// PollDMSTask ($.replication). For DMS it carries the poll fields.
type ReplicationResult struct {
	Mode         string                   `json:"mode"`
	Subscription *pgops.SubscriptionState `json:"subscription,omitempty"`
	// PreparedTarget lists what PrepareTarget dropped on the target (copied
	// subscriptions and slots).
	PreparedTarget []string `json:"preparedTarget,omitempty"`
	Seed           lsn.LSN  `json:"seed"`

	ReplicationInstanceARN string `json:"replicationInstanceArn,omitempty"`
	SourceEndpointARN      string `json:"sourceEndpointArn,omitempty"`
	TargetEndpointARN      string `json:"targetEndpointArn,omitempty"`
	TaskARN                string `json:"taskArn,omitempty"`
	CdcStartPosition       string `json:"cdcStartPosition,omitempty"`

	Status      string `json:"status"`
	Ready       bool   `json:"ready"`
	WaitSeconds int    `json:"waitSeconds"`
	Attempt     int    `json:"attempt"`
	StartedAt   string `json:"startedAt,omitempty"`
	FinishedAt  string `json:"finishedAt,omitempty"`
}

// LagResult is VerifyLag's result ($.lag).
type LagResult struct {
	Lag          pgops.Lag                 `json:"lag"`
	LagBytes     int64                     `json:"lagBytes"`
	MaxLagBytes  int64                     `json:"maxLagBytes"`
	Subscription *pgops.SubscriptionStatus `json:"subscription,omitempty"`
	Ready        bool                      `json:"ready"`
	WaitSeconds  int                       `json:"waitSeconds"`
	Attempt      int                       `json:"attempt"`
	StartedAt    string                    `json:"startedAt,omitempty"`
	At           string                    `json:"at"`
}

// ValidationResult is Validate's result ($.validation).
type ValidationResult struct {
	OK         bool                    `json:"ok"` // no table Different (Unverified is reported, not called equal)
	Equal      int                     `json:"equal"`
	Different  int                     `json:"different"`
	Unverified int                     `json:"unverified"`
	Tables     []pgops.TableComparison `json:"tables"`
	StartedAt  string                  `json:"startedAt"`
	FinishedAt string                  `json:"finishedAt"`
}

// Phase is one phase's known start and end.
type Phase struct {
	Name      string `json:"name"`
	StartedAt string `json:"startedAt,omitempty"`
	EndedAt   string `json:"endedAt,omitempty"`
	Status    string `json:"status,omitempty"`
}

// Report is the execution's output ($.report).
type Report struct {
	MigrationID     string                  `json:"migrationId"`
	Mode            string                  `json:"mode"`
	Rehearsal       bool                    `json:"rehearsal"`
	Outcome         string                  `json:"outcome"` // replicating | replicating-unverified | failed
	SeedLSN         string                  `json:"seedLsn,omitempty"`
	SlotName        string                  `json:"slotName,omitempty"`
	ConsistentPoint string                  `json:"slotConsistentPoint,omitempty"`
	SnapshotID      string                  `json:"snapshotId,omitempty"`
	ClusterID       string                  `json:"clusterId,omitempty"`
	ClusterEndpoint string                  `json:"clusterEndpoint,omitempty"`
	InstanceIDs     []string                `json:"instanceIds,omitempty"`
	TempInstanceID  string                  `json:"tempInstanceId,omitempty"`
	EngineVersion   string                  `json:"engineVersion,omitempty"`
	DMSTaskARN      string                  `json:"dmsTaskArn,omitempty"`
	LagBytes        *int64                  `json:"lagBytes,omitempty"`
	Phases          []Phase                 `json:"phases"`
	Validation      []pgops.TableComparison `json:"validation,omitempty"`
	Warnings        []string                `json:"warnings,omitempty"`
	SecurityNote    string                  `json:"securityNote"`
	GeneratedAt     string                  `json:"generatedAt"`
}

// RollbackResult is Rollback's and Teardown's result.
type RollbackResult struct {
	Released []string `json:"released"`
	Absent   []string `json:"absent"`           // looked for, not there
	Kept     []string `json:"kept,omitempty"`   // deliberately left (e.g. the Aurora cluster of a real migration)
	Failed   []string `json:"failed,omitempty"` // could not be released: each with its reason
	SlotGone bool     `json:"slotGone"`
	At       string   `json:"at"`
}

// NotifyResult is Notify's result (the ASL discards it).
type NotifyResult struct {
	Published bool   `json:"published"`
	MessageID string `json:"messageId,omitempty"`
	Subject   string `json:"subject"`
}
