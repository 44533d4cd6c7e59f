package pgops

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lsn"
)

// Lag is the slot's distance behind the source's WAL.
type Lag struct {
	Slot           string  `json:"slot"`
	Current        lsn.LSN `json:"current"`
	ConfirmedFlush lsn.LSN `json:"confirmedFlush"`
	Bytes          int64   `json:"bytes"`
	Active         bool    `json:"active"`
	WALStatus      string  `json:"walStatus"`
}

// SlotLag reads, on the source, the bytes between pg_current_wal_lsn() and
// the slot's confirmed_flush_lsn, and whether a consumer is attached.
func SlotLag(ctx context.Context, conn *pgx.Conn, slot string) (Lag, error) {
	l := Lag{Slot: slot}
	var cur, flush, ws *string
	err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text, confirmed_flush_lsn::text, active, wal_status
		FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&cur, &flush, &l.Active, &ws)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, fmt.Errorf("slot %s does not exist on the source", slot)
	}
	if err != nil {
		return l, err
	}
	if ws != nil {
		l.WALStatus = *ws
	}
	if l.Current, err = lsn.Parse(*cur); err != nil {
		return l, err
	}
	if flush != nil {
		if l.ConfirmedFlush, err = lsn.Parse(*flush); err != nil {
			return l, err
		}
	}
	l.Bytes = l.Current.Sub(l.ConfirmedFlush)
	if l.Bytes < 0 {
		l.Bytes = 0
	}
	return l, nil
}
