package pgops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seedrepl/seedrepl/internal/lsn"
)

// ownerComment marks a publication as made by one migration.
func ownerComment(migrationID string) string { return "seedrepl migration " + migrationID }

// EnsurePublication creates the publication for the scope if it does not
// exist and marks it as this migration's. An existing publication is adopted
// only if it is ours; its table list is not changed.
func EnsurePublication(ctx context.Context, conn *pgx.Conn, name string, scope Scope, migrationID string) (created bool, err error) {
	if err := ValidateIdent("publication", name); err != nil {
		return false, err
	}
	if err := scope.Validate(); err != nil {
		return false, err
	}
	var comment *string
	err = conn.QueryRow(ctx,
		`SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = $1`, name).Scan(&comment)
	switch {
	case err == nil:
		if comment == nil || *comment != ownerComment(migrationID) {
			return false, &ConflictError{Object: "publication " + name,
				Reason: "it was not made by migration " + migrationID,
				Fix:    "choose another migrationId, or drop that publication if it is a leftover you own"}
		}
		return false, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return false, fmt.Errorf("look up publication %s: %w", name, err)
	}
	var sql strings.Builder
	sql.WriteString("CREATE PUBLICATION " + pgx.Identifier{name}.Sanitize())
	if len(scope.Tables) > 0 {
		sql.WriteString(" FOR TABLE ")
		for i, s := range scope.Tables {
			t, _ := ParseTable(s)
			if i > 0 {
				sql.WriteString(", ")
			}
			sql.WriteString(t.Sanitize())
		}
	} else {
		sql.WriteString(" FOR TABLES IN SCHEMA ")
		for i, s := range scope.Schemas {
			if i > 0 {
				sql.WriteString(", ")
			}
			sql.WriteString(pgx.Identifier{s}.Sanitize())
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, sql.String()); err != nil {
		return false, fmt.Errorf("create publication %s: %w", name, err)
	}
	lit, err := quoteLiteral(conn.PgConn(), ownerComment(migrationID))
	if err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, "COMMENT ON PUBLICATION "+pgx.Identifier{name}.Sanitize()+" IS "+lit); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// quoteLiteral makes a SQL string literal with the server's own escaping, for
// the utility statements that take no parameters.
func quoteLiteral(pc *pgconn.PgConn, s string) (string, error) {
	esc, err := pc.EscapeString(s)
	if err != nil {
		return "", err
	}
	return "'" + esc + "'", nil
}

// PublishedTables lists the tables a publication publishes, sorted.
func PublishedTables(ctx context.Context, conn *pgx.Conn, publication string) ([]Table, error) {
	rows, err := conn.Query(ctx,
		`SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2`, publication)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Table, error) {
		var t Table
		return t, r.Scan(&t.Schema, &t.Name)
	})
}

// SlotInfo describes a logical replication slot.
type SlotInfo struct {
	Name            string  `json:"name"`
	Plugin          string  `json:"plugin"`
	Database        string  `json:"database"`
	Created         bool    `json:"created"`                   // made by this call
	ConsistentPoint lsn.LSN `json:"consistentPoint,omitempty"` // returned at creation
	ConfirmedFlush  lsn.LSN `json:"confirmedFlush"`
}

// SlotCreateTimeout bounds the wait for transactions that block slot creation.
var SlotCreateTimeout = 60 * time.Second

// EnsureSlot creates the logical slot with pg_create_logical_replication_slot,
// or adopts an existing one with the same plugin and database that is not in
// use. For pgoutput the publication must already exist: a publication created
// after the slot is invisible to the changes decoded before it.
func EnsureSlot(ctx context.Context, conn *pgx.Conn, name, plugin, publication string) (SlotInfo, error) {
	info := SlotInfo{Name: name, Plugin: plugin}
	if err := ValidateSlotName(name); err != nil {
		return info, err
	}
	if plugin != "pgoutput" && plugin != "test_decoding" {
		return info, fmt.Errorf("plugin %q: use pgoutput (native subscription) or test_decoding (DMS)", plugin)
	}
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&info.Database); err != nil {
		return info, err
	}
	if plugin == "pgoutput" {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, publication).Scan(&ok); err != nil {
			return info, err
		}
		if !ok {
			return info, fmt.Errorf("publication %q does not exist: create the publication before the slot", publication)
		}
	}
	var (
		slotType, gotPlugin, db string
		active                  bool
		walStatus               *string
		flush                   *string
	)
	err := conn.QueryRow(ctx, `SELECT slot_type, coalesce(plugin, ''), coalesce(database::text, ''), active, wal_status,
		confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, name).
		Scan(&slotType, &gotPlugin, &db, &active, &walStatus, &flush)
	if err == nil {
		switch {
		case slotType != "logical":
			return info, &ConflictError{"replication slot " + name, "it is a " + slotType + " slot", "choose another slot name"}
		case gotPlugin != plugin:
			return info, &ConflictError{"replication slot " + name, "it uses plugin " + gotPlugin + ", not " + plugin, "choose another slot name or drop that slot"}
		case db != info.Database:
			return info, &ConflictError{"replication slot " + name, "it belongs to database " + db, "choose another slot name"}
		case active:
			return info, &ConflictError{"replication slot " + name, "it is in use by another consumer", "stop that consumer or choose another slot name"}
		case walStatus != nil && *walStatus == "lost":
			return info, &ConflictError{"replication slot " + name, "its WAL is lost (wal_status = lost)", "drop it and start again with a new slot and snapshot"}
		}
		if flush != nil {
			info.ConfirmedFlush, err = lsn.Parse(*flush)
		}
		return info, err
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return info, fmt.Errorf("look up slot %s: %w", name, err)
	}
	// Slot creation waits for every transaction that holds an xid to end.
	cctx, cancel := context.WithTimeout(ctx, SlotCreateTimeout)
	defer cancel()
	var cp string
	err = conn.QueryRow(cctx, `SELECT lsn::text FROM pg_create_logical_replication_slot($1, $2)`, name, plugin).Scan(&cp)
	if err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return info, slotWaitError(ctx, conn, name)
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // created meanwhile by a concurrent run
			return EnsureSlot(ctx, conn, name, plugin, publication)
		}
		return info, fmt.Errorf("create slot %s: %w", name, err)
	}
	if info.ConsistentPoint, err = lsn.Parse(cp); err != nil {
		return info, err
	}
	info.ConfirmedFlush = info.ConsistentPoint
	info.Created = true
	return info, nil
}

// slotWaitError reconnects (the timed-out connection is closed) and names the
// transactions that keep the slot from reaching a consistent point.
func slotWaitError(ctx context.Context, conn *pgx.Conn, slot string) error {
	cfg := conn.Config().Copy()
	c2, err := pgx.ConnectConfig(ctx, cfg)
	msg := fmt.Sprintf("creating slot %s did not finish in %s: it waits for transactions that were running when it started to end", slot, SlotCreateTimeout)
	if err != nil {
		return fmt.Errorf("%s: %w", msg, ErrTransient)
	}
	defer c2.Close(ctx)
	rows, err := c2.Query(ctx, `SELECT pid, coalesce(usename::text, ''), coalesce(now() - xact_start, '0'::interval)::text, coalesce(state, '')
		FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 10`)
	if err == nil {
		var blockers []string
		for rows.Next() {
			var pid int
			var user, age, state string
			if rows.Scan(&pid, &user, &age, &state) == nil {
				blockers = append(blockers, fmt.Sprintf("pid %d (user %s, open for %s, %s)", pid, user, age, state))
			}
		}
		rows.Close()
		sort.Strings(blockers)
		if len(blockers) > 0 {
			msg += "; still open: " + strings.Join(blockers, ", ") + "; let them finish or end them (pg_terminate_backend), then run again"
		}
	}
	return fmt.Errorf("%s: %w", msg, ErrTransient)
}
