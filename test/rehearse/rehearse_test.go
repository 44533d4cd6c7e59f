package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lsn"
	"github.com/seedrepl/seedrepl/internal/pgcluster"
	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sample"
)

// The end-to-end tests of the main job: the rehearse command itself, as
// `make rehearse` runs it, on the sample and on an adopted source.

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "seedrepl-rehearse-bin-")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "rehearse")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func rehearseCmd(ctx context.Context, dir string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binPath, "run")
	cmd.Dir = filepath.Join("..", "..") // the repository root: node_modules
	cmd.Env = append(os.Environ(), append([]string{"REHEARSAL_DIR=" + dir, "FAST=1", "SCALE=1", "WAIT_SCALE=0.02"}, env...)...)
	return cmd
}

func runDown(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command(binPath, "down")
	cmd.Env = append(os.Environ(), "REHEARSAL_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("rehearse down: %v\n%s", err, out)
	}
}

func readReport(t *testing.T, dir, mode string) rehearsalReport {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "report-"+mode+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var r rehearsalReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// checkReport: the report's figures agree with each other and with the run.
func checkReport(t *testing.T, r rehearsalReport, mode string, wall time.Duration) {
	t.Helper()
	if r.Status != "SUCCEEDED" || r.Report == nil {
		t.Fatalf("status %s %s %s", r.Status, r.Error, r.Cause)
	}
	if bad := r.notEqual(); len(bad) > 0 {
		t.Errorf("tables not equal: %v", bad)
	}
	rep := r.Report
	if rep.Mode != mode || r.Mode != mode {
		t.Errorf("mode %s/%s, want %s", rep.Mode, r.Mode, mode)
	}
	seed, err := lsn.Parse(rep.SeedLSN)
	if err != nil {
		t.Errorf("seed %q: %v", rep.SeedLSN, err)
	}
	cp, err := lsn.Parse(rep.ConsistentPoint)
	if err != nil || cp >= seed {
		t.Errorf("slot consistent point %q not before the seed %s (%v)", rep.ConsistentPoint, seed, err)
	}
	if rep.SnapshotID == "" || rep.ClusterID == "" || len(rep.InstanceIDs) < 2 || rep.TempInstanceID == "" {
		t.Errorf("ids missing: %+v", rep)
	}
	if r.WallSeconds <= 0 || r.WallSeconds > wall.Seconds()+1 {
		t.Errorf("wall time %.1fs, the test measured %s", r.WallSeconds, wall)
	}
	names := map[string]bool{}
	for _, p := range r.Phases {
		names[p.Name] = true
		if p.Seconds < 0 || p.Seconds > r.WallSeconds {
			t.Errorf("phase %s %.1fs outside the wall time %.1fs", p.Name, p.Seconds, r.WallSeconds)
		}
	}
	for _, want := range []string{"snapshot", "restore Aurora ∥ read seed (Parallel)", "seed proof", "catch-up (lag)", "validation"} {
		if !names[want] {
			t.Errorf("phase %q missing from %v", want, r.Phases)
		}
	}
	for _, tc := range rep.Validation {
		if tc.Verdict == pgops.Equal && (tc.Source != tc.Target) {
			t.Errorf("%s called equal with source %+v target %+v", tc.Table, tc.Source, tc.Target)
		}
	}
}

func TestRehearsalBothModes(t *testing.T) {
	for _, mode := range []string{"subscription", "dms"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			t.Cleanup(func() { runDown(t, dir) })
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			start := time.Now()
			out, err := rehearseCmd(ctx, dir, "MODE="+mode).CombinedOutput()
			if err != nil {
				t.Fatalf("rehearse: %v\n%s", err, out)
			}
			r := readReport(t, dir, mode)
			checkReport(t, r, mode, time.Since(start))
			if r.WriterCommits == 0 {
				t.Error("the sample's writer committed nothing")
			}
			if !strings.Contains(string(out), "execution SUCCEEDED") || !strings.Contains(string(out), "▶ VerifyLag") {
				t.Errorf("progress output lacks states:\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(dir, "report-"+mode+".md")); err != nil {
				t.Error(err)
			}
			if _, err := os.Stat(filepath.Join(dir, daemonFile)); err == nil {
				t.Error("the background process is still registered after a rehearsal without KEEP")
			}
		})
	}
}

// An adopted source with its own writer, KEEP=1: the target keeps
// replicating after the command returns; down leaves the source clean.
func TestRehearsalAdoptedSourceKeepAndDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	src, err := pgcluster.Init(ctx, pgcluster.Options{Name: "adopted"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.CleanupFunc(t))
	admin, err := src.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE shop"); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	if err := sample.Create(ctx, src, "shop", 1); err != nil {
		t.Fatal(err)
	}
	w, err := sample.StartWriter(ctx, src.DSN("shop"), sample.WriterOptions{Workers: 1, Pause: 5 * time.Millisecond, Burst: 2 * time.Second, Quiet: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	dir := t.TempDir()
	t.Cleanup(func() { runDown(t, dir) })
	start := time.Now()
	if out, err := rehearseCmd(ctx, dir, "SOURCE_DSN="+src.DSN("shop"), "KEEP=1").CombinedOutput(); err != nil {
		t.Fatalf("rehearse: %v\n%s", err, out)
	}
	r := readReport(t, dir, "subscription")
	checkReport(t, r, "subscription", time.Since(start))
	if r.Target == nil || r.Target.DSN == "" || !r.Adopted {
		t.Fatalf("kept run without target.dsn: %+v", r.Target)
	}
	d, err := readDaemon(dir)
	if err != nil || !alive(d.PID) {
		t.Fatalf("the background process is not running after a KEEP=1 rehearsal: %v", err)
	}
	// No secret in the execution input, the handlers' logs or the report
	// (but target.dsn, the local throwaway credentials KEEP=1 asks for).
	r.Target = nil
	reportNoTarget, _ := json.Marshal(r)
	for name, content := range map[string][]byte{"report without target.dsn": reportNoTarget} {
		if strings.Contains(string(content), src.Password) {
			t.Errorf("%s holds the source's password", name)
		}
	}
	for _, f := range []string{"input-subscription.json", "handlers.log"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), src.Password) {
			t.Errorf("%s holds the source's password", f)
		}
	}
	r = readReport(t, dir, "subscription")

	// The target still replicates after the command returned.
	sconn, err := src.Connect(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	defer sconn.Close(ctx)
	if _, err := sconn.Exec(ctx, `INSERT INTO orders (customer, amount) VALUES (-7, 7)`); err != nil {
		t.Fatal(err)
	}
	tconn, err := pgx.Connect(ctx, r.Target.DSN)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for deadline := time.Now().Add(time.Minute); n == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err := tconn.QueryRow(ctx, `SELECT count(*) FROM orders WHERE customer = -7`).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	tconn.Close(ctx)
	if n != 1 {
		t.Fatalf("a row written after the rehearsal returned reached the kept target %d times", n)
	}

	runDown(t, dir)
	if alive(d.PID) {
		t.Errorf("background process %d still alive after down", d.PID)
	}
	if _, err := os.Stat(d.BaseDir); err == nil {
		t.Errorf("%s still exists after down", d.BaseDir)
	}
	var ours int
	if err := sconn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)`).Scan(&ours); err != nil {
		t.Fatal(err)
	}
	if ours != 0 {
		t.Errorf("the adopted source holds %d slots/publications after down", ours)
	}
	w.Stop()
	if w.Errors.Load() > 0 {
		t.Errorf("the adopted source's writer failed: %s", w.FirstErrors())
	}
}

// A rehearsal killed midway leaves nothing running after down.
func TestRehearsalKilledMidway(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := rehearseCmd(ctx, dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	reached := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "▶ RestoreAuroraCluster") {
			reached = true
			break
		}
	}
	if !reached {
		_ = cmd.Wait()
		t.Fatal("the rehearsal never reached RestoreAuroraCluster")
	}
	time.Sleep(time.Second) // restores under way
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	d, err := readDaemon(dir)
	if err != nil || !alive(d.PID) {
		t.Fatalf("expected the background process to outlive the killed run: %v", err)
	}
	st, _ := os.ReadFile(filepath.Join(dir, "localcloud.json"))
	runDown(t, dir)
	if alive(d.PID) {
		t.Errorf("background process %d alive after down", d.PID)
	}
	if _, err := os.Stat(d.BaseDir); err == nil {
		t.Errorf("%s left after down", d.BaseDir)
	}
	out, _ := exec.Command("pgrep", "-f", d.BaseDir).Output()
	if strings.TrimSpace(string(out)) != "" {
		t.Errorf("processes still running from %s: %s (state %s)", d.BaseDir, out, st)
	}
}
