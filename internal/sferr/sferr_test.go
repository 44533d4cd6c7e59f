package sferr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sferr"
)

// cases: an error a handler might meet, the name Step Functions must see.
var cases = []struct {
	name string
	err  error
	want string
}{
	{"preflight wrapped", fmt.Errorf("preflight: %w", &pgops.PreflightError{Problems: []pgops.Problem{{Code: "wal-level", Detail: "wal_level is replica"}}}), "PreflightFailed"},
	{"seed proof", &pgops.SeedProofError{Condition: "the seed is beyond the source's current WAL position"}, "SeedProofFailed"},
	{"conflict", fmt.Errorf("slot: %w", &pgops.ConflictError{Object: "replication slot x", Reason: "in use", Fix: "stop it"}), "ResourceFailed"},
	{"declared, wrapped", fmt.Errorf("validate: %w", sferr.ValidationFailedf("table public.t differs")), "ValidationFailed"},
	{"declared, joined", errors.Join(errors.New("a"), sferr.InvalidInputf("/mode: want subscription or dms")), "InvalidInput"},
	{"rds instance state", &rdstypes.InvalidDBInstanceStateFault{Message: ptr("DB instance is not available")}, "NotReadyYet"}, // e.g. backing-up: a passing state, retried for minutes
	{"rds cluster state", fmt.Errorf("modify: %w", &rdstypes.InvalidDBClusterStateFault{Message: ptr("busy")}), "NotReadyYet"},
	{"throttling", &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}, "Transient"},
	{"sdk gave up", &retry.MaxAttemptsError{Attempt: 3, Err: errors.New("503")}, "Transient"},
	{"quota", &rdstypes.StorageQuotaExceededFault{Message: ptr("quota")}, "ResourceFailed"},
	{"not found", &rdstypes.DBSnapshotNotFoundFault{Message: ptr("gone")}, "Terminal"},
	{"pg shutting down", fmt.Errorf("connect: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}), "Transient"},
	{"pg syntax", &pgconn.PgError{Code: "42601", Message: "syntax error"}, "Terminal"},
	{"pgops transient", fmt.Errorf("slot: %w", pgops.ErrTransient), "Transient"},
	{"network", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, "Transient"},
	{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), "Transient"},
	{"plain", errors.New("something odd"), "Terminal"},
	{"plain wrapped", fmt.Errorf("step: %w", errors.New("something odd")), "Terminal"},
}

func ptr(s string) *string { return &s }

func TestClassify(t *testing.T) {
	for _, c := range cases {
		got := sferr.Classify(c.err)
		if n := sferr.Name(got); n != c.want {
			t.Errorf("%s: Classify(%T) is %s, want %s", c.name, c.err, n, c.want)
		}
		if got.Error() != c.err.Error() {
			t.Errorf("%s: message %q, want the original %q", c.name, got.Error(), c.err.Error())
		}
		if !errors.Is(got, c.err) {
			t.Errorf("%s: the original error is not the cause", c.name)
		}
		if !sferr.IsDeclared(got) {
			t.Errorf("%s: %T is not declared", c.name, got)
		}
	}
	if sferr.Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
}

func TestNamesListEveryType(t *testing.T) {
	errs := []error{sferr.NewTransient(errors.New("x")), sferr.NewNotReadyYet(errors.New("x")), sferr.NewInvalidInput(errors.New("x")),
		sferr.NewPreflightFailed(errors.New("x")), sferr.NewSeedProofFailed(errors.New("x")), sferr.NewResourceFailed(errors.New("x")),
		sferr.NewValidationFailed(errors.New("x")), sferr.NewTerminal(errors.New("x"))}
	var names []string
	for _, e := range errs {
		names = append(names, sferr.Name(e))
	}
	if !slices.Equal(names, sferr.Names()) {
		t.Errorf("types %v, declared names %v", names, sferr.Names())
	}
}

// --- the real runtime: aws-lambda-go's invoke loop reports the errors ---

const helperEnv = "SFERR_TEST_RUNTIME_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		// The Lambda process: handler returns Classify(cases[i].err), or the
		// raw error when raw is set, exactly as a main wired with the
		// boundary conversion (or without it) would.
		lambda.Start(func(ctx context.Context, in struct {
			Case int  `json:"case"`
			Raw  bool `json:"raw"`
		}) (any, error) {
			err := cases[in.Case].err
			if in.Raw {
				return nil, err
			}
			return nil, sferr.Classify(err)
		})
		return
	}
	os.Exit(m.Run())
}

// fakeRuntimeAPI plays the Lambda Runtime API for one process: it hands out
// the queued payloads and records each /error body.
type fakeRuntimeAPI struct {
	mu      sync.Mutex
	queue   [][]byte
	errors  map[string]json.RawMessage
	results map[string]json.RawMessage
	done    chan struct{}
	n       int
}

func (f *fakeRuntimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/2018-06-01/runtime/invocation/")
	switch {
	case p == "next":
		f.mu.Lock()
		if len(f.queue) == 0 {
			f.mu.Unlock()
			close(f.done)
			<-r.Context().Done() // the test kills the process
			return
		}
		body := f.queue[0]
		f.queue = f.queue[1:]
		id := strconv.Itoa(f.n)
		f.n++
		f.mu.Unlock()
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", id)
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
		_, _ = w.Write(body)
	case strings.HasSuffix(p, "/error"), strings.HasSuffix(p, "/response"):
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		if strings.HasSuffix(p, "/error") {
			f.errors[strings.TrimSuffix(p, "/error")] = b
		} else {
			f.results[strings.TrimSuffix(p, "/response")] = b
		}
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, r)
	}
}

// TestRuntimeReportsDeclaredNames runs a real Lambda process (this test
// binary, calling lambda.Start) against a fake Runtime API and reads the
// error bodies aws-lambda-go posts: the errorType is the declared name, not
// wrapError or errorString, and the message is kept. The same errors
// returned without the boundary conversion arrive as wrapError/errorString
// or the SDK's own type names, which no Retry or Catch matches.
func TestRuntimeReportsDeclaredNames(t *testing.T) {
	api := &fakeRuntimeAPI{errors: map[string]json.RawMessage{}, results: map[string]json.RawMessage{}, done: make(chan struct{})}
	for i := range cases {
		api.queue = append(api.queue, []byte(fmt.Sprintf(`{"case":%d}`, i)))
	}
	for i := range cases {
		api.queue = append(api.queue, []byte(fmt.Sprintf(`{"case":%d,"raw":true}`, i)))
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(srv.URL, "http://"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-api.done:
	case <-ctx.Done():
		t.Fatalf("runtime loop did not finish: %s", stderr.String())
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	api.mu.Lock()
	defer api.mu.Unlock()
	rawNames := map[string]bool{}
	for i, c := range cases {
		for _, raw := range []bool{false, true} {
			id := i
			if raw {
				id += len(cases)
			}
			body, ok := api.errors[strconv.Itoa(id)]
			if !ok {
				t.Fatalf("%s: no error posted for invocation %d (raw %t)", c.name, id, raw)
			}
			var e struct {
				Type    string `json:"errorType"`
				Message string `json:"errorMessage"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Message != c.err.Error() {
				t.Errorf("%s: message %q, want %q", c.name, e.Message, c.err.Error())
			}
			if raw {
				rawNames[e.Type] = true
				if slices.Contains(sferr.Names(), e.Type) {
					t.Errorf("%s: unconverted %T arrived as a declared name %q", c.name, c.err, e.Type)
				}
				continue
			}
			if e.Type != c.want {
				t.Errorf("%s: aws-lambda-go reported %q, want %q", c.name, e.Type, c.want)
			}
		}
	}
	for _, n := range []string{"wrapError", "errorString"} {
		if !rawNames[n] {
			t.Errorf("expected unconverted errors to show as %s; saw %v", n, rawNames)
		}
	}
}
