package localcloud

// The DMS CDC applier: what a running CDC task does. It connects to the
// source with the replication protocol (replication=database), runs
// START_REPLICATION SLOT <slot> LOGICAL <start> with test_decoding's options
// (include-xids, skip-empty-xacts), parses each message (testdecoding.go),
// and applies each transaction atomically on the target (applysql.go). It
// sends standby status updates whose flush position is the end of the last
// applied commit (or, when no transaction is open, the server's reported
// send position), so the slot's confirmed_flush_lsn advances. It reconnects
// after connection errors and resumes after the last applied commit; an
// error in the data (a key conflict on INSERT, a missing table, unparsable
// output) fails the task, as a wrong seed must be loud.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/seedrepl/seedrepl/internal/lsn"
)

// connInfo is where an endpoint points.
type connInfo struct {
	Host, User, Password, DB, SSLMode string
	Port                              int
}

func (c connInfo) dsn() string {
	u := url.UserPassword(c.User, c.Password)
	ssl := c.SSLMode
	switch ssl {
	case "", "none":
		ssl = "disable"
	}
	return (&url.URL{Scheme: "postgres", User: u, Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), Path: "/" + c.DB,
		RawQuery: "sslmode=" + url.QueryEscape(ssl)}).String()
}

type applierConfig struct {
	Source, Target connInfo
	Slot           string
	Start          lsn.LSN
	Mappings       *TableMappings
	Log            *slog.Logger
	StatusInterval time.Duration
}

// TableCounters are per-table change counts: what was captured from the
// source and what was applied on the target (DescribeTableStatistics).
type TableCounters struct {
	Inserts, Updates, Deletes, Ddls                             int64
	AppliedInserts, AppliedUpdates, AppliedDeletes, AppliedDdls int64
	LastUpdate                                                  time.Time
}

// TaskCounters summarise a task's applier.
type TaskCounters struct {
	Transactions int64                       // committed on the target
	Skipped      int64                       // changes DMS drops (UPDATE/DELETE on keyless tables)
	NoRowChanged int64                       // UPDATE/DELETE that matched no row on the target
	AppliedLSN   lsn.LSN                     // end of the last applied commit
	FlushedLSN   lsn.LSN                     // last flush position reported to the source
	Reconnects   int64                       // sessions after the first
	LastError    string                      // last transient error
	Tables       map[TableName]TableCounters // by table
}

type applier struct {
	cfg    applierConfig
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	started  bool
	failed   error
	counters TaskCounters
	pkCache  map[TableName][]string
}

func startApplier(cfg applierConfig) *applier {
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &applier{cfg: cfg, cancel: cancel, done: make(chan struct{}),
		counters: TaskCounters{Tables: map[TableName]TableCounters{}}}
	go a.run(ctx)
	return a
}

// stop ends the applier (after a last status update) and waits for it.
func (a *applier) stop() {
	a.cancel()
	<-a.done
}

func (a *applier) snapshot() (started bool, failed error, c TaskCounters) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c = a.counters
	c.Tables = make(map[TableName]TableCounters, len(a.counters.Tables))
	for k, v := range a.counters.Tables {
		c.Tables[k] = v
	}
	return a.started, a.failed, c
}

// permanentError fails the task instead of reconnecting.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

func isPermanent(err error) bool {
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "55006", "57P01", "57P02", "57P03", "53300", "40001", "40P01":
			return false // slot busy, shutdown, too many connections, serialization: retry
		}
		switch pgErr.Code[:2] {
		case "08":
			return false
		}
		return true // undefined slot, bad option, auth, data errors, missing table, …
	}
	return false
}

// classify marks server-side errors that retrying cannot fix as permanent;
// connection errors stay transient.
func classify(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && isPermanent(err) {
		return permanent(err)
	}
	return err
}

var slotNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (a *applier) run(ctx context.Context) {
	defer close(a.done)
	log := a.cfg.Log
	if !slotNameRE.MatchString(a.cfg.Slot) {
		a.fail(fmt.Errorf("slot name %q is not a valid replication slot name", a.cfg.Slot))
		return
	}
	backoff := 200 * time.Millisecond
	failedConnects := 0
	for sessions := 0; ctx.Err() == nil; sessions++ {
		if sessions > 0 {
			a.mu.Lock()
			a.counters.Reconnects++
			a.mu.Unlock()
		}
		err := a.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if isPermanent(err) {
			log.Error("applier failed", "error", err)
			a.fail(err)
			return
		}
		// Like DMS, a task whose endpoint cannot be reached fails after a
		// bounded number of attempts instead of "starting" forever.
		a.mu.Lock()
		started := a.started
		a.mu.Unlock()
		if !started {
			if failedConnects++; failedConnects >= maxConnectAttempts {
				err = fmt.Errorf("could not connect after %d attempts: %w", failedConnects, err)
				log.Error("applier failed", "error", err)
				a.fail(err)
				return
			}
		} else {
			failedConnects = 0
		}
		log.Warn("applier session ended; reconnecting", "error", err, "backoff", backoff.String())
		a.mu.Lock()
		a.counters.LastError = err.Error()
		a.mu.Unlock()
		if !sleepCtx(ctx, backoff) {
			return
		}
		if backoff *= 2; backoff > 5*time.Second {
			backoff = 5 * time.Second
		}
	}
}

// maxConnectAttempts bounds the sessions a task that never started may try.
const maxConnectAttempts = 6

func (a *applier) fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failed = err
}

type pendingTx struct {
	xid     uint32
	changes []Record
}

func (a *applier) session(ctx context.Context) error {
	srcCfg, err := pgconn.ParseConfig(a.cfg.Source.dsn())
	if err != nil {
		return permanent(err)
	}
	srcCfg.RuntimeParams["replication"] = "database"
	srcCfg.RuntimeParams["application_name"] = "localcloud-dms"
	src, err := pgconn.ConnectConfig(ctx, srcCfg)
	if err != nil {
		return fmt.Errorf("connect to source: %w", err)
	}
	defer src.Close(context.Background())
	tgt, err := pgx.Connect(ctx, a.cfg.Target.dsn())
	if err != nil {
		return fmt.Errorf("connect to target: %w", err)
	}
	defer tgt.Close(context.Background())
	// As DMS does on a PostgreSQL target: no triggers or FK checks on apply
	// (needs superuser or rds_superuser; without it, apply in order anyway).
	if _, err := tgt.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		a.cfg.Log.Info("target: session_replication_role not set", "error", err)
	}

	a.mu.Lock()
	start := a.cfg.Start
	if a.counters.AppliedLSN > start {
		start = a.counters.AppliedLSN
	}
	a.mu.Unlock()
	err = pglogrepl.StartReplication(ctx, src, a.cfg.Slot, pglogrepl.LSN(start), pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{`"include-xids" '1'`, `"skip-empty-xacts" '1'`},
	})
	if err != nil {
		return fmt.Errorf("START_REPLICATION SLOT %s LOGICAL %s: %w", a.cfg.Slot, start, err)
	}
	a.mu.Lock()
	a.started = true
	a.mu.Unlock()
	a.cfg.Log.Info("applier streaming", "slot", a.cfg.Slot, "start", start.String())

	var tx *pendingTx
	var idleEnd lsn.LSN // server's send position seen with no transaction open
	flushPos := func() lsn.LSN {
		a.mu.Lock()
		defer a.mu.Unlock()
		p := a.counters.AppliedLSN
		if tx == nil && idleEnd > p {
			p = idleEnd
		}
		return p
	}
	sendStatus := func(c context.Context) error {
		p := flushPos()
		err := pglogrepl.SendStandbyStatusUpdate(c, src, pglogrepl.StandbyStatusUpdate{
			WALWritePosition: pglogrepl.LSN(p), WALFlushPosition: pglogrepl.LSN(p), WALApplyPosition: pglogrepl.LSN(p)})
		if err == nil {
			a.mu.Lock()
			if p > a.counters.FlushedLSN {
				a.counters.FlushedLSN = p
			}
			a.mu.Unlock()
		}
		return err
	}
	next := time.Now().Add(a.cfg.StatusInterval)
	for {
		if !time.Now().Before(next) {
			if err := sendStatus(ctx); err != nil {
				return fmt.Errorf("standby status update: %w", err)
			}
			next = time.Now().Add(a.cfg.StatusInterval)
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		msg, err := src.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				// Stopping: report what is applied, then leave.
				fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Second)
				if !src.IsClosed() {
					_ = sendStatus(fctx)
				}
				fcancel()
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return permanent(err)
				}
				if tx == nil {
					idleEnd = lsn.LSN(pkm.ServerWALEnd)
				}
				if pkm.ReplyRequested {
					next = time.Time{}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return permanent(err)
				}
				rec, err := ParseTestDecoding(string(xld.WALData))
				if err != nil {
					return permanent(err)
				}
				switch rec.Kind {
				case KindBegin:
					if tx != nil {
						return permanent(fmt.Errorf("BEGIN %d inside transaction %d", rec.XID, tx.xid))
					}
					tx = &pendingTx{xid: rec.XID}
				case KindCommit:
					if tx == nil {
						return permanent(fmt.Errorf("COMMIT %d without BEGIN", rec.XID))
					}
					// For a COMMIT message the walsender sends the end of the
					// commit record as the message's WAL start.
					end := lsn.LSN(xld.WALStart)
					if err := a.commit(ctx, tgt, tx, end); err != nil {
						return err
					}
					tx = nil
				case KindMessage:
				default:
					if tx == nil {
						return permanent(fmt.Errorf("change outside a transaction: %s", rec.Kind))
					}
					tx.changes = append(tx.changes, rec)
				}
			}
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.CopyDone:
			return errors.New("source ended the replication stream")
		}
	}
}

// commit applies one transaction on the target in one transaction.
func (a *applier) commit(ctx context.Context, tgt *pgx.Conn, tx *pendingTx, end lsn.LSN) error {
	a.mu.Lock()
	already := end <= a.counters.AppliedLSN
	a.mu.Unlock()
	if already {
		return nil // replayed after a reconnect: it is on the target
	}
	type delta struct {
		table                TableName
		ins, upd, del, ddl   int64
		aIns, aUpd, aDel, aD int64
	}
	var deltas []delta
	var skipped, noRow int64
	err := pgx.BeginFunc(ctx, tgt, func(t pgx.Tx) error {
		for _, rec := range tx.changes {
			if rec.Kind == KindTruncate {
				var sel []TableName
				for _, tn := range rec.Tables {
					if a.cfg.Mappings.Selected(tn) {
						sel = append(sel, tn)
						deltas = append(deltas, delta{table: tn, ddl: 1, aD: 1})
					}
				}
				if len(sel) > 0 {
					st := BuildTruncate(rec, sel)
					if _, err := t.Exec(ctx, st.SQL); err != nil {
						return classify(fmt.Errorf("apply %s: %w", st.SQL, err))
					}
				}
				continue
			}
			if !a.cfg.Mappings.Selected(rec.Table) {
				continue
			}
			pk, err := a.primaryKey(ctx, t, rec.Table)
			if err != nil {
				return err
			}
			d := delta{table: rec.Table}
			switch rec.Kind {
			case KindInsert:
				d.ins = 1
			case KindUpdate:
				d.upd = 1
			case KindDelete:
				d.del = 1
			}
			dec, err := BuildApply(rec, pk)
			if err != nil {
				return permanent(err)
			}
			if dec.Skipped {
				skipped++
				deltas = append(deltas, d)
				continue
			}
			tag, err := t.Exec(ctx, dec.Stmt.SQL, dec.Stmt.Args...)
			if err != nil {
				return classify(fmt.Errorf("apply %s on %s (transaction %d): %w", rec.Kind, rec.Table, tx.xid, err))
			}
			if tag.RowsAffected() == 0 && rec.Kind != KindInsert {
				noRow++ // DMS logs these in awsdms_apply_exceptions and goes on
			}
			d.aIns, d.aUpd, d.aDel = d.ins, d.upd, d.del
			deltas = append(deltas, d)
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var p *permanentError
		if errors.As(err, &p) {
			return err
		}
		return fmt.Errorf("apply transaction %d: %w", tx.xid, err)
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.counters.AppliedLSN = end
	a.counters.Transactions++
	a.counters.Skipped += skipped
	a.counters.NoRowChanged += noRow
	for _, d := range deltas {
		c := a.counters.Tables[d.table]
		c.Inserts += d.ins
		c.Updates += d.upd
		c.Deletes += d.del
		c.Ddls += d.ddl
		c.AppliedInserts += d.aIns
		c.AppliedUpdates += d.aUpd
		c.AppliedDeletes += d.aDel
		c.AppliedDdls += d.aD
		c.LastUpdate = now
		a.counters.Tables[d.table] = c
	}
	return nil
}

// primaryKey reads the target table's primary key columns (nil: none), cached.
func (a *applier) primaryKey(ctx context.Context, t pgx.Tx, tn TableName) ([]string, error) {
	a.mu.Lock()
	pk, ok := a.pkCache[tn]
	a.mu.Unlock()
	if ok {
		return pk, nil
	}
	rows, err := t.Query(ctx, `SELECT a.attname
		FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = $1::regclass AND i.indisprimary
		ORDER BY array_position(i.indkey::int2[], a.attnum)`, pgx.Identifier{tn.Schema, tn.Table}.Sanitize())
	if err != nil {
		return nil, classify(fmt.Errorf("target table %s: %w", tn, err))
	}
	pk, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, classify(fmt.Errorf("target table %s: %w", tn, err))
	}
	a.mu.Lock()
	if a.pkCache == nil {
		a.pkCache = map[TableName][]string{}
	}
	a.pkCache[tn] = pk
	a.mu.Unlock()
	return pk, nil
}
