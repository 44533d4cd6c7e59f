package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/test/localcloud"
)

// session is what a run leaves for down (session.json).
type session struct {
	MigrationID string `json:"migrationId"`
	Mode        string `json:"mode"`
	Keep        bool   `json:"keep"`
	// AdoptedDSN is the adopted source, whose slot and publication down drops
	// even if everything else is gone.
	AdoptedDSN string `json:"adoptedDsn,omitempty"`
}

const sessionFile = "session.json"

func saveSession(dir string, s session) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	return os.WriteFile(filepath.Join(dir, sessionFile), b, 0o600)
}

// down stops the background process (which removes every cluster and backup
// it made), sweeps what a killed one left, and drops this migration's slot and
// publication from an adopted source.
func down(cfg config) error {
	var errs []error
	if d, err := readDaemon(cfg.Dir); err == nil && alive(d.PID) {
		fmt.Printf("stopping the rehearsal's background process (pid %d)\n", d.PID)
		_ = syscall.Kill(d.PID, syscall.SIGTERM)
		deadline := time.Now().Add(90 * time.Second)
		for alive(d.PID) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if alive(d.PID) {
			_ = syscall.Kill(d.PID, syscall.SIGKILL)
		}
		if d.BaseDir != "" {
			_ = sweepBase(d.BaseDir)
		}
	} else if err == nil && d.BaseDir != "" {
		errs = append(errs, sweepBase(d.BaseDir))
	}
	if err := localcloud.Sweep(cfg.Dir); err != nil {
		errs = append(errs, fmt.Errorf("sweep: %w", err))
	}
	if b, err := os.ReadFile(filepath.Join(cfg.Dir, sessionFile)); err == nil {
		var s session
		if json.Unmarshal(b, &s) == nil && s.AdoptedDSN != "" {
			errs = append(errs, dropOurs(s.AdoptedDSN, s.MigrationID))
		}
	}
	_ = os.Remove(filepath.Join(cfg.Dir, daemonFile))
	_ = os.Remove(filepath.Join(cfg.Dir, sessionFile))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Println("rehearsal stopped: no cluster, applier or background process of it is left")
	return nil
}

// sweepBase stops any cluster left under a base directory and removes it.
func sweepBase(base string) error {
	pidfiles, _ := filepath.Glob(filepath.Join(base, "*", "data", "postmaster.pid"))
	more, _ := filepath.Glob(filepath.Join(base, "*", "*", "data", "postmaster.pid"))
	for _, pf := range append(pidfiles, more...) {
		var pid int
		if b, err := os.ReadFile(pf); err == nil {
			fmt.Sscanf(string(b), "%d", &pid)
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGQUIT) // immediate shutdown of a throwaway cluster
			for i := 0; i < 50 && alive(pid); i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	return os.RemoveAll(base)
}

// dropOurs drops this migration's slot and publication from an adopted
// source, and nothing else: names and ownership are checked by pgops.
func dropOurs(dsn, migrationID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to the adopted source to drop our slot and publication: %w", err)
	}
	defer conn.Close(ctx)
	name := pgops.ObjectName(migrationID)
	slotDropped, err := pgops.DropOwnedSlot(ctx, conn, name, migrationID)
	if err != nil {
		return err
	}
	pubDropped, err := pgops.DropOwnedPublication(ctx, conn, name, migrationID)
	if err != nil {
		return err
	}
	if slotDropped || pubDropped {
		fmt.Printf("adopted source: dropped slot=%t publication=%t (%s)\n", slotDropped, pubDropped, name)
	}
	return nil
}
