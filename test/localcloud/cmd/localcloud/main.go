// Command localcloud serves the local stand-in for AWS (RDS, DMS, Secrets
// Manager) on 127.0.0.1 until SIGTERM or SIGINT, then removes every cluster
// and backup it made. The rehearsal runs it as a separate process so that,
// with KEEP=1, the target and its replication outlive the rehearsal command.
//
//	localcloud [-state-dir .rehearsal] [-addr 127.0.0.1:0] [-delays rehearsal|fast]
//	           [-adopt ID=postgres://user:pw@127.0.0.1:PORT/db]... [-sample ID]...
//	           [-secret NAME_OR_ARN=JSON]...
//	localcloud sweep [-state-dir .rehearsal]
//
// When ready it writes <state-dir>/localcloud.json with "ready": true, the
// URL, its pid, every directory it made, and in "info" the secret ARN of
// each registered source; it also prints that info as one JSON line.
// `localcloud sweep` stops a running server (SIGTERM) or, if it was killed,
// stops and removes the clusters it recorded.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/seedrepl/seedrepl/internal/pgcluster"
	"github.com/seedrepl/seedrepl/test/localcloud"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sweep" {
		fs := flag.NewFlagSet("sweep", flag.ExitOnError)
		stateDir := fs.String("state-dir", ".rehearsal", "the state directory of the server to sweep")
		_ = fs.Parse(os.Args[2:])
		if err := localcloud.Sweep(*stateDir); err != nil {
			fmt.Fprintln(os.Stderr, "localcloud sweep:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "localcloud:", err)
		os.Exit(1)
	}
}

func run() error {
	var adopt, sample, secrets multi
	addr := flag.String("addr", "127.0.0.1:0", "listen address (127.0.0.1 only)")
	stateDir := flag.String("state-dir", ".rehearsal", "where localcloud.json is written")
	baseDir := flag.String("base-dir", "", "where clusters and backups live (default: a new temporary directory)")
	delays := flag.String("delays", "rehearsal", "status delays: rehearsal or fast")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Var(&adopt, "adopt", "ID=CONNSTRING: register a running cluster as the source instance ID (repeatable)")
	flag.Var(&sample, "sample", "ID: make a sample source cluster (removed on exit) and register it as instance ID (repeatable)")
	flag.Var(&secrets, "secret", "NAME_OR_ARN=JSON: register a secret (repeatable)")
	flag.Parse()
	if !strings.HasPrefix(*addr, "127.0.0.1:") {
		return fmt.Errorf("-addr %s: the local cloud listens on 127.0.0.1 only", *addr)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	d := localcloud.RehearsalDelays()
	switch *delays {
	case "rehearsal":
	case "fast":
		d = localcloud.FastDelays()
	default:
		return fmt.Errorf("-delays %q: want rehearsal or fast", *delays)
	}
	srv, err := localcloud.New(localcloud.Options{Addr: *addr, BaseDir: *baseDir, StateDir: *stateDir, Delays: d, Logger: log})
	if err != nil {
		return err
	}
	var made []*pgcluster.Cluster
	shutdown := func() error {
		// Sample sources live in the base dir, which Close deletes: stop them first.
		var err error
		for _, c := range made {
			if rerr := c.Remove(); rerr != nil && err == nil {
				err = rerr
			}
		}
		if cerr := srv.Close(); cerr != nil && err == nil {
			err = cerr
		}
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	info := map[string]any{"url": srv.URL(), "pid": os.Getpid(), "env": srv.Env()}
	sources := map[string]any{}
	setup := func() error {
		for _, kv := range secrets {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || !json.Valid([]byte(value)) {
				return fmt.Errorf("-secret %q: want NAME_OR_ARN=JSON", kv)
			}
			arn, err := srv.PutSecret(name, value)
			if err != nil {
				return err
			}
			sources["secret:"+name] = arn
		}
		for _, kv := range adopt {
			id, conn, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("-adopt %q: want ID=CONNSTRING", kv)
			}
			arn := localcloud.SecretARN("seedrepl/" + id)
			if _, err := srv.AdoptSourceInstance(ctx, id, conn, localcloud.SourceOptions{SecretARN: arn}); err != nil {
				return fmt.Errorf("adopt %s: %w", id, err)
			}
			sources[id] = map[string]string{"secretArn": arn}
		}
		for _, id := range sample {
			c, err := pgcluster.Init(ctx, pgcluster.Options{Name: "sample", BaseDir: srv.BaseDir()})
			if err != nil {
				return err
			}
			made = append(made, c)
			arn := localcloud.SecretARN("seedrepl/" + id)
			if err := srv.AddSourceInstance(ctx, id, c, localcloud.SourceOptions{SecretARN: arn}); err != nil {
				return err
			}
			sources[id] = map[string]string{"secretArn": arn, "dsn": c.DSN("postgres")}
		}
		info["sources"] = sources
		return srv.MarkReady(info)
	}
	if err := setup(); err != nil {
		_ = shutdown()
		return err
	}
	cancel()
	line, _ := json.Marshal(info)
	fmt.Println(string(line))
	s := <-sig
	log.Info("shutting down", "signal", s.String())
	return shutdown()
}
