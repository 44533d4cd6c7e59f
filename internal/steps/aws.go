package steps

import (
	"strings"

	"github.com/seedrepl/seedrepl/internal/pgops"

	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
)

// The AWS calls the handlers make, with the SDK's own method signatures so
// the SDK clients satisfy them and tests use fakes. Each is declared here,
// by its consumer, and holds only the calls the workflow makes.

// RDSAPI is the RDS part.
type RDSAPI interface {
	DescribeDBInstances(context.Context, *rds.DescribeDBInstancesInput, ...func(*rds.Options)) (*rds.DescribeDBInstancesOutput, error)
	DescribeDBClusters(context.Context, *rds.DescribeDBClustersInput, ...func(*rds.Options)) (*rds.DescribeDBClustersOutput, error)
	DescribeDBSnapshots(context.Context, *rds.DescribeDBSnapshotsInput, ...func(*rds.Options)) (*rds.DescribeDBSnapshotsOutput, error)
	DescribeDBParameters(context.Context, *rds.DescribeDBParametersInput, ...func(*rds.Options)) (*rds.DescribeDBParametersOutput, error)
	CreateDBSnapshot(context.Context, *rds.CreateDBSnapshotInput, ...func(*rds.Options)) (*rds.CreateDBSnapshotOutput, error)
	RestoreDBClusterFromSnapshot(context.Context, *rds.RestoreDBClusterFromSnapshotInput, ...func(*rds.Options)) (*rds.RestoreDBClusterFromSnapshotOutput, error)
	ModifyDBCluster(context.Context, *rds.ModifyDBClusterInput, ...func(*rds.Options)) (*rds.ModifyDBClusterOutput, error)
	CreateDBInstance(context.Context, *rds.CreateDBInstanceInput, ...func(*rds.Options)) (*rds.CreateDBInstanceOutput, error)
	RestoreDBInstanceFromDBSnapshot(context.Context, *rds.RestoreDBInstanceFromDBSnapshotInput, ...func(*rds.Options)) (*rds.RestoreDBInstanceFromDBSnapshotOutput, error)
	AddTagsToResource(context.Context, *rds.AddTagsToResourceInput, ...func(*rds.Options)) (*rds.AddTagsToResourceOutput, error)
	DeleteDBInstance(context.Context, *rds.DeleteDBInstanceInput, ...func(*rds.Options)) (*rds.DeleteDBInstanceOutput, error)
	DeleteDBCluster(context.Context, *rds.DeleteDBClusterInput, ...func(*rds.Options)) (*rds.DeleteDBClusterOutput, error)
	DeleteDBSnapshot(context.Context, *rds.DeleteDBSnapshotInput, ...func(*rds.Options)) (*rds.DeleteDBSnapshotOutput, error)
}

// DMSAPI is the DMS part.
type DMSAPI interface {
	CreateReplicationInstance(context.Context, *dms.CreateReplicationInstanceInput, ...func(*dms.Options)) (*dms.CreateReplicationInstanceOutput, error)
	DescribeReplicationInstances(context.Context, *dms.DescribeReplicationInstancesInput, ...func(*dms.Options)) (*dms.DescribeReplicationInstancesOutput, error)
	CreateEndpoint(context.Context, *dms.CreateEndpointInput, ...func(*dms.Options)) (*dms.CreateEndpointOutput, error)
	DescribeEndpoints(context.Context, *dms.DescribeEndpointsInput, ...func(*dms.Options)) (*dms.DescribeEndpointsOutput, error)
	CreateReplicationTask(context.Context, *dms.CreateReplicationTaskInput, ...func(*dms.Options)) (*dms.CreateReplicationTaskOutput, error)
	DescribeReplicationTasks(context.Context, *dms.DescribeReplicationTasksInput, ...func(*dms.Options)) (*dms.DescribeReplicationTasksOutput, error)
	StartReplicationTask(context.Context, *dms.StartReplicationTaskInput, ...func(*dms.Options)) (*dms.StartReplicationTaskOutput, error)
	StopReplicationTask(context.Context, *dms.StopReplicationTaskInput, ...func(*dms.Options)) (*dms.StopReplicationTaskOutput, error)
	DeleteReplicationTask(context.Context, *dms.DeleteReplicationTaskInput, ...func(*dms.Options)) (*dms.DeleteReplicationTaskOutput, error)
	DeleteEndpoint(context.Context, *dms.DeleteEndpointInput, ...func(*dms.Options)) (*dms.DeleteEndpointOutput, error)
	DeleteReplicationInstance(context.Context, *dms.DeleteReplicationInstanceInput, ...func(*dms.Options)) (*dms.DeleteReplicationInstanceOutput, error)
	AddTagsToResource(context.Context, *dms.AddTagsToResourceInput, ...func(*dms.Options)) (*dms.AddTagsToResourceOutput, error)
}

// SecretsAPI reads database credentials.
type SecretsAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SNSAPI publishes the outcome.
type SNSAPI interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var (
	_ RDSAPI     = (*rds.Client)(nil)
	_ DMSAPI     = (*dms.Client)(nil)
	_ SecretsAPI = (*secretsmanager.Client)(nil)
	_ SNSAPI     = (*sns.Client)(nil)
)

// Config is the Lambdas' configuration (environment, see ConfigFromEnv).
type Config struct {
	// SSLMode for the Lambdas' own connections: verify-full (default),
	// verify-ca, require, disable (local rehearsal only).
	SSLMode string
	// SSLRootCert is the CA bundle (the RDS global bundle) for verify-*.
	SSLRootCert string
	// TopicARN receives Notify's summary; empty: logged only.
	TopicARN string
	// DMSSecretsRoleARN lets DMS read the replication secret.
	DMSSecretsRoleARN string
	// ConnectTimeout for database connections (default 15 s).
	ConnectTimeout time.Duration
	// AllowedSecretARNs are the secrets the deployment lets the Lambdas
	// read (SEEDREPL_ALLOWED_SECRET_ARNS, comma-separated); empty: no check.
	AllowedSecretARNs []string
	// PollTimeout: a resource (or the lag) not ready after this long fails
	// the run (SEEDREPL_POLL_TIMEOUT, a Go duration; default 24h).
	PollTimeout time.Duration
}

// ConfigFromEnv reads SEEDREPL_SSLMODE, SEEDREPL_SSLROOTCERT,
// SEEDREPL_TOPIC_ARN and SEEDREPL_DMS_SECRETS_ROLE_ARN.
func ConfigFromEnv() Config {
	c := Config{
		SSLMode:           os.Getenv("SEEDREPL_SSLMODE"),
		SSLRootCert:       os.Getenv("SEEDREPL_SSLROOTCERT"),
		TopicARN:          os.Getenv("SEEDREPL_TOPIC_ARN"),
		DMSSecretsRoleARN: os.Getenv("SEEDREPL_DMS_SECRETS_ROLE_ARN"),
	}
	if c.SSLMode == "" {
		c.SSLMode = "verify-full"
	}
	for _, a := range strings.Split(os.Getenv("SEEDREPL_ALLOWED_SECRET_ARNS"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.AllowedSecretARNs = append(c.AllowedSecretARNs, a)
		}
	}
	c.PollTimeout = 24 * time.Hour
	if d, err := time.ParseDuration(os.Getenv("SEEDREPL_POLL_TIMEOUT")); err == nil && d > 0 {
		c.PollTimeout = d
	}
	return c
}

// Steps holds the clients every handler uses. A nil client is one the
// Lambda was not given (its handler does not call it).
type Steps struct {
	RDS     RDSAPI
	DMS     DMSAPI
	Secrets SecretsAPI
	SNS     SNSAPI
	Config  Config
	Log     *slog.Logger
	// Now is the clock (tests set it).
	Now func() time.Time
	// Partitions lists the leaf partitions of the scope's tables on the
	// source; nil means read them there (tests without a source set it).
	Partitions func(context.Context, Input) ([]pgops.Table, error)
}

func (s *Steps) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Steps) stamp() string { return s.now().Format(time.RFC3339) }

// logger is the handler's logger: every line carries migrationId,
// executionId and step.
func (s *Steps) logger(st *State, step string) *slog.Logger {
	l := s.Log
	if l == nil {
		l = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return l.With("migrationId", st.MigrationID, "executionId", st.ExecutionID, "step", step)
}

// awsCode is the error code of an AWS API error, "" otherwise.
func awsCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isCode(err error, codes ...string) bool {
	c := awsCode(err)
	for _, x := range codes {
		if c == x {
			return true
		}
	}
	return false
}

// AWS error codes the handlers branch on.
const (
	codeSnapshotExists    = "DBSnapshotAlreadyExists"
	codeSnapshotNotFound  = "DBSnapshotNotFound"
	codeClusterExists     = "DBClusterAlreadyExistsFault"
	codeClusterNotFound   = "DBClusterNotFoundFault"
	codeInstanceExists    = "DBInstanceAlreadyExists"
	codeInstanceNotFound  = "DBInstanceNotFound"
	codeDMSExists         = "ResourceAlreadyExistsFault"
	codeDMSNotFound       = "ResourceNotFoundFault"
	codeDMSInvalidState   = "InvalidResourceStateFault"
	codeInvalidClusterSt  = "InvalidDBClusterStateFault"
	codeInvalidInstanceSt = "InvalidDBInstanceState"
	codeInvalidSnapshotSt = "InvalidDBSnapshotState"
)
