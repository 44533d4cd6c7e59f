package localcloud

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/pgcluster"
)

// SourceOptions describe a registered source instance.
type SourceOptions struct {
	// SecretARN is reported as the instance's MasterUserSecret. If it is not
	// registered yet, it is registered with the cluster's credentials
	// (RDSSecret: username, password, host 127.0.0.1, port, dbname).
	SecretARN string
	// DBName is the instance's DBName; "postgres" if empty.
	DBName string
	// ParameterGroup names the instance's DB parameter group; DescribeDBParameters
	// on it reports the live settings (rds.logical_replication = 1 when
	// wal_level is logical). "<id>-params" if empty.
	ParameterGroup string
	// EngineVersion; the server's own version (e.g. "15.14") if empty.
	EngineVersion string
	// Class is the DBInstanceClass reported; db.r6g.large if empty.
	Class string
}

// AddSourceInstance registers a cluster the program made (pgcluster.Init) as
// the RDS instance id: DescribeDBInstances reports its endpoint and
// CreateDBSnapshot backs it up. The cluster is never stopped or removed here.
func (s *Server) AddSourceInstance(ctx context.Context, id string, c *pgcluster.Cluster, o SourceOptions) error {
	o.DBName = orDefault(o.DBName, "postgres")
	conn, err := c.Connect(ctx, o.DBName)
	if err != nil {
		return fmt.Errorf("source %s: %w", id, err)
	}
	defer conn.Close(ctx)
	i, err := s.newSource(ctx, id, conn, o)
	if err != nil {
		return err
	}
	i.source = c
	i.masterUser = pgcluster.Superuser
	return s.registerSource(i, o, RDSSecret{Username: pgcluster.Superuser, Password: c.Password, Engine: "postgres",
		Host: "127.0.0.1", Port: c.Port, DBName: o.DBName})
}

// AdoptSourceInstance registers a running cluster known by a connection
// string (postgres://user[:password]@127.0.0.1:PORT/db) as the RDS instance
// id. Snapshots are taken over the network with pg_basebackup (the user needs
// the REPLICATION attribute and a pg_hba.conf replication entry); its data
// directory is never touched.
func (s *Server) AdoptSourceInstance(ctx context.Context, id, connString string, o SourceOptions) (*pgcluster.External, error) {
	e, err := pgcluster.Adopt(ctx, connString)
	if err != nil {
		return nil, err
	}
	o.DBName = orDefault(o.DBName, e.Database)
	conn, err := e.Connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	i, err := s.newSource(ctx, id, conn, o)
	if err != nil {
		return nil, err
	}
	i.external = e
	i.masterUser = e.User
	return e, s.registerSource(i, o, RDSSecret{Username: e.User, Password: e.Password, Engine: "postgres",
		Host: e.Host, Port: e.Port, DBName: o.DBName})
}

func (s *Server) newSource(ctx context.Context, id string, conn *pgx.Conn, o SourceOptions) (*dbInstance, error) {
	lid, e := rdsIdentifier("DBInstanceIdentifier", id)
	if e != nil {
		return nil, e
	}
	version := o.EngineVersion
	if version == "" {
		var v string
		if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
			return nil, err
		}
		version = strings.Fields(v)[0]
	}
	now := time.Now()
	return &dbInstance{id: lid, arn: rdsARN("db", lid), kind: kindSource, created: now, readyAt: now, done: true,
		engine: "postgres", engineVersion: version, class: orDefault(o.Class, "db.r6g.large"),
		paramGroup: orDefault(o.ParameterGroup, lid+"-params"), dbName: o.DBName, secretArn: o.SecretARN,
		resourceID: "db-" + strings.ToUpper(randomSuffix(26))}, nil
}

func (s *Server) registerSource(i *dbInstance, o SourceOptions, creds RDSSecret) error {
	if o.SecretARN != "" {
		s.mu.Lock()
		known := s.lookupSecretLocked(o.SecretARN) != nil
		s.mu.Unlock()
		if !known {
			if _, err := s.PutSecret(o.SecretARN, creds); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.instances[i.id]; ok {
		return fmt.Errorf("instance %s already exists", i.id)
	}
	s.instances[i.id] = i
	s.log.Info("source registered", "instance", i.id, "version", i.engineVersion)
	return nil
}

// InstanceCluster returns the PostgreSQL behind an instance once it has one
// (for a cluster member, the cluster's), for tests and the rehearsal's checks.
func (s *Server) InstanceCluster(id string) (*pgcluster.Cluster, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.instances[strings.ToLower(id)]
	if i == nil {
		return nil, false
	}
	switch {
	case i.source != nil:
		return i.source, true
	case i.restored != nil:
		return i.restored.Cluster, true
	case i.kind == kindMember:
		if c := s.clusters[i.clusterID]; c != nil && c.restored != nil {
			return c.restored.Cluster, true
		}
	}
	return nil, false
}
