package localcloud

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/pgcluster"
)

// registerRDSTools makes `CREATE EXTENSION IF NOT EXISTS rds_tools` a no-op
// on an RDS-like copy, as it is on RDS once the extension is there: the
// function rds_tools.logical_seed_lsn() is made by pgcluster.RestoreRDS, and
// this records an extension named rds_tools (owning nothing) in pg_extension
// of every database, so the statement the ReadSeedLSN step runs on AWS also
// works locally. No control file is installed: CREATE EXTENSION without IF
// NOT EXISTS still fails, and DROP EXTENSION removes only the record.
func registerRDSTools(ctx context.Context, r *pgcluster.Restored) error {
	conn, err := r.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
	if err != nil {
		conn.Close(ctx)
		return err
	}
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	conn.Close(ctx)
	if err != nil {
		return err
	}
	for _, db := range dbs {
		c, err := r.Connect(ctx, db)
		if err != nil {
			return err
		}
		_, err = c.Exec(ctx, `INSERT INTO pg_catalog.pg_extension (oid, extname, extowner, extnamespace, extrelocatable, extversion)
			SELECT (SELECT max(oid)::text::bigint + 1 FROM pg_catalog.pg_extension)::text::oid, 'rds_tools',
			       (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user), n.oid, false, '1.0'
			FROM pg_catalog.pg_namespace n
			WHERE n.nspname = 'rds_tools' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'rds_tools')`)
		c.Close(ctx)
		if err != nil {
			return fmt.Errorf("register rds_tools in %s: %w", db, err)
		}
	}
	return nil
}
