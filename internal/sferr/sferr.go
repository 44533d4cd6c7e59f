// Package sferr declares, once, the error names the state machine matches in
// Retry and Catch, and converts any error into one of them at the handler
// boundary (Classify).
//
// aws-lambda-go reports a handler error to Step Functions as
// {"errorType": <name>, "errorMessage": err.Error()}, where <name> is the
// name of the error's dynamic Go type with one pointer level removed and no
// package (lambda/errors.go, lambdaErrorResponse). A fmt.Errorf("%w") arrives
// as "wrapError", errors.New as "errorString". So each name below is a Go
// type, the handler boundary returns exactly one of them, and the message
// is kept.
package sferr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/seedrepl/seedrepl/internal/pgops"
)

// The error types. Each keeps the message and the cause (Unwrap).
type (
	// Transient: worth retrying as is (throttling, a resource in a passing
	// state, a dropped connection, a lock conflict).
	Transient struct{ e cause }
	// NotReadyYet: a precondition that time will satisfy (a resource still
	// being created when a step needs it).
	NotReadyYet struct{ e cause }
	// InvalidInput: the execution input is wrong; nothing was created.
	InvalidInput struct{ e cause }
	// PreflightFailed: the source is not fit for the migration.
	PreflightFailed struct{ e cause }
	// SeedProofFailed: the seed LSN cannot be used with the slot.
	SeedProofFailed struct{ e cause }
	// ResourceFailed: an AWS resource or database object ended in a state
	// the migration cannot use (failed, incompatible-restore, a conflicting
	// leftover, a quota).
	ResourceFailed struct{ e cause }
	// ValidationFailed: the target's content differs from the source's.
	ValidationFailed struct{ e cause }
	// Terminal: anything else that retrying will not fix.
	Terminal struct{ e cause }
)

type cause struct {
	msg string
	err error
}

func (e *Transient) Error() string        { return e.e.msg }
func (e *NotReadyYet) Error() string      { return e.e.msg }
func (e *InvalidInput) Error() string     { return e.e.msg }
func (e *PreflightFailed) Error() string  { return e.e.msg }
func (e *SeedProofFailed) Error() string  { return e.e.msg }
func (e *ResourceFailed) Error() string   { return e.e.msg }
func (e *ValidationFailed) Error() string { return e.e.msg }
func (e *Terminal) Error() string         { return e.e.msg }

func (e *Transient) Unwrap() error        { return e.e.err }
func (e *NotReadyYet) Unwrap() error      { return e.e.err }
func (e *InvalidInput) Unwrap() error     { return e.e.err }
func (e *PreflightFailed) Unwrap() error  { return e.e.err }
func (e *SeedProofFailed) Unwrap() error  { return e.e.err }
func (e *ResourceFailed) Unwrap() error   { return e.e.err }
func (e *ValidationFailed) Unwrap() error { return e.e.err }
func (e *Terminal) Unwrap() error         { return e.e.err }

// TransientNames are retried by the state machine; TerminalNames are caught.
var (
	TransientNames = []string{"Transient", "NotReadyYet"}
	TerminalNames  = []string{"InvalidInput", "PreflightFailed", "SeedProofFailed", "ResourceFailed", "ValidationFailed", "Terminal"}
)

// Names is every declared name, transient first.
func Names() []string { return append(append([]string{}, TransientNames...), TerminalNames...) }

func mk(msg string, err error) cause {
	if msg == "" && err != nil {
		msg = err.Error()
	}
	return cause{msg: msg, err: err}
}

// Constructors: the message is err's (or format's); err stays the cause.
func NewTransient(err error) error        { return &Transient{mk("", err)} }
func NewNotReadyYet(err error) error      { return &NotReadyYet{mk("", err)} }
func NewInvalidInput(err error) error     { return &InvalidInput{mk("", err)} }
func NewPreflightFailed(err error) error  { return &PreflightFailed{mk("", err)} }
func NewSeedProofFailed(err error) error  { return &SeedProofFailed{mk("", err)} }
func NewResourceFailed(err error) error   { return &ResourceFailed{mk("", err)} }
func NewValidationFailed(err error) error { return &ValidationFailed{mk("", err)} }
func NewTerminal(err error) error         { return &Terminal{mk("", err)} }

// Transientf and friends build an error from a format (with %w allowed).
func Transientf(format string, a ...any) error   { return NewTransient(fmt.Errorf(format, a...)) }
func NotReadyYetf(format string, a ...any) error { return NewNotReadyYet(fmt.Errorf(format, a...)) }
func InvalidInputf(format string, a ...any) error {
	return NewInvalidInput(fmt.Errorf(format, a...))
}
func ResourceFailedf(format string, a ...any) error {
	return NewResourceFailed(fmt.Errorf(format, a...))
}
func ValidationFailedf(format string, a ...any) error {
	return NewValidationFailed(fmt.Errorf(format, a...))
}
func Terminalf(format string, a ...any) error { return NewTerminal(fmt.Errorf(format, a...)) }

// Name is the name aws-lambda-go reports for err (its dynamic type's name,
// one pointer level removed), for logs and tests.
func Name(err error) string {
	if err == nil {
		return ""
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

// IsDeclared reports whether err's top-level type is one of the declared ones.
func IsDeclared(err error) bool {
	switch err.(type) {
	case *Transient, *NotReadyYet, *InvalidInput, *PreflightFailed, *SeedProofFailed,
		*ResourceFailed, *ValidationFailed, *Terminal:
		return true
	}
	return false
}

// IsTransient reports whether the state machine would retry err as it is
// classified.
func IsTransient(err error) bool {
	switch Classify(err).(type) {
	case *Transient, *NotReadyYet:
		return true
	}
	return false
}

// rewrap keeps the declared type found inside err but the full message of err.
func rewrap(err error, inner error) error {
	c := mk(err.Error(), err)
	switch inner.(type) {
	case *Transient:
		return &Transient{c}
	case *NotReadyYet:
		return &NotReadyYet{c}
	case *InvalidInput:
		return &InvalidInput{c}
	case *PreflightFailed:
		return &PreflightFailed{c}
	case *SeedProofFailed:
		return &SeedProofFailed{c}
	case *ResourceFailed:
		return &ResourceFailed{c}
	case *ValidationFailed:
		return &ValidationFailed{c}
	}
	return &Terminal{c}
}

// Error codes that mean a resource is in a passing state (a backup window,
// a task still stopping, an instance still creating): NotReadyYet, whose
// retry budget (minutes) outlasts such states, unlike Transient's.
var notReadyAWSCodes = map[string]bool{
	"InvalidDBInstanceState":      true, // rds: e.g. backing-up during the automated backup window
	"InvalidDBInstanceStateFault": true,
	"InvalidDBClusterStateFault":  true,
	"InvalidDBSnapshotState":      true,
	"InvalidDBSnapshotStateFault": true,
	"InvalidResourceStateFault":   true, // dms: e.g. the task is still stopping
}

// Error codes of AWS services that mean "try again soon": throttling the
// SDK gave up on, capacity that comes back, a service hiccup.
var transientAWSCodes = map[string]bool{
	"InsufficientDBInstanceCapacity":     true,
	"InsufficientDBClusterCapacityFault": true,
	"InsufficientResourceCapacityFault":  true, // dms
	"KMSThrottlingFault":                 true,
	"InternalFailure":                    true,
	"ServiceUnavailable":                 true,
}

// Codes that mean the request or the account is wrong: retrying cannot help.
var resourceAWSCodes = map[string]bool{
	"StorageQuotaExceeded":                        true,
	"InstanceQuotaExceeded":                       true,
	"DBClusterQuotaExceededFault":                 true,
	"SnapshotQuotaExceeded":                       true,
	"ResourceQuotaExceededFault":                  true,
	"StorageQuotaExceededFault":                   true,
	"DBSubnetGroupNotFoundFault":                  true,
	"ReplicationSubnetGroupDoesNotCoverEnoughAZs": true,
	"KMSKeyNotAccessibleFault":                    true,
	"InvalidVPCNetworkStateFault":                 true,
	"InvalidSubnet":                               true,
}

// Classify converts any error into one of the declared types, keeping its
// message (and err as the cause). nil stays nil.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if IsDeclared(err) {
		return err
	}
	// A declared error wrapped with context: keep its name, take the message.
	if inner := findDeclared(err); inner != nil {
		return rewrap(err, inner)
	}
	c := mk(err.Error(), err)
	var (
		pre   *pgops.PreflightError
		proof *pgops.SeedProofError
		conf  *pgops.ConflictError
		owned *pgops.NotOwnedError
	)
	switch {
	case errors.As(err, &pre):
		return &PreflightFailed{c}
	case errors.As(err, &proof):
		return &SeedProofFailed{c}
	case errors.As(err, &conf), errors.As(err, &owned):
		return &ResourceFailed{c}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if notReadyAWSCodes[code] {
			return &NotReadyYet{c}
		}
		if transientAWSCodes[code] {
			return &Transient{c}
		}
		if resourceAWSCodes[code] {
			return &ResourceFailed{c}
		}
	}
	if pgops.IsTransient(err) {
		return &Transient{c}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The step ran out of time (a slow server, a stuck lock): try again.
		return &Transient{c}
	}
	if errors.Is(err, context.Canceled) {
		return &Transient{c}
	}
	// The SDK's own view: throttling codes, transient HTTP status codes,
	// connection errors, timeouts. (Its retryer gave up; Step Functions
	// retries later, with a longer backoff.)
	if retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary {
		return &Transient{c}
	}
	var maxAttempts *retry.MaxAttemptsError
	if errors.As(err, &maxAttempts) {
		return &Transient{c}
	}
	if isNetwork(err) {
		return &Transient{c}
	}
	return &Terminal{c}
}

func isNetwork(err error) bool {
	var ne net.Error
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &ne) || errors.As(err, &op) || errors.As(err, &dns) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// findDeclared returns the outermost declared error in err's tree.
func findDeclared(err error) error {
	if err == nil {
		return nil
	}
	if IsDeclared(err) {
		return err
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return findDeclared(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, x := range u.Unwrap() {
			if d := findDeclared(x); d != nil {
				return d
			}
		}
	}
	return nil
}
