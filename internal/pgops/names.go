package pgops

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

var (
	slotNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	identRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)
	// MigrationIDRE is the shape of a migration id; every resource name derives from it.
	MigrationIDRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,29}[a-z0-9]$`)
)

// ValidateSlotName checks PostgreSQL's rule for replication slot names.
func ValidateSlotName(name string) error {
	if !slotNameRE.MatchString(name) {
		return fmt.Errorf("replication slot name %q is invalid: use 1-63 characters of a-z, 0-9 and _, not starting with a digit", name)
	}
	return nil
}

// ValidateIdent checks a plain SQL identifier (publication, subscription, schema, table name).
func ValidateIdent(kind, name string) error {
	if !identRE.MatchString(name) {
		return fmt.Errorf("%s name %q is invalid: use 1-63 characters of letters, digits, _ and $, not starting with a digit", kind, name)
	}
	return nil
}

// ObjectName is the name of the slot, publication and subscription this migration owns.
func ObjectName(migrationID string) string {
	return "seedrepl_" + strings.ReplaceAll(migrationID, "-", "_")
}

// Table is a schema-qualified table name.
type Table struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
}

// ParseTable reads "schema.table" (or "table", meaning public.table).
func ParseTable(s string) (Table, error) {
	parts := strings.Split(s, ".")
	var t Table
	switch len(parts) {
	case 1:
		t = Table{"public", parts[0]}
	case 2:
		t = Table{parts[0], parts[1]}
	default:
		return t, fmt.Errorf("table %q: want schema.table", s)
	}
	if err := ValidateIdent("schema", t.Schema); err != nil {
		return t, fmt.Errorf("table %q: %w", s, err)
	}
	if err := ValidateIdent("table", t.Name); err != nil {
		return t, fmt.Errorf("table %q: %w", s, err)
	}
	return t, nil
}

func (t Table) String() string { return t.Schema + "." + t.Name }

// Sanitize quotes the table for SQL.
func (t Table) Sanitize() string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }

// Scope is what the migration replicates: listed tables, or every table of listed schemas.
type Scope struct {
	Tables  []string `json:"tables,omitempty"`
	Schemas []string `json:"schemas,omitempty"`
}

// Validate checks the scope's names without a server.
func (s Scope) Validate() error {
	if len(s.Tables) == 0 && len(s.Schemas) == 0 {
		return fmt.Errorf("scope is empty: list tables (schema.table) or schemas to replicate")
	}
	if len(s.Tables) > 0 && len(s.Schemas) > 0 {
		return fmt.Errorf("scope lists both tables and schemas: choose one (a publication is FOR TABLE … or FOR TABLES IN SCHEMA …)")
	}
	for _, t := range s.Tables {
		if _, err := ParseTable(t); err != nil {
			return err
		}
	}
	for _, sc := range s.Schemas {
		if err := ValidateIdent("schema", sc); err != nil {
			return err
		}
	}
	return nil
}

// LeafPartitions lists the leaf partitions of a partitioned table (none for
// a plain table). Changes to a partitioned table are decoded under its leaf
// partitions' names, so a consumer that selects tables by name (a DMS task's
// table mappings) must list them too.
func LeafPartitions(ctx context.Context, conn *pgx.Conn, t Table) ([]Table, error) {
	rows, err := conn.Query(ctx, `SELECT n.nspname::text, c.relname::text
		FROM pg_partition_tree(to_regclass($1)) p JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE p.isleaf AND p.relid <> to_regclass($1) ORDER BY 1, 2`, t.Sanitize())
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", t, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Table, error) {
		var p Table
		return p, r.Scan(&p.Schema, &p.Name)
	})
}
