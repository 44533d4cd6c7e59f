package pgops

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lsn"
)

// ReadSeedLSN reads the seed on a copy restored from the snapshot exactly as
// RDS documents it: CREATE EXTENSION IF NOT EXISTS rds_tools; SELECT
// rds_tools.logical_seed_lsn(). The local RDS restore provides the same
// extension and function, so the same statements run locally and on AWS.
func ReadSeedLSN(ctx context.Context, conn *pgx.Conn) (lsn.LSN, error) {
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS rds_tools`); err != nil {
		return 0, fmt.Errorf("create extension rds_tools (is this an RDS for PostgreSQL copy of the snapshot?): %w", err)
	}
	return queryLSN(ctx, conn, `SELECT rds_tools.logical_seed_lsn()::text`)
}

// AuroraStartLSN reads aurora_volume_logical_start_lsn(): Aurora's own
// position, unrelated to the source's WAL. It is never a seed.
func AuroraStartLSN(ctx context.Context, conn *pgx.Conn) (lsn.LSN, error) {
	return queryLSN(ctx, conn, `SELECT aurora_volume_logical_start_lsn()::text`)
}

// CurrentWAL is pg_current_wal_lsn().
func CurrentWAL(ctx context.Context, conn *pgx.Conn) (lsn.LSN, error) {
	return queryLSN(ctx, conn, `SELECT pg_current_wal_lsn()::text`)
}

func queryLSN(ctx context.Context, conn *pgx.Conn, sql string, args ...any) (lsn.LSN, error) {
	var s *string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		return 0, err
	}
	if s == nil {
		return 0, fmt.Errorf("%s returned NULL", sql)
	}
	return lsn.Parse(*s)
}

// SeedProof is what the source showed when the seed was proven.
type SeedProof struct {
	Slot           string  `json:"slot"`
	Seed           lsn.LSN `json:"seed"`
	ConfirmedFlush lsn.LSN `json:"confirmedFlush"`
	Current        lsn.LSN `json:"current"`
	WALStatus      string  `json:"walStatus"`
	RetainedBytes  int64   `json:"retainedBytes"` // current - confirmed_flush: WAL the slot holds
}

// ProveSeed checks on the source, before anything is enabled, that the seed
// can be used with the slot: the slot exists, is not active, its WAL is not
// lost, and confirmed_flush_lsn <= seed <= pg_current_wal_lsn(). A seed
// beyond the source's position (an Aurora LSN, say) would make the slot skip
// every change up to it, silently; a seed before confirmed_flush_lsn cannot be
// served.
func ProveSeed(ctx context.Context, conn *pgx.Conn, slot string, seed lsn.LSN) (*SeedProof, error) {
	var (
		active         bool
		walStatus      *string
		flush, current *string
	)
	err := conn.QueryRow(ctx, `SELECT active, wal_status, confirmed_flush_lsn::text, pg_current_wal_lsn()::text
		FROM pg_replication_slots WHERE slot_name = $1 AND slot_type = 'logical'`, slot).
		Scan(&active, &walStatus, &flush, &current)
	e := &SeedProofError{Slot: slot, Seed: seed}
	if errors.Is(err, pgx.ErrNoRows) {
		e.Condition = "the logical slot does not exist on the source"
		return nil, e
	}
	if err != nil {
		return nil, err
	}
	if walStatus != nil {
		e.WALStatus = *walStatus
	}
	e.Active = active
	if current != nil {
		if e.Current, err = lsn.Parse(*current); err != nil {
			return nil, err
		}
	}
	if flush != nil {
		if e.ConfirmedFlush, err = lsn.Parse(*flush); err != nil {
			return nil, err
		}
	}
	switch {
	case seed == lsn.Invalid:
		e.Condition = "the seed is 0/0"
	case active:
		e.Condition = "the slot is active: another consumer is reading it"
	case e.WALStatus == "lost":
		e.Condition = "the slot's WAL is lost (wal_status = lost)"
	case flush == nil:
		e.Condition = "the slot has no confirmed_flush_lsn"
	case seed < e.ConfirmedFlush:
		e.Condition = "the seed is before the slot's confirmed_flush_lsn: the changes between them are gone from the slot"
	case seed > e.Current:
		e.Condition = "the seed is beyond the source's current WAL position: it is not a position of this source (an Aurora LSN?) and would skip every change up to it"
	default:
		return &SeedProof{Slot: slot, Seed: seed, ConfirmedFlush: e.ConfirmedFlush, Current: e.Current,
			WALStatus: e.WALStatus, RetainedBytes: e.Current.Sub(e.ConfirmedFlush)}, nil
	}
	return nil, e
}
