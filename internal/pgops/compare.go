package pgops

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lsn"
)

// Digest is a table's row count and an order-independent hash of its rows:
// the sum, as an exact numeric, of the first 64 bits of md5(row text) over
// every row. Equal content gives equal digests whatever the physical order.
type Digest struct {
	Rows int64  `json:"rows"`
	Hash string `json:"hash"`
}

func digestSQL(t Table) string {
	return `SELECT count(*), coalesce(sum(('x' || substr(md5(r::text), 1, 16))::bit(64)::bigint::numeric), 0)::text FROM ` +
		t.Sanitize() + ` AS r`
}

// TableDigest computes a table's digest.
func TableDigest(ctx context.Context, conn *pgx.Conn, t Table) (Digest, error) {
	var d Digest
	err := conn.QueryRow(ctx, digestSQL(t)).Scan(&d.Rows, &d.Hash)
	if err != nil {
		return d, fmt.Errorf("digest %s: %w", t, err)
	}
	return d, nil
}

// SourceDigest computes a table's digest on the source and a WAL position at
// the snapshot it read: every commit it saw ends at or before that position.
func SourceDigest(ctx context.Context, conn *pgx.Conn, t Table) (Digest, lsn.LSN, error) {
	var d Digest
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return d, 0, err
	}
	defer tx.Rollback(ctx)
	// The first statement takes the snapshot; the insert position read by it
	// is at or after the commit record of every transaction the snapshot sees.
	var pos string
	if err := tx.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&pos); err != nil {
		return d, 0, err
	}
	if err := tx.QueryRow(ctx, digestSQL(t)).Scan(&d.Rows, &d.Hash); err != nil {
		return d, 0, fmt.Errorf("digest %s: %w", t, err)
	}
	at, err := lsn.Parse(pos)
	return d, recordEnd(at), err
}

// walPageSize is PostgreSQL's XLOG_BLCKSZ (8 kB in every RDS and Aurora build).
const walPageSize = 8192

// recordEnd turns an insert position into the end of the last record: right
// after a page boundary the insert position has skipped the next page's
// header (24 bytes, 40 at a segment start), which no record ends in, so a
// slot would never confirm it until something else is written.
func recordEnd(pos lsn.LSN) lsn.LSN {
	if off := uint64(pos) % walPageSize; off > 0 && off <= 40 {
		return pos - lsn.LSN(off)
	}
	return pos
}

// Verdict of one table's comparison.
const (
	Equal      = "equal"      // same count and hash
	Different  = "different"  // the source held still, the target replayed past it, and they still differ
	Unverified = "unverified" // the source never held still long enough to compare
)

// TableComparison is one table's result.
type TableComparison struct {
	Table    string `json:"table"`
	Verdict  string `json:"verdict"`
	Source   Digest `json:"source"`
	Target   Digest `json:"target"`
	Attempts int    `json:"attempts"`
	Detail   string `json:"detail,omitempty"`
}

// CompareOptions tune CompareTable.
type CompareOptions struct {
	// Attempts is how many rounds a differing table gets (default 5).
	Attempts int
	// WaitReplayed blocks until the target has applied the source's changes
	// up to pos (for a subscription: the slot's confirmed_flush_lsn >= pos).
	WaitReplayed func(ctx context.Context, pos lsn.LSN) error
	// Pause between rounds when the source moved (default 1s).
	Pause time.Duration
}

// CompareTable compares a table on the source and the target honestly while
// the source is being written: a table that differs is compared again once
// the target has replayed past the source position read with the first
// digest. Only a difference that persists while the source holds still is
// Different; a table whose source never holds still is Unverified.
func CompareTable(ctx context.Context, src, tgt *pgx.Conn, t Table, opt CompareOptions) (TableComparison, error) {
	if opt.Attempts <= 0 {
		opt.Attempts = 5
	}
	if opt.Pause <= 0 {
		opt.Pause = time.Second
	}
	res := TableComparison{Table: t.String()}
	s1, pos, err := SourceDigest(ctx, src, t)
	if err != nil {
		return res, err
	}
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		if opt.WaitReplayed != nil {
			if err := opt.WaitReplayed(ctx, pos); err != nil {
				return res, fmt.Errorf("wait for the target to replay %s: %w", pos, err)
			}
		}
		tg, err := TableDigest(ctx, tgt, t)
		if err != nil {
			return res, err
		}
		res.Source, res.Target = s1, tg
		if tg == s1 {
			res.Verdict = Equal
			return res, nil
		}
		s2, pos2, err := SourceDigest(ctx, src, t)
		if err != nil {
			return res, err
		}
		if s2 == s1 && opt.WaitReplayed != nil {
			// The source held still across the round and the target replayed
			// past it: the difference is real.
			res.Verdict = Different
			res.Detail = fmt.Sprintf("source held still at %d rows; target has %d rows after replaying past %s", s1.Rows, tg.Rows, pos)
			return res, nil
		}
		if attempt >= opt.Attempts {
			res.Verdict = Unverified
			res.Detail = fmt.Sprintf("the source changed in each of %d rounds; not compared while still", attempt)
			if opt.WaitReplayed == nil {
				res.Verdict = Different
				res.Detail = "differs, and no replay position to wait for"
			}
			return res, nil
		}
		s1, pos = s2, pos2
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(opt.Pause):
		}
	}
}

// WaitSlotPast returns a WaitReplayed for a slot-driven target: it polls the
// source until the slot's confirmed_flush_lsn reaches pos.
func WaitSlotPast(src *pgx.Conn, slot string, timeout time.Duration) func(context.Context, lsn.LSN) error {
	return func(ctx context.Context, pos lsn.LSN) error {
		deadline := time.Now().Add(timeout)
		for {
			l, err := SlotLag(ctx, src, slot)
			if err != nil {
				return err
			}
			if l.ConfirmedFlush >= pos {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("slot %s confirmed_flush_lsn %s still before %s after %s", slot, l.ConfirmedFlush, pos, timeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}
