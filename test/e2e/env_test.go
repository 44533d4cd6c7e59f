package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/pgcluster"
	"github.com/seedrepl/seedrepl/test/localcloud"
	"github.com/seedrepl/seedrepl/test/sfnlocal"
)

// The package shares one local cloud and one source cluster (a registered
// RDS instance with a small schema and a light writer in waves). Every
// migration run uses its own migrationId, so the slot, publication,
// snapshot, clusters, instances and DMS resources never collide.

const (
	sourceID     = "e2e-source"
	sourceDB     = "app"
	replRoleName = "seedrepl_repl"
)

type world struct {
	srv      *localcloud.Server
	src      *pgcluster.Cluster
	adminARN string
	replARN  string
	engine   string // the source's engine version, e.g. "16.4"
	rds      *rds.Client
	dms      *dms.Client
	writer   *writer
	setupDur time.Duration

	closeOnce sync.Once
	closeErr  error
}

var (
	shared     *world
	sharedErr  error
	sharedOnce sync.Once
	// slots bounds the concurrent migration runs (each runs up to three
	// PostgreSQL servers of its own: snapshot restore, Aurora-like cluster,
	// temporary instance).
	slots chan struct{}
	// live is the shared world for the signal handler.
	live atomic.Pointer[world]
)

func concurrency() int {
	if v := os.Getenv("E2E_CONCURRENCY"); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err == nil && n > 0 {
			return n
		}
	}
	return 3
}

func TestMain(m *testing.M) {
	flag.Parse()
	// The runs wait on PostgreSQL and on the engine far more than they
	// compute: let more subtests be parallel than GOMAXPROCS (2 here) and
	// bound the real concurrency with slots (E2E_CONCURRENCY, default 3).
	explicit := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			explicit = true
		}
	})
	if !explicit {
		_ = flag.Set("test.parallel", "32")
	}
	slots = make(chan struct{}, concurrency())
	// Interrupted (Ctrl-C, a CI timeout's SIGTERM): remove every cluster
	// and backup anyway. A SIGKILL leaves them; the local cloud's and
	// pgcluster's sweep find them by their directory names in $TMPDIR.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "e2e: %v: removing the local cloud and the source\n", s)
		if w := live.Load(); w != nil {
			_ = w.close()
		}
		os.Exit(2)
	}()
	code := m.Run()
	signal.Stop(sig)
	if shared != nil {
		if err := shared.close(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: cleanup:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// env returns the shared world, built on first use. Missing node modules
// or PostgreSQL binaries fail the test: they never skip it.
func env(t *testing.T) *world {
	t.Helper()
	sharedOnce.Do(func() {
		start := time.Now()
		shared, sharedErr = setup()
		live.Store(shared)
		if shared != nil {
			shared.setupDur = time.Since(start)
		}
	})
	if sharedErr != nil {
		t.Fatalf("e2e environment: %v", sharedErr)
	}
	return shared
}

func setup() (w *world, err error) {
	if err := sfnlocal.CheckTools(); err != nil {
		return nil, err
	}
	if _, err := pgcluster.BinDir(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w = &world{}
	defer func() {
		if err != nil {
			_ = w.close()
			w = nil
		}
	}()
	var logger *slog.Logger
	if os.Getenv("E2E_CLOUD_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	w.srv, err = localcloud.New(localcloud.Options{Delays: localcloud.FastDelays(), Logger: logger})
	if err != nil {
		return w, fmt.Errorf("local cloud: %w", err)
	}
	w.src, err = pgcluster.Init(ctx, pgcluster.Options{Name: "e2e-source"})
	if err != nil {
		return w, fmt.Errorf("source cluster: %w", err)
	}
	replPass := randomHex(12)
	if err := createSource(ctx, w.src, replPass); err != nil {
		return w, err
	}
	w.adminARN = localcloud.SecretARN("seedrepl/e2e-source-admin")
	w.replARN = localcloud.SecretARN("seedrepl/e2e-source-replication")
	if err := w.srv.AddSourceInstance(ctx, sourceID, w.src, localcloud.SourceOptions{SecretARN: w.adminARN, DBName: sourceDB}); err != nil {
		return w, err
	}
	if _, err := w.srv.PutSecret(w.replARN, localcloud.RDSSecret{Username: replRoleName, Password: replPass, Engine: "postgres",
		Host: "127.0.0.1", Port: w.src.Port, DBName: sourceDB}); err != nil {
		return w, err
	}
	// The environment is process-wide: the handlers' config.LoadDefaultConfig
	// reads it in lambdamain.New.
	for _, kv := range append(w.srv.Env(),
		"SEEDREPL_SSLMODE=disable", // local clusters have no TLS
		"SEEDREPL_DMS_SECRETS_ROLE_ARN=arn:aws:iam::000000000000:role/seedrepl-dms-secrets-access",
		"SEEDREPL_TOPIC_ARN=",
		// A resource stuck in a passing state fails the run (and rolls it
		// back) instead of polling for the default 24 h.
		"SEEDREPL_POLL_TIMEOUT=90s") {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return w, err
	}
	w.rds, w.dms = rds.NewFromConfig(cfg), dms.NewFromConfig(cfg)
	out, err := w.rds.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(sourceID)})
	if err != nil {
		return w, fmt.Errorf("describe the source through the SDK: %w", err)
	}
	w.engine = aws.ToString(out.DBInstances[0].EngineVersion)
	if os.Getenv("E2E_WRITER") != "0" { // E2E_WRITER=0: an idle source
		w.writer, err = startWriter(w.src.DSN(sourceDB))
		if err != nil {
			return w, err
		}
	}
	return w, nil
}

func (w *world) close() error {
	w.closeOnce.Do(func() { w.closeErr = w.doClose() })
	return w.closeErr
}

func (w *world) doClose() error {
	var errs []error
	if w.writer != nil {
		w.writer.stop()
		if err := w.writer.err(); err != nil {
			errs = append(errs, fmt.Errorf("writer: %w", err))
		}
	}
	if w.srv != nil {
		if err := w.srv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("local cloud: %w", err))
		}
	}
	if w.src != nil {
		if err := w.src.Remove(); err != nil {
			errs = append(errs, fmt.Errorf("source cluster: %w", err))
		}
	}
	return errors.Join(errs...)
}

// sourceDSN reaches the source as its admin (local throwaway password).
func (w *world) sourceDSN() string { return w.src.DSN(sourceDB) }

// createSource makes the small source: a keyed table, a keyless one with
// REPLICA IDENTITY FULL (and duplicate rows), a table whose body is stored
// out of line (TOAST, uncompressed), a partitioned table, a few thousand
// rows, and the dedicated replication role.
func createSource(ctx context.Context, c *pgcluster.Cluster, replPass string) error {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{sourceDB}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		return err
	}
	conn, err = c.Connect(ctx, sourceDB)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL,
			updated_at timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO accounts SELECT i, 'owner-' || i, (i * 7 % 1000)::numeric, now() FROM generate_series(1, 3000) i`,
		`CREATE TABLE events (at timestamptz NOT NULL, kind text NOT NULL, payload jsonb)`,
		`ALTER TABLE events REPLICA IDENTITY FULL`,
		`INSERT INTO events SELECT timestamptz '2025-01-01' + i * interval '1 s', 'k' || (i % 5), jsonb_build_object('i', i)
			FROM generate_series(1, 1000) i`,
		`INSERT INTO events SELECT * FROM events ORDER BY at LIMIT 20`, // duplicate rows: a keyless table's hard case
		`CREATE TABLE docs (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL)`,
		`ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL`, // out of line, uncompressed: TOASTed
		`INSERT INTO docs SELECT i, 'doc ' || i, (SELECT string_agg(md5(i::text || '/' || g::text), '') FROM generate_series(1, 120) g)
			FROM generate_series(1, 200) i`,
		`CREATE TABLE measurements (id bigint NOT NULL, ts date NOT NULL, value double precision, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts)`,
		`CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
		`CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`,
		`INSERT INTO measurements SELECT i, date '2024-01-01' + (i % 700), i * 0.5 FROM generate_series(1, 2000) i`,
		`CREATE ROLE ` + replRoleName + ` LOGIN REPLICATION PASSWORD '` + replPass + `'`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ` + replRoleName,
		`ANALYZE`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("source schema: %s: %w", strings.Fields(q)[0]+" "+strings.Fields(q)[1]+" "+strings.Fields(q)[2], err)
		}
	}
	var toasted bool
	if err := conn.QueryRow(ctx, `SELECT pg_relation_size(reltoastrelid) > 0 FROM pg_class WHERE relname = 'docs'`).Scan(&toasted); err != nil {
		return err
	}
	if !toasted {
		return errors.New("source schema: docs.body is not stored in the TOAST table")
	}
	return nil
}

// writer is a small load on the source in waves (writing 300 ms, quiet
// 700 ms): inserts, updates and deletes on every table, TOASTed rows
// updated without touching their TOASTed column, duplicate rows in the
// keyless table, rows moved across partitions.
type writer struct {
	cancel  context.CancelFunc
	done    chan struct{}
	commits atomic.Int64
	mu      sync.Mutex
	e       error
}

func startWriter(dsn string) (*writer, error) {
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		cancel()
		return nil, err
	}
	w := &writer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer conn.Close(context.Background())
		next := int64(1_000_000)
		epoch := time.Now()
		for ctx.Err() == nil {
			if (time.Since(epoch) % (1700 * time.Millisecond)) >= 250*time.Millisecond {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			next++
			err := w.tx(ctx, conn, next)
			if err != nil && ctx.Err() == nil {
				w.mu.Lock()
				w.e = err
				w.mu.Unlock()
				return
			}
			w.commits.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return w, nil
}

func rnd(n int64) int64 {
	v, _ := rand.Int(rand.Reader, big.NewInt(n))
	return v.Int64() + 1
}

func (w *writer) tx(ctx context.Context, conn *pgx.Conn, next int64) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`UPDATE accounts SET balance = balance + 1, updated_at = now() WHERE id = $1`, rnd(3000))
		b.Queue(`INSERT INTO accounts (id, owner, balance) VALUES ($1, 'new', 0)`, next)
		b.Queue(`DELETE FROM accounts WHERE id = $1`, next-3)
		b.Queue(`UPDATE docs SET title = 'doc ' || id || ' v' || $2::bigint WHERE id = $1`, rnd(200), next)
		b.Queue(`INSERT INTO events VALUES (now(), 'w', jsonb_build_object('n', $1::bigint))`, next)
		b.Queue(`UPDATE events SET kind = 'u' WHERE ctid = (SELECT ctid FROM events WHERE kind = 'k1' LIMIT 1)`)
		b.Queue(`DELETE FROM events WHERE ctid = (SELECT ctid FROM events WHERE kind = 'w' ORDER BY at LIMIT 1)`)
		b.Queue(`INSERT INTO measurements VALUES ($1::bigint, date '2024-01-01' + ($1::bigint % 700)::int, 1)`, next)
		b.Queue(`UPDATE measurements SET value = value + 1 WHERE id = $1`, rnd(2000))
		// A cross-partition move: delete from one leaf, insert in the other.
		b.Queue(`UPDATE measurements SET ts = CASE WHEN ts < '2025-01-01' THEN ts + 365 ELSE ts - 365 END
			WHERE id = $1 AND ts + 365 < '2026-01-01' AND ts - 365 >= '2024-01-01'`, rnd(2000))
		return tx.SendBatch(ctx, b).Close()
	})
}

func (w *writer) stop() {
	w.cancel()
	<-w.done
}

func (w *writer) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.e
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
