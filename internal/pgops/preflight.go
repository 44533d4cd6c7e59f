package pgops

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// PreflightOptions say what the migration will do on the source.
type PreflightOptions struct {
	Scope Scope
	// ForDMS applies the DMS path's limits: every table needs a primary key,
	// and column types DMS cannot carry are refused.
	ForDMS bool
	// OldXactAge: transactions holding an xid for longer are reported (they
	// stall slot creation). Default 5 minutes.
	OldXactAge time.Duration
	// SlotName and Publication, when they already exist, must be ours to adopt; checked by Ensure*.
}

// TableInfo is one table in scope.
type TableInfo struct {
	Table           string `json:"table"`
	Kind            string `json:"kind"`            // table, partitioned table, view, …
	ReplicaIdentity string `json:"replicaIdentity"` // default, full, index, nothing
	HasPrimaryKey   bool   `json:"hasPrimaryKey"`
	Unlogged        bool   `json:"unlogged"`
	EstimatedRows   int64  `json:"estimatedRows"`
}

// PreflightReport is what the source showed. Problems stop the migration;
// Warnings are reported.
type PreflightReport struct {
	ServerVersion      int         `json:"serverVersion"`
	WALLevel           string      `json:"walLevel"`
	MaxSlots           int         `json:"maxReplicationSlots"`
	UsedSlots          int         `json:"usedReplicationSlots"`
	MaxSenders         int         `json:"maxWalSenders"`
	UsedSenders        int         `json:"usedWalSenders"`
	MaxSlotWALKeepSize string      `json:"maxSlotWalKeepSize"`
	LargeObjects       int64       `json:"largeObjects"`
	Tables             []TableInfo `json:"tables"`
	Problems           []Problem   `json:"problems"`
	Warnings           []Problem   `json:"warnings"`
}

// Err is nil when nothing stops the migration, else a *PreflightError.
func (r *PreflightReport) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return &PreflightError{Problems: r.Problems}
}

// DMSUnsupportedTypes are column types that AWS DMS does not carry from a
// PostgreSQL source faithfully (its documented source data type limits).
var DMSUnsupportedTypes = map[string]string{
	"tsvector":      "DMS does not migrate tsvector",
	"tsquery":       "DMS does not migrate tsquery",
	"txid_snapshot": "DMS does not migrate txid_snapshot",
	"pg_lsn":        "DMS does not migrate pg_lsn",
	"int4range":     "DMS migrates range types as text only",
	"int8range":     "DMS migrates range types as text only",
	"numrange":      "DMS migrates range types as text only",
	"tsrange":       "DMS migrates range types as text only",
	"tstzrange":     "DMS migrates range types as text only",
	"daterange":     "DMS migrates range types as text only",
}

// Preflight inspects the source before anything is created. It changes nothing.
func Preflight(ctx context.Context, conn *pgx.Conn, opt PreflightOptions) (*PreflightReport, error) {
	if err := opt.Scope.Validate(); err != nil {
		return nil, err
	}
	if opt.OldXactAge <= 0 {
		opt.OldXactAge = 5 * time.Minute
	}
	r := &PreflightReport{Problems: []Problem{}, Warnings: []Problem{}}
	var maxSlots, maxSenders, version string
	err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num'), current_setting('wal_level'),
		current_setting('max_replication_slots'), current_setting('max_wal_senders'),
		current_setting('max_slot_wal_keep_size'),
		(SELECT count(*) FROM pg_replication_slots), (SELECT count(*) FROM pg_stat_replication),
		(SELECT count(*) FROM pg_largeobject_metadata)`).
		Scan(&version, &r.WALLevel, &maxSlots, &maxSenders, &r.MaxSlotWALKeepSize, &r.UsedSlots, &r.UsedSenders, &r.LargeObjects)
	if err != nil {
		return nil, fmt.Errorf("read source settings: %w", err)
	}
	r.ServerVersion, _ = strconv.Atoi(version)
	r.MaxSlots, _ = strconv.Atoi(maxSlots)
	r.MaxSenders, _ = strconv.Atoi(maxSenders)
	add := func(p Problem) { r.Problems = append(r.Problems, p) }
	warn := func(p Problem) { r.Warnings = append(r.Warnings, p) }

	if r.ServerVersion < 100000 {
		add(Problem{"server-version", "", fmt.Sprintf("server version %d has no native logical replication", r.ServerVersion), "upgrade the source to PostgreSQL 10 or later (15+ recommended)"})
	}
	if r.WALLevel != "logical" {
		add(Problem{"wal-level", "wal_level", "wal_level is " + r.WALLevel + ", not logical",
			"set rds.logical_replication = 1 in the source's parameter group and reboot the instance"})
	}
	if r.MaxSlots-r.UsedSlots < 1 {
		add(Problem{"no-free-slot", "max_replication_slots", fmt.Sprintf("%d of %d replication slots in use", r.UsedSlots, r.MaxSlots),
			"raise max_replication_slots (reboot) or drop an unused slot"})
	}
	if r.MaxSenders-r.UsedSenders < 1 {
		add(Problem{"no-free-sender", "max_wal_senders", fmt.Sprintf("%d of %d WAL senders in use", r.UsedSenders, r.MaxSenders),
			"raise max_wal_senders (reboot)"})
	}
	if r.MaxSlotWALKeepSize == "-1" {
		warn(Problem{"unbounded-wal-retention", "max_slot_wal_keep_size",
			"max_slot_wal_keep_size = -1: the slot retains WAL without limit until the target consumes it",
			"watch FreeStorageSpace and ReplicationSlotDiskUsage (the stack's alarms), or set a bound that leaves room for the restore time"})
	}
	if r.LargeObjects > 0 {
		warn(Problem{"large-objects", "pg_largeobject", fmt.Sprintf("%d large objects exist; logical replication does not carry them", r.LargeObjects),
			"copy large objects separately at cutover, or move them into bytea columns"})
	}

	if err := r.inspectTables(ctx, conn, opt); err != nil {
		return nil, err
	}
	if err := r.inspectOldTransactions(ctx, conn, opt.OldXactAge); err != nil {
		return nil, err
	}
	return r, nil
}

var relkindNames = map[string]string{"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view",
	"f": "foreign table", "S": "sequence", "i": "index", "c": "composite type", "t": "TOAST table", "I": "partitioned index"}

var identNames = map[string]string{"d": "default", "f": "full", "i": "index", "n": "nothing"}

func (r *PreflightReport) inspectTables(ctx context.Context, conn *pgx.Conn, opt PreflightOptions) error {
	add := func(p Problem) { r.Problems = append(r.Problems, p) }
	var rows pgx.Rows
	var err error
	const cols = `n.nspname::text, c.relname::text, c.relkind::text, c.relreplident::text, c.relpersistence::text,
		EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'),
		(c.relreplident <> 'i' OR EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisreplident)),
		greatest(c.reltuples, 0)::bigint`
	if len(opt.Scope.Tables) > 0 {
		var schemas, names []string
		for _, s := range opt.Scope.Tables {
			t, _ := ParseTable(s)
			schemas, names = append(schemas, t.Schema), append(names, t.Name)
		}
		// Listed names that match no relation come back with NULL columns.
		rows, err = conn.Query(ctx, `SELECT w.s, w.n, c.relkind::text, c.relreplident::text, c.relpersistence::text,
			EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'),
			(c.relreplident IS DISTINCT FROM 'i' OR EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisreplident)),
			greatest(coalesce(c.reltuples, 0), 0)::bigint
			FROM unnest($1::text[], $2::text[]) AS w(s, n)
			LEFT JOIN pg_namespace n ON n.nspname = w.s
			LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.n
			ORDER BY 1, 2`, schemas, names)
	} else {
		rows, err = conn.Query(ctx, `SELECT `+cols+` FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'f', 'm') AND NOT c.relispartition
			ORDER BY 1, 2`, opt.Scope.Schemas)
	}
	if err != nil {
		return fmt.Errorf("inspect tables in scope: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var schema, name string
		var kind, ident, persistence *string
		var pk, identOK bool
		var est int64
		if err := rows.Scan(&schema, &name, &kind, &ident, &persistence, &pk, &identOK, &est); err != nil {
			return err
		}
		obj := schema + "." + name
		if kind == nil {
			add(Problem{"table-missing", obj, "no such table on the source", "fix the name in publication.tables or remove it"})
			continue
		}
		ti := TableInfo{Table: obj, Kind: relkindNames[*kind], ReplicaIdentity: identNames[*ident],
			HasPrimaryKey: pk, Unlogged: *persistence == "u", EstimatedRows: est}
		r.Tables = append(r.Tables, ti)
		switch {
		case *kind != "r" && *kind != "p":
			add(Problem{"cannot-publish", obj, "it is a " + ti.Kind + "; only tables and partitioned tables can be published",
				"remove it from the scope (views and materialized views are rebuilt on the target)"})
			continue
		case *persistence == "u":
			add(Problem{"unlogged-table", obj, "unlogged tables write no WAL and cannot be replicated",
				"ALTER TABLE " + obj + " SET LOGGED, or remove it from the scope"})
			continue
		case *persistence == "t":
			add(Problem{"temporary-table", obj, "temporary tables cannot be replicated", "remove it from the scope"})
			continue
		}
		if *ident == "n" || (*ident == "d" && !pk) || !identOK {
			add(Problem{"no-replica-identity", obj, "no usable replica identity (no primary key, replica identity " + ti.ReplicaIdentity + "): UPDATE and DELETE on it would fail on the source once it is published",
				"add a primary key, or ALTER TABLE " + obj + " REPLICA IDENTITY FULL (slow on the target: every UPDATE/DELETE scans the table)"})
		}
		if opt.ForDMS && !pk {
			add(Problem{"dms-no-primary-key", obj, "AWS DMS drops UPDATE and DELETE for tables without a primary key",
				"add a primary key, exclude the table (publication.tables), or use mode \"subscription\""})
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if opt.ForDMS && len(r.Tables) > 0 {
		return r.inspectDMSTypes(ctx, conn)
	}
	return nil
}

func (r *PreflightReport) inspectDMSTypes(ctx context.Context, conn *pgx.Conn) error {
	names := make([]string, len(r.Tables))
	for i, t := range r.Tables {
		names[i] = t.Table
	}
	rows, err := conn.Query(ctx, `SELECT n.nspname || '.' || c.relname, a.attname::text, format_type(a.atttypid, a.atttypmod),
		t.typname::text, t.typtype::text
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_type t ON t.oid = a.atttypid
		WHERE n.nspname || '.' || c.relname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY 1, a.attnum`, names)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var table, col, typ, typname, typtype string
		if err := rows.Scan(&table, &col, &typ, &typname, &typtype); err != nil {
			return err
		}
		why, bad := DMSUnsupportedTypes[typname]
		if !bad && typtype == "c" {
			why, bad = "DMS does not migrate composite (user-defined row) types", true
		}
		if bad {
			r.Problems = append(r.Problems, Problem{"dms-unsupported-type", table + "." + col,
				fmt.Sprintf("column type %s: %s", typ, why),
				"exclude the table from publication.tables, change the column's type, or use mode \"subscription\""})
		}
	}
	return rows.Err()
}

func (r *PreflightReport) inspectOldTransactions(ctx context.Context, conn *pgx.Conn, age time.Duration) error {
	rows, err := conn.Query(ctx, `SELECT pid, coalesce(usename::text, ''), (now() - xact_start)::text
		FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
		  AND xact_start < now() - make_interval(secs => $1) ORDER BY xact_start`, age.Seconds())
	if err != nil {
		return err
	}
	defer rows.Close()
	var old []string
	for rows.Next() {
		var pid int
		var user, dur string
		if err := rows.Scan(&pid, &user, &dur); err != nil {
			return err
		}
		old = append(old, fmt.Sprintf("pid %d (%s, open %s)", pid, user, dur))
	}
	if len(old) > 0 {
		r.Warnings = append(r.Warnings, Problem{"old-transactions", "pg_stat_activity",
			"transactions open longer than " + age.String() + " will stall slot creation until they end: " + strings.Join(old, ", "),
			"let them finish or end them before starting"})
	}
	return rows.Err()
}
