// Package pgops holds every PostgreSQL operation of the workflow. Each one is
// idempotent: it looks before it acts, and a second run changes nothing.
// Identifiers go through pgx.Identifier, values are bound parameters; the few
// utility statements that cannot take parameters (CREATE SUBSCRIPTION) quote
// their literals with the server's own escaping.
package pgops

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seedrepl/seedrepl/internal/lsn"
)

// ErrTransient marks an error worth retrying: the server restarting, a
// dropped connection, a lock or serialization conflict, too many connections.
var ErrTransient = errors.New("transient database error")

// IsTransient reports whether err is worth a retry.
func IsTransient(err error) bool {
	if errors.Is(err, ErrTransient) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutdown, crash, cannot connect now
			pgErr.Code == "53300",                        // too many connections
			pgErr.Code == "40001", pgErr.Code == "40P01", // serialization, deadlock
			pgErr.Code == "55P03", // lock not available
			pgErr.Code == "55006": // object in use (a slot still active)
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err) || isConnectError(err)
}

func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// Problem is one finding of a check, with the object it concerns and the fix.
type Problem struct {
	Code   string `json:"code"`
	Object string `json:"object,omitempty"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

func (p Problem) String() string {
	s := p.Code + ": "
	if p.Object != "" {
		s += p.Object + ": "
	}
	s += p.Detail
	if p.Fix != "" {
		s += " — fix: " + p.Fix
	}
	return s
}

// PreflightError lists every problem that stops the migration before anything is created.
type PreflightError struct {
	Problems []Problem
}

func (e *PreflightError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  - " + p.String()
	}
	return fmt.Sprintf("source preflight failed with %d problem(s):\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

// SeedProofError says which condition of the seed proof failed and what was seen.
type SeedProofError struct {
	Condition      string  `json:"condition"`
	Slot           string  `json:"slot"`
	Seed           lsn.LSN `json:"seed"`
	ConfirmedFlush lsn.LSN `json:"confirmedFlush"`
	Current        lsn.LSN `json:"current"`
	Active         bool    `json:"active"`
	WALStatus      string  `json:"walStatus"`
}

func (e *SeedProofError) Error() string {
	return fmt.Sprintf("seed proof failed: %s (slot %q, seed %s, confirmed_flush_lsn %s, pg_current_wal_lsn %s, active %t, wal_status %q)",
		e.Condition, e.Slot, e.Seed, e.ConfirmedFlush, e.Current, e.Active, e.WALStatus)
}

// ConflictError is an object that exists but cannot be adopted.
type ConflictError struct {
	Object string
	Reason string
	Fix    string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s exists but cannot be used: %s; %s", e.Object, e.Reason, e.Fix)
}

// NotOwnedError refuses to drop an object this migration did not create.
type NotOwnedError struct {
	Object string
	Reason string
}

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("refusing to drop %s: %s", e.Object, e.Reason)
}
