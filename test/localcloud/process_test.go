package localcloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lsn"
	"github.com/seedrepl/seedrepl/internal/pgcluster"
)

// startProcess runs cmd/localcloud and waits for its state file to say ready.
func startProcess(t *testing.T, bin, stateDir string, args ...string) (*exec.Cmd, *State) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-state-dir", stateDir, "-delays", "fast"}, args...)...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	gone := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(gone) }()
	t.Cleanup(func() {
		select {
		case <-gone:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-gone:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("localcloud output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if st, err := ReadState(stateDir); err == nil && st.Ready && st.PID == cmd.Process.Pid {
			return cmd, st
		}
		select {
		case err := <-exited:
			t.Fatalf("localcloud exited early: %v\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("localcloud not ready after 60s\n%s", out.String())
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestProcessAdoptAndSweep: the command serves a source adopted by
// connection string; a snapshot and an RDS-like restore of it work through
// the SDK; after kill -9, Sweep stops and removes what the process made and
// leaves the adopted cluster alone; a live server is swept with SIGTERM.
func TestProcessAdoptAndSweep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "localcloud")
	start := time.Now()
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/localcloud").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built cmd/localcloud in %s", time.Since(start).Round(time.Millisecond))

	ext, err := pgcluster.Init(ctx, pgcluster.Options{Name: "ext", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.CleanupFunc(t))
	ec, err := ext.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close(context.Background())
	execSQL(t, ctx, ec, `CREATE TABLE t (id int PRIMARY KEY)`, `INSERT INTO t SELECT generate_series(1, 50)`)

	stateDir := t.TempDir()
	proc, st := startProcess(t, bin, stateDir, "-adopt", "ext-src="+ext.DSN("postgres"))
	c := newClientsURL(st.URL)
	info, _ := st.Info["sources"].(map[string]any)
	srcInfo, _ := info["ext-src"].(map[string]any)
	secretArn, _ := srcInfo["secretArn"].(string)
	sv, err := c.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretArn)})
	if err != nil || !strings.Contains(aws.ToString(sv.SecretString), fmt.Sprintf(`"port":%d`, ext.Port)) {
		t.Fatalf("adopted source's secret %q: %v %v", secretArn, err, sv)
	}
	di, err := c.rds.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("ext-src")})
	if err != nil || int(aws.ToInt32(di.DBInstances[0].Endpoint.Port)) != ext.Port {
		t.Fatalf("adopted source: %v %+v", err, di)
	}
	if _, err := c.rds.CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{DBInstanceIdentifier: aws.String("ext-src"), DBSnapshotIdentifier: aws.String("s1")}); err != nil {
		t.Fatal(err)
	}
	if err := rds.NewDBSnapshotAvailableWaiter(c.rds, func(o *rds.DBSnapshotAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
	}).Wait(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String("s1")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.rds.RestoreDBInstanceFromDBSnapshot(ctx, &rds.RestoreDBInstanceFromDBSnapshotInput{DBInstanceIdentifier: aws.String("tmp"),
		DBSnapshotIdentifier: aws.String("arn:aws:rds:us-east-1:000000000000:snapshot:s1")}); err != nil {
		t.Fatal(err)
	}
	tmp, err := rds.NewDBInstanceAvailableWaiter(c.rds, func(o *rds.DBInstanceAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
	}).WaitForOutput(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("tmp")}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tmpPort := int(aws.ToInt32(tmp.DBInstances[0].Endpoint.Port))
	tc, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", ext.Password, tmpPort))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var seed lsn.LSN
	execSQL(t, ctx, tc, "CREATE EXTENSION IF NOT EXISTS rds_tools")
	if err := tc.QueryRow(ctx, "SELECT count(*), rds_tools.logical_seed_lsn() FROM t").Scan(&n, &seed); err != nil || n != 50 || seed == 0 {
		t.Fatalf("restore of the adopted source: %v rows=%d seed=%s", err, n, seed)
	}
	tc.Close(ctx)

	// kill -9: nothing is cleaned up by the process itself.
	if err := proc.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && syscall.Kill(proc.Process.Pid, 0) == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if !portOpen(tmpPort) {
		t.Fatalf("the restored cluster should outlive a killed server (port %d closed)", tmpPort)
	}
	if err := Sweep(stateDir); err != nil {
		t.Fatal(err)
	}
	if portOpen(tmpPort) {
		t.Errorf("restored cluster on port %d still runs after Sweep", tmpPort)
	}
	if _, err := os.Stat(st.BaseDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("base dir %s survives Sweep", st.BaseDir)
	}
	if _, err := ReadState(stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file survives Sweep: %v", err)
	}
	if err := ec.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 50 {
		t.Errorf("adopted cluster after Sweep: %v (%d rows)", err, n)
	}

	// A live server: Sweep sends SIGTERM and the server cleans up itself.
	proc2, st2 := startProcess(t, bin, stateDir, "-adopt", "ext-src="+ext.DSN("postgres"))
	if err := Sweep(stateDir); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && syscall.Kill(proc2.Process.Pid, 0) == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if syscall.Kill(proc2.Process.Pid, 0) == nil {
		// a zombie until Wait reaps it; the state says whether it cleaned up
		if _, err := ReadState(stateDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("server still running after Sweep's SIGTERM")
		}
	}
	if _, err := os.Stat(st2.BaseDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("base dir %s survives the SIGTERM sweep", st2.BaseDir)
	}
}

func newClientsURL(url string) clients {
	cfg := aws.Config{
		Region: Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local", Source: "test"}, nil
		}),
		BaseEndpoint: aws.String(url),
	}
	return clients{rds: rds.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg), cfg: cfg}
}
