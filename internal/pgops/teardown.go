package pgops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DropOwnedSlot drops the migration's slot on the source. It refuses any slot
// whose name is not this migration's own (ObjectName(migrationID)): a slot the
// migration adopted belongs to someone else. An active slot's walsender is
// ended first (its subscriber is being torn down). Missing: no-op.
func DropOwnedSlot(ctx context.Context, conn *pgx.Conn, slot, migrationID string) (bool, error) {
	if slot != ObjectName(migrationID) {
		return false, &NotOwnedError{Object: "replication slot " + slot,
			Reason: "its name is not " + ObjectName(migrationID) + ", the one migration " + migrationID + " creates"}
	}
	for attempt := 0; ; attempt++ {
		var pid *int32
		err := conn.QueryRow(ctx, `SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if pid != nil {
			if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend($1)`, *pid); err != nil {
				return false, err
			}
		}
		_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot)
		if err == nil {
			return true, nil
		}
		if !IsTransient(err) || attempt >= 20 {
			return false, fmt.Errorf("drop slot %s: %w", slot, err)
		}
		select { // the walsender takes a moment to exit
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// DropOwnedPublication drops the publication only if this migration made it
// (its comment says so). Missing: no-op.
func DropOwnedPublication(ctx context.Context, conn *pgx.Conn, name, migrationID string) (bool, error) {
	var comment *string
	err := conn.QueryRow(ctx, `SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = $1`, name).Scan(&comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if comment == nil || *comment != ownerComment(migrationID) {
		return false, &NotOwnedError{Object: "publication " + name, Reason: "it was not made by migration " + migrationID}
	}
	if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		return false, fmt.Errorf("drop publication %s: %w", name, err)
	}
	return true, nil
}
