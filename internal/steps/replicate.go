package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/seedrepl/seedrepl/internal/lsn"
	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sferr"
)

// ReadSeedLSN reads the seed on the temporary RDS copy:
// rds_tools.logical_seed_lsn(). Never on Aurora: its LSNs are its own.
func (s *Steps) ReadSeedLSN(ctx context.Context, st State) (*SeedResult, error) {
	log := s.logger(&st, "ReadSeedLSN")
	conn, err := s.connectTemp(ctx, st.Input)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	seed, err := pgops.ReadSeedLSN(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("read the seed on %s: %w", NamesFor(st.Input).TempInstance, err)
	}
	if seed == lsn.Invalid {
		return nil, sferr.NewSeedProofFailed(errors.New("rds_tools.logical_seed_lsn() returned 0/0"))
	}
	log.Info("seed read", "seed", seed.String())
	return &SeedResult{LSN: seed, InstanceID: NamesFor(st.Input).TempInstance, At: s.stamp()}, nil
}

// ProveSeed proves on the source that the seed fits the slot:
// confirmed_flush_lsn <= seed <= pg_current_wal_lsn(), slot inactive, WAL
// not lost. Aurora's own start LSN is recorded when the target exposes it,
// to show it is not the seed.
func (s *Steps) ProveSeed(ctx context.Context, st State) (*ProofResult, error) {
	log := s.logger(&st, "ProveSeed")
	if st.Seed == nil || st.Seed.LSN == lsn.Invalid {
		return nil, sferr.NewSeedProofFailed(errors.New("no seed LSN in $.seed: ReadSeedLSN did not run"))
	}
	n := NamesFor(st.Input)
	res := &ProofResult{}
	if tgt, err := s.connectTarget(ctx, st.Input); err == nil {
		if own, err := pgops.AuroraStartLSN(ctx, tgt); err == nil {
			res.AuroraStartLSN = own.String()
			if own == st.Seed.LSN {
				_ = tgt.Close(context.WithoutCancel(ctx))
				return nil, sferr.NewSeedProofFailed(fmt.Errorf("the seed %s equals Aurora's own aurora_volume_logical_start_lsn(): it was read from the wrong copy", own))
			}
		}
		_ = tgt.Close(context.WithoutCancel(ctx))
	}
	conn, err := s.connectSource(ctx, st.Input)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	proof, err := pgops.ProveSeed(ctx, conn, n.Slot, st.Seed.LSN)
	if err != nil {
		log.Error("seed proof failed", "seed", st.Seed.LSN.String(), "error", err.Error())
		return nil, err
	}
	res.Proved, res.Proof, res.At = true, *proof, s.stamp()
	log.Info("seed proved", "seed", proof.Seed.String(), "confirmedFlush", proof.ConfirmedFlush.String(), "current", proof.Current.String())
	return res, nil
}

// ConfigureSubscription readies the target (drops the subscriptions and
// slots the restore copied, and the copied publication of this migration),
// then creates the seeded subscription: disabled, origin advanced to the
// seed, enabled. Its CONNECTION uses the dedicated replication role's
// secret, never the master user: it is stored in Aurora's catalog.
func (s *Steps) ConfigureSubscription(ctx context.Context, st State) (*ReplicationResult, error) {
	log := s.logger(&st, "ConfigureSubscription")
	in := st.Input
	n := NamesFor(in)
	if st.Proof == nil || !st.Proof.Proved || st.Seed == nil {
		return nil, sferr.NewSeedProofFailed(errors.New("the seed is not proven ($.proof): refusing to enable a subscription"))
	}
	srcEP, _, err := s.instanceEndpoint(ctx, in.Source.InstanceID)
	if err != nil {
		return nil, err
	}
	repl, err := s.secret(ctx, in.Source.ReplicationSecretARN)
	if err != nil {
		return nil, err
	}
	tgt, err := s.connectTarget(ctx, in)
	if err != nil {
		return nil, err
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	dropped, err := pgops.PrepareTarget(ctx, tgt, n.Subscription)
	if err != nil {
		return nil, fmt.Errorf("prepare target: %w", err)
	}
	if ok, err := pgops.DropOwnedPublication(ctx, tgt, n.Publication, in.MigrationID); err != nil {
		var no *pgops.NotOwnedError
		if !errors.As(err, &no) {
			return nil, fmt.Errorf("drop the copied publication on the target: %w", err)
		}
	} else if ok {
		dropped = append(dropped, "publication "+n.Publication+" (copied from the source)")
	}
	sslmode := ""
	if in.Subscription != nil {
		sslmode = in.Subscription.SSLMode
	}
	state, err := pgops.EnsureSubscription(ctx, tgt, pgops.SubscriptionSpec{
		Name: n.Subscription, Publication: n.Publication, Slot: n.Slot,
		Conninfo: subscriptionConninfo(srcEP, repl, in.Source.Database, sslmode),
		Seed:     st.Seed.LSN,
	})
	if err != nil {
		return nil, fmt.Errorf("subscription %s: %w", n.Subscription, err)
	}
	log.Info("subscription enabled", "subscription", n.Subscription, "created", state.Created, "advanced", state.Advanced,
		"origin", state.Origin, "seed", st.Seed.LSN.String(), "replicationUser", repl.Username)
	now := s.stamp()
	return &ReplicationResult{Mode: ModeSubscription, Subscription: &state, PreparedTarget: dropped, Seed: st.Seed.LSN,
		Status: "enabled", Ready: true, StartedAt: now, FinishedAt: now}, nil
}

// VerifyLag reads the slot's lag on the source (and, for a subscription,
// its state on the target). Ready when the lag is at most maxLagBytes and a
// consumer is attached.
func (s *Steps) VerifyLag(ctx context.Context, st State) (*LagResult, error) {
	log := s.logger(&st, "VerifyLag")
	in := st.Input
	n := NamesFor(in)
	res := &LagResult{MaxLagBytes: in.Verify.MaxLagBytes, At: s.stamp()}
	if in.Mode == ModeSubscription {
		tgt, err := s.connectTarget(ctx, in)
		if err != nil {
			return nil, err
		}
		sub, err := pgops.GetSubscriptionStatus(ctx, tgt, n.Subscription)
		_ = tgt.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, fmt.Errorf("subscription status: %w", err)
		}
		res.Subscription = &sub
		switch {
		case !sub.Exists:
			return nil, sferr.ResourceFailedf("subscription %s does not exist on the target", n.Subscription)
		case !sub.Enabled:
			return nil, sferr.ResourceFailedf("subscription %s is disabled (disable_on_error: an apply error, %d so far); see pg_stat_subscription_stats and the target's log",
				n.Subscription, sub.ApplyErrors)
		}
	}
	src, err := s.connectSource(ctx, in)
	if err != nil {
		return nil, err
	}
	defer src.Close(context.WithoutCancel(ctx))
	lag, err := pgops.SlotLag(ctx, src, n.Slot)
	if err != nil {
		return nil, err
	}
	if lag.WALStatus == "lost" {
		return nil, sferr.ResourceFailedf("slot %s lost its WAL (wal_status = lost): start over with a new migration", n.Slot)
	}
	res.Lag, res.LagBytes = lag, lag.Bytes
	res.Ready = lag.Bytes <= in.Verify.MaxLagBytes && lag.Active
	res.Attempt = 1
	res.StartedAt = res.At
	if st.Lag != nil {
		res.Attempt = st.Lag.Attempt + 1
		if st.Lag.StartedAt != "" {
			res.StartedAt = st.Lag.StartedAt
		}
	}
	if !res.Ready {
		if t, err := time.Parse(time.RFC3339, res.StartedAt); err == nil {
			if err := s.pollExpired("slot "+n.Slot, fmt.Sprintf("%d bytes behind (active %t)", lag.Bytes, lag.Active), s.now().Sub(t)); err != nil {
				return nil, err
			}
		}
		res.WaitSeconds = lagWait(st.Lag, res, s.now())
	}
	log.Info("lag", "bytes", lag.Bytes, "max", in.Verify.MaxLagBytes, "active", lag.Active, "ready", res.Ready, "waitSeconds", res.WaitSeconds)
	return res, nil
}

// lagWait estimates the time to catch up from the lag's trend: a third of
// it, in [MinWait, 120 s]; 30 s without a trend (first poll, or the lag grows).
func lagWait(prev, cur *LagResult, now time.Time) int {
	if prev == nil || prev.At == "" {
		return 30
	}
	t0, err := time.Parse(time.RFC3339, prev.At)
	dt := now.Sub(t0).Seconds()
	if err != nil || dt <= 0 {
		return 30
	}
	rate := float64(prev.LagBytes-cur.LagBytes) / dt // bytes/s caught up
	if rate <= 0 {
		return 60
	}
	excess := float64(cur.LagBytes - cur.MaxLagBytes)
	if excess <= 0 {
		return MinWait // caught up, waiting for a consumer to attach
	}
	w := excess / rate / 3
	if w > 120 {
		w = 120
	}
	return clampWait(w)
}

// scopeTables lists the tables to compare: the scope's, or the publication's
// (schemas), or the source's tables in those schemas (DMS).
func scopeTables(ctx context.Context, st State, src pgxConn) ([]pgops.Table, error) {
	in := st.Input
	if len(in.Scope.Tables) > 0 {
		var out []pgops.Table
		for _, t := range in.Scope.Tables {
			tb, err := pgops.ParseTable(t)
			if err != nil {
				return nil, sferr.NewInvalidInput(err)
			}
			out = append(out, tb)
		}
		return out, nil
	}
	rows, err := src.Query(ctx, `SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence = 'p' ORDER BY 1, 2`, in.Scope.Schemas)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pgops.Table
	for rows.Next() {
		var t pgops.Table
		if err := rows.Scan(&t.Schema, &t.Name); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Validate compares every table in scope, honestly under writes: a table
// differs only if the difference persists while the source holds still and
// the target has replayed past it. Different → ValidationFailed; Unverified
// is reported as such, never as equal.
func (s *Steps) Validate(ctx context.Context, st State) (*ValidationResult, error) {
	log := s.logger(&st, "Validate")
	in := st.Input
	n := NamesFor(in)
	res := &ValidationResult{StartedAt: s.stamp(), Tables: []pgops.TableComparison{}}
	src, err := s.connectSource(ctx, in)
	if err != nil {
		return nil, err
	}
	defer src.Close(context.WithoutCancel(ctx))
	tgt, err := s.connectTarget(ctx, in)
	if err != nil {
		return nil, err
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	// The slot is read on its own connection: the comparison's source
	// connection holds a snapshot transaction.
	slotConn, err := s.connectSource(ctx, in)
	if err != nil {
		return nil, err
	}
	defer slotConn.Close(context.WithoutCancel(ctx))
	tables, err := scopeTables(ctx, st, src)
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(in.Verify.ReplayTimeoutSeconds) * time.Second
	if timeout == 0 {
		timeout = 120 * time.Second
	}
	opt := pgops.CompareOptions{Attempts: in.Verify.CompareAttempts, WaitReplayed: pgops.WaitSlotPast(slotConn, n.Slot, timeout)}
	var diffs []string
	for _, t := range tables {
		c, err := pgops.CompareTable(ctx, src, tgt, t, opt)
		if err != nil {
			return nil, fmt.Errorf("compare %s: %w", t, err)
		}
		res.Tables = append(res.Tables, c)
		switch c.Verdict {
		case pgops.Equal:
			res.Equal++
		case pgops.Different:
			res.Different++
			diffs = append(diffs, fmt.Sprintf("%s (source %d rows, target %d rows: %s)", c.Table, c.Source.Rows, c.Target.Rows, c.Detail))
		default:
			res.Unverified++
		}
		log.Info("table compared", "table", c.Table, "verdict", c.Verdict, "attempts", c.Attempts, "sourceRows", c.Source.Rows, "targetRows", c.Target.Rows)
	}
	res.FinishedAt = s.stamp()
	res.OK = res.Different == 0
	if !res.OK {
		return nil, sferr.ValidationFailedf("%d of %d tables differ between source and target: %s", res.Different, len(tables), strings.Join(diffs, "; "))
	}
	return res, nil
}
