package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/pgcluster"
	"github.com/seedrepl/seedrepl/internal/sample"
	"github.com/seedrepl/seedrepl/test/localcloud"
)

// daemonInfo is what the background process tells the rehearsal (daemon.json, mode 0600).
type daemonInfo struct {
	PID              int    `json:"pid"`
	URL              string `json:"url"`
	BaseDir          string `json:"baseDir"`
	SourceInstanceID string `json:"sourceInstanceId"`
	SourceDB         string `json:"sourceDatabase"`
	AdminSecretARN   string `json:"adminSecretArn"`
	ReplSecretARN    string `json:"replicationSecretArn"`
	Adopted          bool   `json:"adopted"`
	// SourceDSN reaches the source as its admin: the local throwaway
	// password of the sample, or the adopted source's own string. Local only.
	SourceDSN string `json:"sourceDsn"`
}

const (
	daemonFile   = "daemon.json"
	sampleDB     = "app"
	sampleID     = "sample-source"
	adoptedID    = "adopted-source"
	replRoleName = "seedrepl_repl"
)

func secretARN(name string) string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:seedrepl/%s-%s", localcloud.Region, localcloud.Account, name, "AbCdEf")
}

func readDaemon(dir string) (*daemonInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, daemonFile))
	if err != nil {
		return nil, err
	}
	var d daemonInfo
	return &d, json.Unmarshal(b, &d)
}

func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// serve is the background process: the local cloud, and the sample source
// (or the adopted one) registered in it, until SIGTERM. On SIGTERM it stops
// every applier and removes every cluster and backup it made.
func serve(cfg config) error {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	base, err := os.MkdirTemp("", "seedrepl-rehearsal-")
	if err != nil {
		return err
	}
	if err := os.Chmod(base, 0o755); err != nil {
		return err
	}
	srv, err := localcloud.New(localcloud.Options{BaseDir: filepath.Join(base, "cloud"), StateDir: cfg.Dir,
		Delays: cfg.Delays, Logger: logger})
	if err != nil {
		return err
	}
	var src *pgcluster.Cluster
	cleanup := func() {
		if err := srv.Close(); err != nil {
			logger.Error("close local cloud", "err", err)
		}
		if src != nil {
			if err := src.Remove(); err != nil {
				logger.Error("remove sample source", "err", err)
			}
		}
		_ = os.RemoveAll(base)
		_ = os.Remove(filepath.Join(cfg.Dir, daemonFile))
	}
	defer cleanup()

	info := daemonInfo{PID: os.Getpid(), URL: srv.URL(), BaseDir: base,
		AdminSecretARN: secretARN("source-admin"), ReplSecretARN: secretARN("source-replication")}
	setupCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if cfg.SourceDSN == "" {
		src, err = pgcluster.Init(setupCtx, pgcluster.Options{Name: "source", BaseDir: base})
		if err != nil {
			return err
		}
		if err := createSample(setupCtx, src, cfg.Scale); err != nil {
			return err
		}
		replPass := randomHex(12)
		conn, err := src.Connect(setupCtx, sampleDB)
		if err != nil {
			return err
		}
		// The dedicated replication role the subscription and DMS use.
		_, err = conn.Exec(setupCtx, fmt.Sprintf(`CREATE ROLE %s LOGIN REPLICATION PASSWORD '%s'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO %s`,
			replRoleName, replPass, replRoleName))
		conn.Close(setupCtx)
		if err != nil {
			return err
		}
		if err := srv.AddSourceInstance(setupCtx, sampleID, src, localcloud.SourceOptions{SecretARN: info.AdminSecretARN, DBName: sampleDB}); err != nil {
			return err
		}
		if _, err := srv.PutSecret(info.ReplSecretARN, localcloud.RDSSecret{Username: replRoleName, Password: replPass, Engine: "postgres",
			Host: "127.0.0.1", Port: src.Port, DBName: sampleDB}); err != nil {
			return err
		}
		info.SourceInstanceID, info.SourceDB, info.SourceDSN = sampleID, sampleDB, src.DSN(sampleDB)
	} else {
		ext, err := srv.AdoptSourceInstance(setupCtx, adoptedID, cfg.SourceDSN, localcloud.SourceOptions{SecretARN: info.AdminSecretARN})
		if err != nil {
			return err
		}
		// Locally the adopted source's user serves as the replication role too
		// (it needs REPLICATION); on AWS use a dedicated rds_replication role.
		if _, err := srv.PutSecret(info.ReplSecretARN, localcloud.RDSSecret{Username: ext.User, Password: ext.Password, Engine: "postgres",
			Host: ext.Host, Port: ext.Port, DBName: ext.Database}); err != nil {
			return err
		}
		info.SourceInstanceID, info.SourceDB, info.SourceDSN, info.Adopted = adoptedID, ext.Database, cfg.SourceDSN, true
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	tmp := filepath.Join(cfg.Dir, daemonFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(cfg.Dir, daemonFile)); err != nil {
		return err
	}
	logger.Info("rehearsal background ready", "url", info.URL, "source", info.SourceInstanceID)
	<-ctx.Done()
	logger.Info("stopping: removing every cluster and backup of the rehearsal")
	return nil
}

func createSample(ctx context.Context, c *pgcluster.Cluster, scale int) error {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{sampleDB}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		return err
	}
	return sample.Create(ctx, c, sampleDB, scale)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
