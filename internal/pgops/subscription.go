package pgops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lsn"
)

// PrepareTarget readies a freshly restored target before the subscription
// exists: it drops the subscriptions and replication slots the restore copied
// from the source (never the subscription named keep). It returns what it dropped.
func PrepareTarget(ctx context.Context, conn *pgx.Conn, keep string) ([]string, error) {
	var dropped []string
	rows, err := conn.Query(ctx, `SELECT subname::text FROM pg_subscription
		WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND subname <> $1 ORDER BY 1`, keep)
	if err != nil {
		return nil, err
	}
	subs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if err := detachAndDrop(ctx, conn, s); err != nil {
			return dropped, err
		}
		dropped = append(dropped, "subscription "+s)
	}
	rows, err = conn.Query(ctx, `SELECT slot_name::text FROM pg_replication_slots WHERE NOT active ORDER BY 1`)
	if err != nil {
		return dropped, err
	}
	slots, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return dropped, err
	}
	for _, s := range slots {
		if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, s); err != nil {
			return dropped, fmt.Errorf("drop copied slot %s: %w", s, err)
		}
		dropped = append(dropped, "slot "+s)
	}
	return dropped, nil
}

// SubscriptionSpec is the subscription to make on the target.
type SubscriptionSpec struct {
	Name        string
	Publication string
	Slot        string
	// Conninfo reaches the source as the replication role. It is a secret:
	// it is stored in the target's catalog and never logged or returned.
	Conninfo string
	Seed     lsn.LSN
}

// SubscriptionState is what EnsureSubscription found or did.
type SubscriptionState struct {
	Name       string  `json:"name"`
	OID        uint32  `json:"oid"`
	Origin     string  `json:"origin"`
	Created    bool    `json:"created"`
	Advanced   bool    `json:"advanced"`
	Enabled    bool    `json:"enabled"`
	OriginLSN  lsn.LSN `json:"originLsn"`
	WasEnabled bool    `json:"wasEnabled"` // it was already enabled: nothing was touched
}

// EnsureSubscription makes the seeded subscription: created disabled with
// copy_data = false and create_slot = false on the existing slot, its
// replication origin ('pg_' || oid) advanced to the seed, then enabled. An
// enabled subscription is never advanced; a disabled one whose origin has
// already moved past the seed (it has replicated) is never moved back.
// Running it again is a no-op.
func EnsureSubscription(ctx context.Context, conn *pgx.Conn, spec SubscriptionSpec) (SubscriptionState, error) {
	st := SubscriptionState{Name: spec.Name}
	if err := ValidateIdent("subscription", spec.Name); err != nil {
		return st, err
	}
	if err := ValidateIdent("publication", spec.Publication); err != nil {
		return st, err
	}
	if err := ValidateSlotName(spec.Slot); err != nil {
		return st, err
	}
	if spec.Seed == lsn.Invalid {
		return st, errors.New("seed LSN is 0/0: read it from the restored RDS copy first")
	}
	found, err := lookupSubscription(ctx, conn, &st)
	if err != nil {
		return st, err
	}
	if found && st.Enabled {
		st.WasEnabled = true
		return st, nil
	}
	if !found {
		connLit, err := quoteLiteral(conn.PgConn(), spec.Conninfo)
		if err != nil {
			return st, err
		}
		slotLit, err := quoteLiteral(conn.PgConn(), spec.Slot)
		if err != nil {
			return st, err
		}
		sql := "CREATE SUBSCRIPTION " + pgx.Identifier{spec.Name}.Sanitize() +
			" CONNECTION " + connLit +
			" PUBLICATION " + pgx.Identifier{spec.Publication}.Sanitize() +
			" WITH (copy_data = false, create_slot = false, enabled = false, slot_name = " + slotLit +
			", disable_on_error = true)"
		if _, err := conn.Exec(ctx, sql); err != nil {
			// The statement holds the connection string: report the error only.
			return st, fmt.Errorf("create subscription %s: %w", spec.Name, scrub(err, spec.Conninfo))
		}
		st.Created = true
		if _, err := lookupSubscription(ctx, conn, &st); err != nil {
			return st, err
		}
	}
	switch {
	case st.OriginLSN == lsn.Invalid:
		if _, err := conn.Exec(ctx, `SELECT pg_replication_origin_advance($1, $2::pg_lsn)`, st.Origin, spec.Seed.String()); err != nil {
			return st, fmt.Errorf("advance origin %s to %s: %w", st.Origin, spec.Seed, err)
		}
		st.Advanced = true
		st.OriginLSN = spec.Seed
	case st.OriginLSN != spec.Seed:
		return st, &ConflictError{Object: "subscription " + spec.Name,
			Reason: fmt.Sprintf("its origin %s is at %s, not at the seed %s: it has replicated before", st.Origin, st.OriginLSN, spec.Seed),
			Fix:    "never move an origin back; investigate why it was disabled (pg_stat_subscription_stats, the server log), or roll back and start over"}
	}
	if _, err := conn.Exec(ctx, "ALTER SUBSCRIPTION "+pgx.Identifier{spec.Name}.Sanitize()+" ENABLE"); err != nil {
		return st, fmt.Errorf("enable subscription %s: %w", spec.Name, err)
	}
	st.Enabled = true
	return st, nil
}

func scrub(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "[connection string]"))
}

func lookupSubscription(ctx context.Context, conn *pgx.Conn, st *SubscriptionState) (bool, error) {
	var origin *string
	err := conn.QueryRow(ctx, `SELECT s.oid, s.subenabled,
		(SELECT remote_lsn::text FROM pg_replication_origin_status os JOIN pg_replication_origin o ON o.roident = os.local_id
		  WHERE o.roname = 'pg_' || s.oid)
		FROM pg_subscription s WHERE s.subname = $1
		  AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, st.Name).
		Scan(&st.OID, &st.Enabled, &origin)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up subscription %s: %w", st.Name, err)
	}
	st.Origin = fmt.Sprintf("pg_%d", st.OID)
	st.OriginLSN = 0
	if origin != nil {
		if st.OriginLSN, err = lsn.Parse(*origin); err != nil {
			return true, err
		}
	}
	return true, nil
}

// SubscriptionStatus is the target's view of a subscription.
type SubscriptionStatus struct {
	Exists         bool    `json:"exists"`
	Enabled        bool    `json:"enabled"`
	WorkerRunning  bool    `json:"workerRunning"`
	LastMsgReceipt *string `json:"lastMsgReceipt,omitempty"` // RFC 3339
	OriginLSN      lsn.LSN `json:"originLsn"`
	ApplyErrors    int64   `json:"applyErrors"`
}

// GetSubscriptionStatus reads pg_subscription, pg_stat_subscription and the origin.
func GetSubscriptionStatus(ctx context.Context, conn *pgx.Conn, name string) (SubscriptionStatus, error) {
	var out SubscriptionStatus
	st := SubscriptionState{Name: name}
	found, err := lookupSubscription(ctx, conn, &st)
	if err != nil || !found {
		return out, err
	}
	out.Exists, out.Enabled, out.OriginLSN = true, st.Enabled, st.OriginLSN
	err = conn.QueryRow(ctx, `SELECT count(pid) > 0, to_char(max(last_msg_receipt_time) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
		coalesce((SELECT apply_error_count FROM pg_stat_subscription_stats WHERE subid = $1), 0)
		FROM pg_stat_subscription WHERE subid = $1`, st.OID).Scan(&out.WorkerRunning, &out.LastMsgReceipt, &out.ApplyErrors)
	return out, err
}

// DropSubscription removes the subscription from the target without touching
// the source: it disables it, detaches it from its slot (slot_name = NONE)
// and drops it. The source slot is dropped separately by DropOwnedSlot, so
// this works even when the target cannot reach the source. Missing: no-op.
func DropSubscription(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	st := SubscriptionState{Name: name}
	found, err := lookupSubscription(ctx, conn, &st)
	if err != nil || !found {
		return false, err
	}
	return true, detachAndDrop(ctx, conn, name)
}

// DetachSubscription disables the subscription and sets slot_name = NONE,
// keeping it (and the target's data) for inspection.
func DetachSubscription(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	st := SubscriptionState{Name: name}
	found, err := lookupSubscription(ctx, conn, &st)
	if err != nil || !found {
		return false, err
	}
	id := pgx.Identifier{name}.Sanitize()
	for _, s := range []string{"ALTER SUBSCRIPTION " + id + " DISABLE", "ALTER SUBSCRIPTION " + id + " SET (slot_name = NONE)"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return true, fmt.Errorf("%s: %w", s, err)
		}
	}
	return true, nil
}

func detachAndDrop(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := DetachSubscription(ctx, conn, name); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "DROP SUBSCRIPTION IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("drop subscription %s: %w", name, err)
	}
	return nil
}
