package pgcluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lsn"
)

// Backup is a physical copy of a running cluster: the local RDS snapshot.
type Backup struct {
	Dir      string  // the backup's directory (a PGDATA ready to start)
	StartLSN lsn.LSN // pg_basebackup's "write-ahead log start point" (the backup's REDO)
	EndLSN   lsn.LSN // its "write-ahead log end point": the point of consistency
	TakenAt  time.Time
	Password string // the source's superuser password (the copy keeps the source's roles)
}

var (
	reStart = regexp.MustCompile(`write-ahead log start point: ([0-9A-Fa-f]+/[0-9A-Fa-f]+)`)
	reEnd   = regexp.MustCompile(`write-ahead log end point: ([0-9A-Fa-f]+/[0-9A-Fa-f]+)`)
)

// BaseBackup takes a streaming base backup of the running cluster into a new
// directory under dir ("" = beside the cluster). It is what an RDS snapshot
// is to RDS: a physical copy taken while the source keeps writing.
func (c *Cluster) BaseBackup(ctx context.Context, dir string) (*Backup, error) {
	if dir == "" {
		dir = filepath.Dir(c.Dir)
	}
	parent, err := os.MkdirTemp(dir, "seedrepl-backup-")
	if err != nil {
		return nil, err
	}
	if err := mkdirOwned(parent, 0o755); err != nil {
		return nil, err
	}
	dest := filepath.Join(parent, "data")
	taken := time.Now().UTC()
	out, err := run(ctx, "pg_basebackup", "-h", c.SocketDir(), "-p", strconv.Itoa(c.Port), "-U", Superuser,
		"-D", dest, "-X", "stream", "-c", "fast", "-v", "--no-sync")
	if err != nil {
		_ = os.RemoveAll(parent)
		return nil, err
	}
	b := &Backup{Dir: dest, TakenAt: taken, Password: c.Password}
	if m := reStart.FindSubmatch(out); m != nil {
		b.StartLSN, err = lsn.Parse(string(m[1]))
		if err != nil {
			return nil, err
		}
	}
	m := reEnd.FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("pg_basebackup did not print its end point:\n%s", out)
	}
	if b.EndLSN, err = lsn.Parse(string(m[1])); err != nil {
		return nil, err
	}
	c.logf("base backup %s: start %s end %s", dest, b.StartLSN, b.EndLSN)
	return b, nil
}

// Remove deletes the backup's files.
func (b *Backup) Remove() error { return os.RemoveAll(filepath.Dir(b.Dir)) }

// Restored is a cluster started from a backup.
type Restored struct {
	*Cluster
	// ConsistentLSN is where the copy's recovery stopped: the end of the last
	// WAL record it replayed, read from the copy's timeline history
	// ("<lsn> reached consistency"). Every commit before it is in the copy,
	// none after it. This is the seed.
	ConsistentLSN lsn.LSN
	// OwnStartLSN is, for an Aurora-like copy, the unrelated WAL position its
	// own log starts from after pg_resetwal; zero for an RDS-like copy.
	OwnStartLSN lsn.LSN
}

// restoreCopy copies the backup into a new cluster directory and recovers it
// to the point of consistency, then promotes it. Logical replication workers
// are off, so subscriptions the backup copied from the source do not start.
func restoreCopy(ctx context.Context, b *Backup, opts Options) (*Restored, error) {
	c, err := newClusterDir(opts)
	if err != nil {
		return nil, err
	}
	c.Password = b.Password
	u, _ := serverUser()
	// cp -a as the server user keeps ownership right.
	if u.viaRoot {
		if out, err := runPlain(ctx, "runuser", "-u", u.name, "--", "cp", "-a", b.Dir, c.DataDir()); err != nil {
			return nil, fmt.Errorf("copy backup: %w: %s", err, out)
		}
	} else if out, err := runPlain(ctx, "cp", "-a", b.Dir, c.DataDir()); err != nil {
		return nil, fmt.Errorf("copy backup: %w: %s", err, out)
	}
	if err := os.Chmod(c.DataDir(), 0o700); err != nil {
		return nil, err
	}
	sig := filepath.Join(c.DataDir(), "recovery.signal")
	if err := os.WriteFile(sig, nil, 0o600); err != nil {
		return nil, err
	}
	if u.viaRoot {
		_ = os.Chown(sig, u.uid, u.gid)
	}
	settings := map[string]string{
		"recovery_target":                 "'immediate'",
		"recovery_target_action":          "'promote'",
		"restore_command":                 "'false'", // PG 15 refuses archive recovery without one
		"primary_conninfo":                "''",      // never stream from the source: the replay end would move
		"max_logical_replication_workers": "0",
	}
	if err := c.writeConf(defaultSettings(), opts.Settings, settings); err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		_ = c.Remove()
		return nil, err
	}
	r := &Restored{Cluster: c}
	if err := r.waitPromoted(ctx); err != nil {
		_ = c.Remove()
		return nil, err
	}
	if r.ConsistentLSN, err = r.readConsistency(); err != nil {
		_ = c.Remove()
		return nil, err
	}
	c.logf("recovered to consistency at %s (backup end point %s)", r.ConsistentLSN, b.EndLSN)
	return r, nil
}

func runPlain(ctx context.Context, name string, args ...string) ([]byte, error) {
	return execCommand(ctx, name, args...).CombinedOutput()
}

func (r *Restored) waitPromoted(ctx context.Context) error {
	deadline := time.Now().Add(120 * time.Second)
	for {
		conn, err := r.Connect(ctx, "postgres")
		if err == nil {
			var inRecovery bool
			err = conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
			conn.Close(ctx)
			if err == nil && !inRecovery {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not finish recovery in time (last error: %v)\n%s", r.Name, err, r.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readConsistency reads the switch point from the newest timeline history
// file: promotion at recovery_target=immediate writes "<tli> <lsn> reached consistency".
func (r *Restored) readConsistency() (lsn.LSN, error) {
	files, _ := filepath.Glob(filepath.Join(r.DataDir(), "pg_wal", "*.history"))
	if len(files) == 0 {
		return 0, fmt.Errorf("%s: no timeline history file after promotion", r.Name)
	}
	newest := files[len(files)-1]
	f, err := os.Open(newest)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			last = line
		}
	}
	fields := strings.Fields(last)
	if len(fields) < 2 || !strings.Contains(last, "consistency") {
		return 0, fmt.Errorf("%s: unexpected timeline history line %q in %s", r.Name, last, newest)
	}
	return lsn.Parse(fields[1])
}

// RestoreRDS is the local RDS restore: a copy of the backup recovered to its
// point of consistency, with rds_tools.logical_seed_lsn() returning that point
// as RDS's function does.
func RestoreRDS(ctx context.Context, b *Backup, opts Options) (*Restored, error) {
	r, err := restoreCopy(ctx, b, opts)
	if err != nil {
		return nil, err
	}
	if err := r.installFunctions(ctx, "rds_tools", "logical_seed_lsn", r.ConsistentLSN); err != nil {
		_ = r.Remove()
		return nil, err
	}
	return r, nil
}

// RestoreAurora is the local Aurora restore: a copy of the backup recovered to
// consistency, whose WAL is then moved far away with pg_resetwal, so that its
// own LSNs are unrelated to the source's (as Aurora's are). It offers
// aurora_volume_logical_start_lsn(), which returns that unrelated position.
// Logical replication workers are back on: the target runs subscriptions.
func RestoreAurora(ctx context.Context, b *Backup, opts Options) (*Restored, error) {
	r, err := restoreCopy(ctx, b, opts)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Restored, error) { _ = r.Remove(); return nil, err }
	if err := r.Stop(ctx); err != nil {
		return fail(err)
	}
	// Move the WAL 256 x 4 GiB past the source's position: a new log of its own.
	hi := uint32(r.ConsistentLSN>>32) + 0x100
	walFile := fmt.Sprintf("%08X%08X%08X", 1, hi, 0)
	if _, err := run(ctx, "pg_resetwal", "-l", walFile, r.DataDir()); err != nil {
		return fail(err)
	}
	if err := r.writeConf(map[string]string{"max_logical_replication_workers": "8"}); err != nil {
		return fail(err)
	}
	if err := r.Start(ctx); err != nil {
		return fail(err)
	}
	conn, err := r.Connect(ctx, "postgres")
	if err != nil {
		return fail(err)
	}
	err = conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()").Scan(&r.OwnStartLSN)
	conn.Close(ctx)
	if err != nil {
		return fail(err)
	}
	if err := r.installFunctions(ctx, "", "aurora_volume_logical_start_lsn", r.OwnStartLSN); err != nil {
		return fail(err)
	}
	r.logf("WAL moved: own start %s (source consistency %s)", r.OwnStartLSN, r.ConsistentLSN)
	return r, nil
}

// installFunctions defines schema.fn() RETURNS pg_lsn in every database of the copy.
func (r *Restored) installFunctions(ctx context.Context, schema, fn string, value lsn.LSN) error {
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
	qualified := pgx.Identifier{fn}.Sanitize()
	if schema != "" {
		qualified = pgx.Identifier{schema, fn}.Sanitize()
	}
	for _, db := range dbs {
		c, err := r.Connect(ctx, db)
		if err != nil {
			return err
		}
		stmts := []string{}
		if schema != "" {
			stmts = append(stmts, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
		}
		// The value is fixed at restore time, as on RDS; an LSN's text form
		// is hex digits and a slash only, checked by lsn.Parse.
		stmts = append(stmts, fmt.Sprintf("CREATE OR REPLACE FUNCTION %s() RETURNS pg_lsn LANGUAGE sql IMMUTABLE AS $f$ SELECT '%s'::pg_lsn $f$",
			qualified, value))
		if schema != "" {
			// Record an extension of the schema's name (owning nothing, no
			// control file), so that `CREATE EXTENSION IF NOT EXISTS rds_tools`,
			// the statement run on RDS, is a no-op here as it is there.
			stmts = append(stmts, `INSERT INTO pg_catalog.pg_extension (oid, extname, extowner, extnamespace, extrelocatable, extversion)
				SELECT (SELECT max(oid)::text::bigint + 1 FROM pg_catalog.pg_extension)::text::oid, n.nspname,
				       (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user), n.oid, false, '1.0'
				FROM pg_catalog.pg_namespace n
				WHERE n.nspname = `+quoteIdentLiteral(schema)+` AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = n.nspname)`)
		}
		for _, s := range stmts {
			if _, err := c.Exec(ctx, s); err != nil {
				c.Close(ctx)
				return fmt.Errorf("%s in %s: %w", s, db, err)
			}
		}
		c.Close(ctx)
	}
	return nil
}

// quoteIdentLiteral quotes a name made of letters, digits and _ as a SQL literal.
func quoteIdentLiteral(name string) string {
	for _, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			panic("quoteIdentLiteral: unexpected character in " + name)
		}
	}
	return "'" + name + "'"
}
