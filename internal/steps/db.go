package steps

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/sferr"
)

// Secret is an RDS-format Secrets Manager secret. It never leaves the
// Lambda: not logged, not returned, not put in an error.
type Secret struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Host     string `json:"host"`
	Port     int    `json:"-"`
	DBName   string `json:"dbname"`
}

// String hides the password.
func (s Secret) String() string { return fmt.Sprintf("secret(user=%s)", s.Username) }

// GoString hides the password from %#v.
func (s Secret) GoString() string { return s.String() }

func (s *Secret) UnmarshalJSON(b []byte) error {
	type plain Secret
	var aux struct {
		plain
		Port json.RawMessage `json:"port"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return errors.New("secret is not RDS-format JSON (username, password, host, port, dbname)")
	}
	*s = Secret(aux.plain)
	if len(aux.Port) > 0 && string(aux.Port) != "null" {
		p := strings.Trim(string(aux.Port), `"`)
		n, err := strconv.Atoi(p)
		if err != nil {
			return errors.New("secret's port is not a number")
		}
		s.Port = n
	}
	return nil
}

// secret reads a secret by ARN.
func (s *Steps) secret(ctx context.Context, arn string) (Secret, error) {
	var sec Secret
	if arn == "" {
		return sec, sferr.InvalidInputf("no secret ARN given")
	}
	out, err := s.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return sec, fmt.Errorf("read secret %s: %w", arn, err)
	}
	if out.SecretString == nil {
		return sec, sferr.Terminalf("secret %s has no SecretString (binary secrets are not supported)", arn)
	}
	if err := json.Unmarshal([]byte(*out.SecretString), &sec); err != nil {
		return sec, sferr.Terminalf("secret %s: %v", arn, err)
	}
	if sec.Username == "" || sec.Password == "" {
		return sec, sferr.Terminalf("secret %s lacks username or password", arn)
	}
	return sec, nil
}

// Endpoint is where a database listens, as RDS describes it.
type Endpoint struct {
	Host string
	Port int
}

func (s *Steps) describeInstance(ctx context.Context, id string) (*rdstypes.DBInstance, error) {
	out, err := s.RDS.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
	if isCode(err, codeInstanceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe DB instance %s: %w", id, err)
	}
	if len(out.DBInstances) == 0 {
		return nil, nil
	}
	return &out.DBInstances[0], nil
}

func (s *Steps) describeCluster(ctx context.Context, id string) (*rdstypes.DBCluster, error) {
	out, err := s.RDS.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(id)})
	if isCode(err, codeClusterNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe DB cluster %s: %w", id, err)
	}
	if len(out.DBClusters) == 0 {
		return nil, nil
	}
	return &out.DBClusters[0], nil
}

// instanceEndpoint is an available instance's endpoint.
func (s *Steps) instanceEndpoint(ctx context.Context, id string) (Endpoint, *rdstypes.DBInstance, error) {
	db, err := s.describeInstance(ctx, id)
	if err != nil {
		return Endpoint{}, nil, err
	}
	if db == nil {
		return Endpoint{}, nil, sferr.NewResourceFailed(fmt.Errorf("DB instance %s does not exist", id))
	}
	if db.Endpoint == nil || db.Endpoint.Address == nil {
		return Endpoint{}, db, sferr.NotReadyYetf("DB instance %s has no endpoint yet (status %s)", id, aws.ToString(db.DBInstanceStatus))
	}
	return Endpoint{Host: *db.Endpoint.Address, Port: int(aws.ToInt32(db.Endpoint.Port))}, db, nil
}

// clusterEndpoint is a cluster's writer endpoint.
func (s *Steps) clusterEndpoint(ctx context.Context, id string) (Endpoint, *rdstypes.DBCluster, error) {
	c, err := s.describeCluster(ctx, id)
	if err != nil {
		return Endpoint{}, nil, err
	}
	if c == nil {
		return Endpoint{}, nil, sferr.NewResourceFailed(fmt.Errorf("DB cluster %s does not exist", id))
	}
	if c.Endpoint == nil || *c.Endpoint == "" {
		return Endpoint{}, c, sferr.NotReadyYetf("DB cluster %s has no endpoint yet (status %s)", id, aws.ToString(c.Status))
	}
	return Endpoint{Host: *c.Endpoint, Port: int(aws.ToInt32(c.Port))}, c, nil
}

// connConfig builds the pgx configuration programmatically: no DSN is ever
// formed, so none can reach a log or an error.
func (s *Steps) connConfig(ep Endpoint, sec Secret, database string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, err
	}
	port := ep.Port
	if port == 0 {
		port = 5432
	}
	cfg.Host = ep.Host
	cfg.Port = uint16(port)
	cfg.User = sec.Username
	cfg.Password = sec.Password
	cfg.Database = database
	cfg.Fallbacks = nil
	cfg.ConnectTimeout = s.Config.ConnectTimeout
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	cfg.RuntimeParams = map[string]string{"application_name": "seedrepl"}
	cfg.TLSConfig, err = s.tlsConfig(ep.Host)
	return cfg, err
}

// tlsConfig is the client TLS for SSLMode: verify-full (default) checks the
// chain against SSLRootCert and the host name; verify-ca the chain only;
// require encrypts without checking; disable is for local rehearsals.
func (s *Steps) tlsConfig(host string) (*tls.Config, error) {
	mode := s.Config.SSLMode
	if mode == "" {
		mode = "verify-full"
	}
	if mode == "disable" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if mode == "require" {
		c.InsecureSkipVerify = true
		return c, nil
	}
	var pool *x509.CertPool
	if s.Config.SSLRootCert != "" {
		pem, err := os.ReadFile(s.Config.SSLRootCert)
		if err != nil {
			return nil, sferr.Terminalf("read CA bundle SEEDREPL_SSLROOTCERT: %v", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, sferr.Terminalf("CA bundle %s holds no PEM certificate", s.Config.SSLRootCert)
		}
	}
	switch mode {
	case "verify-full":
		c.RootCAs = pool
	case "verify-ca":
		c.InsecureSkipVerify = true
		c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			certs := make([]*x509.Certificate, len(raw))
			for i, r := range raw {
				cert, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				certs[i] = cert
			}
			if len(certs) == 0 {
				return errors.New("server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter})
			return err
		}
	default:
		return nil, sferr.Terminalf("SEEDREPL_SSLMODE %q: use verify-full, verify-ca, require or disable", mode)
	}
	return c, nil
}

func (s *Steps) connect(ctx context.Context, what string, ep Endpoint, sec Secret, database string) (*pgx.Conn, error) {
	cfg, err := s.connConfig(ep, sec, database)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s (%s:%d, database %s, user %s): %w", what, ep.Host, ep.Port, database, sec.Username, err)
	}
	return conn, nil
}

// connectSource connects to the source as the admin role.
func (s *Steps) connectSource(ctx context.Context, in Input) (*pgx.Conn, error) {
	ep, _, err := s.instanceEndpoint(ctx, in.Source.InstanceID)
	if err != nil {
		return nil, err
	}
	sec, err := s.secret(ctx, in.Source.AdminSecretARN)
	if err != nil {
		return nil, err
	}
	return s.connect(ctx, "source "+in.Source.InstanceID, ep, sec, in.Source.Database)
}

// targetSecretARN: the restore keeps the source's roles and passwords.
func targetSecretARN(in Input) string {
	if in.Target.AdminSecretARN != "" {
		return in.Target.AdminSecretARN
	}
	return in.Source.AdminSecretARN
}

// connectTarget connects to the Aurora cluster's writer endpoint.
func (s *Steps) connectTarget(ctx context.Context, in Input) (*pgx.Conn, error) {
	n := NamesFor(in)
	ep, _, err := s.clusterEndpoint(ctx, n.Cluster)
	if err != nil {
		return nil, err
	}
	sec, err := s.secret(ctx, targetSecretARN(in))
	if err != nil {
		return nil, err
	}
	return s.connect(ctx, "target "+n.Cluster, ep, sec, in.Source.Database)
}

// connectTemp connects to the temporary copy (the source's roles).
func (s *Steps) connectTemp(ctx context.Context, in Input) (*pgx.Conn, error) {
	n := NamesFor(in)
	ep, _, err := s.instanceEndpoint(ctx, n.TempInstance)
	if err != nil {
		return nil, err
	}
	sec, err := s.secret(ctx, in.Source.AdminSecretARN)
	if err != nil {
		return nil, err
	}
	return s.connect(ctx, "temporary instance "+n.TempInstance, ep, sec, in.Source.Database)
}

// conninfoQuote quotes a libpq keyword/value: single quotes, with \ and '
// escaped by a backslash.
func conninfoQuote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// subscriptionConninfo is the subscription's CONNECTION: the replication
// role (never the master user) to the source's endpoint. It is a secret.
func subscriptionConninfo(ep Endpoint, sec Secret, database, sslmode string) string {
	if sslmode == "" {
		sslmode = "require"
	}
	port := ep.Port
	if port == 0 {
		port = 5432
	}
	parts := []string{
		"host=" + conninfoQuote(ep.Host),
		"port=" + strconv.Itoa(port),
		"dbname=" + conninfoQuote(database),
		"user=" + conninfoQuote(sec.Username),
		"password=" + conninfoQuote(sec.Password),
		"sslmode=" + conninfoQuote(sslmode),
		"application_name=" + conninfoQuote("seedrepl"),
	}
	return strings.Join(parts, " ")
}

// pgxConn is the part of *pgx.Conn scopeTables needs.
type pgxConn interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}
