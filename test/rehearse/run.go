package main

import (
	"net/url"

	"context"
	"encoding/json"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sample"
	"github.com/seedrepl/seedrepl/internal/steps"
	"github.com/seedrepl/seedrepl/statemachine"
	"github.com/seedrepl/seedrepl/test/sfnlocal"
)

// run is one rehearsal: background process up, writer on, the state machine
// end to end, the report, and (unless KEEP) everything torn down.
func run(cfg config) (err error) {
	t0 := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if d, err := readDaemon(cfg.Dir); err == nil && alive(d.PID) {
		return fmt.Errorf("a rehearsal is still up (pid %d, probably KEEP=1): run `make rehearse-down` first", d.PID)
	}
	if err := down(cfg); err != nil { // leftovers of a killed run
		fmt.Println("cleaning leftovers:", err)
	}
	if err := sfnlocal.CheckTools(); err != nil {
		return err
	}
	migrationID := "rehearsal-" + map[string]string{"subscription": "sub", "dms": "dms"}[cfg.Mode]
	sess := session{MigrationID: migrationID, Mode: cfg.Mode, Keep: cfg.Keep, AdoptedDSN: cfg.SourceDSN}
	if err := saveSession(cfg.Dir, sess); err != nil {
		return err
	}
	fmt.Printf("%s seedrepl rehearsal: mode %s, source %s, keep %t (state in %s)\n", since(t0), cfg.Mode,
		map[bool]string{true: "adopted from SOURCE_DSN", false: fmt.Sprintf("sample (pgbench scale %d + awkward tables)", cfg.Scale)}[cfg.SourceDSN != ""],
		cfg.Keep, cfg.Dir)

	info, err := startDaemon(ctx, cfg, t0)
	if err != nil {
		return err
	}
	stopped := false
	stopAll := func() {
		if stopped {
			return
		}
		stopped = true
		fmt.Printf("%s tearing the rehearsal down (clusters, backups, appliers)\n", since(t0))
		if err := down(cfg); err != nil {
			fmt.Println("teardown:", err)
		}
	}
	defer func() {
		if !cfg.Keep || err != nil {
			stopAll()
		}
	}()
	fmt.Printf("%s local cloud on %s; source instance %q is up\n", since(t0), info.URL, info.SourceInstanceID)

	var writer *sample.Writer
	if !info.Adopted {
		writer, err = sample.StartWriter(ctx, info.SourceDSN, sample.WriterOptions{Workers: 2, Pause: 5 * time.Millisecond,
			Burst: 3 * time.Second, Quiet: 4 * time.Second})
		if err != nil {
			return err
		}
		defer writer.Stop()
		fmt.Printf("%s live writer started on the source (INSERT/UPDATE/DELETE on every table, in waves)\n", since(t0))
	}

	for _, kv := range [][2]string{
		{"AWS_ENDPOINT_URL_RDS", info.URL}, {"AWS_ENDPOINT_URL_DATABASE_MIGRATION_SERVICE", info.URL},
		{"AWS_ENDPOINT_URL_SECRETS_MANAGER", info.URL}, {"AWS_ACCESS_KEY_ID", "local"}, {"AWS_SECRET_ACCESS_KEY", "local"},
		{"AWS_REGION", "us-east-1"}, {"AWS_EC2_METADATA_DISABLED", "true"},
		{"SEEDREPL_SSLMODE", "disable"},  // local clusters have no TLS; on AWS the default is verify-full
		{"SEEDREPL_POLL_TIMEOUT", "10m"}, // a local resource that is not ready in 10 minutes is broken
		{"SEEDREPL_DMS_SECRETS_ROLE_ARN", "arn:aws:iam::000000000000:role/seedrepl-dms-secrets-access"},
	} {
		os.Setenv(kv[0], kv[1])
	}
	handlers, closeLog, err := buildHandlers(ctx, cfg.Dir)
	if err != nil {
		return err
	}
	defer closeLog()
	input, err := buildInput(cfg, info, migrationID)
	if err != nil {
		return err
	}
	inputJSON, _ := json.MarshalIndent(input, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.Dir, "input-"+cfg.Mode+".json"), inputJSON, 0o644); err != nil {
		return err
	}
	if _, err := steps.CheckInput(inputJSON); err != nil {
		return fmt.Errorf("the rehearsal's own execution input is invalid: %w", err)
	}

	definition, err := statemachine.LocalDefinition()
	if err != nil {
		return err
	}
	prog := newProgress(t0)
	res, runErr := sfnlocal.Run(ctx, sfnlocal.Options{Definition: definition, Input: json.RawMessage(inputJSON),
		Handlers: handlers, WaitScale: cfg.WaitScale, Events: prog.event})
	if runErr != nil {
		return runErr
	}
	commits := int64(0)
	if writer != nil {
		writer.Stop()
		commits = writer.Commits.Load()
		fmt.Printf("%s writer stopped after %d commits\n", since(t0), commits)
	}

	rep := rehearsalReport{Mode: cfg.Mode, Status: res.Status, Error: res.Error, Cause: res.Cause,
		WallSeconds: time.Since(t0).Seconds(), Phases: prog.phases(), WriterCommits: commits,
		SourceInstance: info.SourceInstanceID, Adopted: info.Adopted}
	if res.Status == "SUCCEEDED" {
		if err := json.Unmarshal(res.Output, &rep.Report); err != nil {
			return fmt.Errorf("execution output is not a report: %w", err)
		}
	}
	if cfg.Keep && res.Status == "SUCCEEDED" {
		dsn, err := targetDSN(ctx, info, rep.Report)
		if err != nil {
			return fmt.Errorf("describe the kept target: %w", err)
		}
		rep.Target = &targetInfo{DSN: dsn, Note: "local throwaway credentials; `make rehearse-down` stops it"}
	}
	jsonPath, mdPath, err := rep.write(cfg.Dir)
	if err != nil {
		return err
	}
	fmt.Printf("%s report: %s (Markdown: %s)\n", since(t0), jsonPath, mdPath)
	fmt.Print(rep.summary())

	if !cfg.Keep {
		stopAll()
		if info.Adopted {
			if err := checkNothingOurs(info.SourceDSN, migrationID); err != nil {
				return err
			}
			fmt.Printf("%s adopted source holds no slot or publication of ours\n", since(t0))
		}
	} else if res.Status == "SUCCEEDED" {
		fmt.Printf("%s KEEP=1: the Aurora-like target keeps replicating in the background (target.dsn in the report); `make rehearse-down` stops it\n", since(t0))
	}
	if res.Status != "SUCCEEDED" {
		return fmt.Errorf("the execution ended %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	if bad := rep.notEqual(); len(bad) > 0 {
		return fmt.Errorf("not every table was verified equal: %s", strings.Join(bad, ", "))
	}
	return nil
}

// startDaemon launches `rehearse serve` in its own session (it outlives this
// process with KEEP=1) and waits until it reports ready.
func startDaemon(ctx context.Context, cfg config, t0 time.Time) (*daemonInfo, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(cfg.Dir, "background.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "serve")
	cmd.Env = os.Environ()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Printf("%s starting the local cloud and the source (pid %d, log %s)\n", since(t0), cmd.Process.Pid, logPath)
	for {
		if d, err := readDaemon(cfg.Dir); err == nil && d.PID == cmd.Process.Pid {
			return d, nil
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("the background process exited (%v) before it was ready:\n%s", err, tailText(string(b), 3000))
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tailText(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// buildInput is the execution input a user would give, for the local cloud.
func buildInput(cfg config, info *daemonInfo, migrationID string) (map[string]any, error) {
	scope := map[string]any{"schemas": []string{"public"}}
	if info.Adopted && cfg.Scope != "" {
		kind, list, ok := strings.Cut(cfg.Scope, ":")
		if !ok || (kind != "schemas" && kind != "tables") {
			return nil, fmt.Errorf("SCOPE=%q: use schemas:public,sales or tables:public.orders,public.items", cfg.Scope)
		}
		scope = map[string]any{kind: strings.Split(list, ",")}
	}
	if !info.Adopted && cfg.Mode == "dms" {
		// DMS drops UPDATE and DELETE of tables without a primary key: the
		// DMS preflight refuses them, so the rehearsal leaves them out.
		scope = map[string]any{"tables": []string{"public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_tellers",
			"public.docs", "public.measurements", "public.orders"}}
	}
	in := map[string]any{
		"migrationId": migrationID,
		"mode":        cfg.Mode,
		"rehearsal":   !cfg.Keep,
		"source": map[string]any{"instanceId": info.SourceInstanceID, "database": info.SourceDB,
			"adminSecretArn": info.AdminSecretARN, "replicationSecretArn": info.ReplSecretARN},
		"scope": scope,
		"target": map[string]any{"instanceClass": "db.r6g.large", "readers": 1, "dbSubnetGroupName": "local-db-subnets",
			"vpcSecurityGroupIds": []string{"sg-0123456789abcdef0"}},
		"temp":   map[string]any{"instanceClass": "db.t4g.medium"},
		"verify": map[string]any{"maxLagBytes": 8 << 20, "compareAttempts": 12, "replayTimeoutSeconds": 120},
	}
	if cfg.Mode == "dms" {
		in["dms"] = map[string]any{"replicationInstanceClass": "dms.t3.medium", "replicationSubnetGroupId": "local-dms-subnets",
			"sslMode": "none"} // local clusters have no TLS
	} else {
		in["subscription"] = map[string]any{"sslmode": "disable"}
	}
	return in, nil
}

// targetDSN is the kept target's connection string (local credentials): the
// cluster's endpoint as the local cloud's RDS API describes it.
func targetDSN(ctx context.Context, info *daemonInfo, r *steps.Report) (string, error) {
	if r == nil || r.ClusterID == "" {
		return "", fmt.Errorf("the report names no cluster")
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return "", err
	}
	out, err := rds.NewFromConfig(awsCfg).DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(r.ClusterID)})
	if err != nil {
		return "", err
	}
	if len(out.DBClusters) != 1 {
		return "", fmt.Errorf("cluster %s not found", r.ClusterID)
	}
	c := out.DBClusters[0]
	src, err := pgx.ParseConfig(info.SourceDSN) // the restore keeps the source's roles
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(src.User, src.Password),
		Host: fmt.Sprintf("%s:%d", aws.ToString(c.Endpoint), aws.ToInt32(c.Port)), Path: "/" + info.SourceDB, RawQuery: "sslmode=disable"}
	return u.String(), nil
}

func checkNothingOurs(dsn, migrationID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var n int
	name := pgops.ObjectName(migrationID)
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1) +
		(SELECT count(*) FROM pg_publication WHERE pubname = $1)`, name).Scan(&n); err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("the adopted source still holds %s (slot or publication)", name)
	}
	return nil
}
