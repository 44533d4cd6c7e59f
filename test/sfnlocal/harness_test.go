package sfnlocal_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/seedrepl/seedrepl/internal/sferr"
	"github.com/seedrepl/seedrepl/statemachine"
	"github.com/seedrepl/seedrepl/test/sfnlocal"
)

type valueErr struct{}

func (valueErr) Error() string { return "value receiver" }

// The error name is what aws-lambda-go would report: the Go type name of
// the returned error, so a wrapped error arrives as "wrapError".
func TestErrorTypeIsAWSLambdaGos(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{sferr.Transientf("x"), "Transient"},
		{sferr.ResourceFailedf("x"), "ResourceFailed"},
		{fmt.Errorf("wrapped: %w", sferr.Transientf("x")), "wrapError"},
		{errors.New("plain"), "errorString"},
		{valueErr{}, "valueErr"},
		{messages.InvokeResponse_Error{Type: "Custom", Message: "m"}, "Custom"},
	}
	// Each declared error reaches the state machine under its declared name.
	for _, c := range []error{
		sferr.Transientf("x"), sferr.NotReadyYetf("x"), sferr.InvalidInputf("x"),
		sferr.NewPreflightFailed(errors.New("x")), sferr.NewSeedProofFailed(errors.New("x")),
		sferr.ResourceFailedf("x"), sferr.ValidationFailedf("x"), sferr.Terminalf("x"),
	} {
		cases = append(cases, struct {
			err  error
			want string
		}{c, sferr.Name(c)})
		if !slices.Contains(sferr.Names(), sfnlocal.ErrorType(c)) {
			t.Errorf("%T reaches Step Functions as %q, not a declared name", c, sfnlocal.ErrorType(c))
		}
	}
	for _, c := range cases {
		if got := sfnlocal.ErrorType(c.err); got != c.want {
			t.Errorf("ErrorType(%#v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// The definition passes asl-validator (schema, targets, paths, ARNs).
func TestDefinitionPassesASLValidator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	def, err := statemachine.LocalDefinition()
	if err != nil {
		t.Fatal(err)
	}
	if err := sfnlocal.Validate(ctx, def); err != nil {
		t.Fatal(err)
	}
	// The validator is not a rubber stamp: a dangling Next is refused.
	broken := strings.Replace(def, `"Next": "ProveSeed"`, `"Next": "NoSuchState"`, 1)
	if broken == def {
		t.Fatal("mutation did not apply")
	}
	if err := sfnlocal.Validate(ctx, broken); err == nil {
		t.Error("asl-validator accepted a Next to a missing state")
	}
}

// A minimal machine exercises the harness itself: the handler gets the raw
// payload, a wrapped error reaches Catch as wrapError (as in AWS), a panic
// is reported with the panic value's type, and a missing handler is an error
// of Run, not a silent pass.
func TestHarness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	arn := func(name string) string {
		f, _ := statemachine.FunctionByName(name)
		return statemachine.LocalARN(f)
	}
	def := fmt.Sprintf(`{
	  "StartAt": "ValidateInput",
	  "States": {
	    "ValidateInput": {"Type": "Task", "Resource": %q, "ResultPath": "$.plan", "TimeoutSeconds": 10, "Next": "Preflight"},
	    "Preflight": {"Type": "Task", "Resource": %q, "ResultPath": "$.preflight", "TimeoutSeconds": 10,
	      "Catch": [{"ErrorEquals": ["wrapError"], "ResultPath": "$.error", "Next": "Report"}], "Next": "Report"},
	    "Report": {"Type": "Task", "Resource": %q, "ResultPath": "$.report", "TimeoutSeconds": 10, "End": true}
	  }
	}`, arn("ValidateInput"), arn("Preflight"), arn("Report"))

	var got json.RawMessage
	var events []string
	res, err := sfnlocal.Run(ctx, sfnlocal.Options{
		Definition: def,
		Input:      json.RawMessage(`{"s": "<&>"}`),
		Handlers: map[string]sfnlocal.Handler{
			"ValidateInput": func(ctx context.Context, p json.RawMessage) (any, error) {
				got = p
				return map[string]any{"html": "<&>"}, nil
			},
			"Preflight": func(ctx context.Context, p json.RawMessage) (any, error) {
				return nil, fmt.Errorf("context: %w", sferr.NewPreflightFailed(errors.New("slot exists")))
			},
			"Report": func(ctx context.Context, p json.RawMessage) (any, error) {
				var doc struct {
					Error struct{ Error, Cause string } `json:"error"`
					Plan  map[string]string             `json:"plan"`
				}
				if err := json.Unmarshal(p, &doc); err != nil {
					return nil, err
				}
				if doc.Plan["html"] != "<&>" {
					panic("plan lost")
				}
				return doc.Error, nil
			},
		},
		Events: func(e sfnlocal.Event) { events = append(events, e.Type+":"+e.State) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "SUCCEEDED" {
		t.Fatalf("status %s %s %s", res.Status, res.Error, res.Cause)
	}
	if !strings.Contains(string(got), `"s":"<&>"`) {
		t.Errorf("payload seen by the handler: %s", got)
	}
	var out struct {
		Report struct{ Error, Cause string } `json:"report"`
	}
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatal(err)
	}
	if out.Report.Error != "wrapError" {
		t.Errorf("a fmt.Errorf-wrapped error must arrive as wrapError (as aws-lambda-go names it), got %q", out.Report.Error)
	}
	var cause struct{ ErrorType, ErrorMessage string }
	if err := json.Unmarshal([]byte(out.Report.Cause), &cause); err != nil || cause.ErrorType != "wrapError" || cause.ErrorMessage != "context: slot exists" {
		t.Errorf("Cause %q: want the Lambda error JSON {errorMessage, errorType}", out.Report.Cause)
	}
	if len(events) == 0 || events[0] != "ExecutionStarted:" {
		t.Errorf("events %v", events)
	}

	// A panic: errorType is the panic value's type name.
	res, err = sfnlocal.Run(ctx, sfnlocal.Options{
		Definition: def,
		Input:      map[string]any{},
		Handlers: map[string]sfnlocal.Handler{
			"ValidateInput": func(ctx context.Context, p json.RawMessage) (any, error) { panic("boom") },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "FAILED" || res.Error != "string" {
		t.Errorf("panic: status %s error %q, want FAILED string", res.Status, res.Error)
	}

	// No handler for a function the machine calls: Run says so.
	_, err = sfnlocal.Run(ctx, sfnlocal.Options{
		Definition: def,
		Handlers:   map[string]sfnlocal.Handler{},
	})
	if err == nil || !strings.Contains(err.Error(), "no handler for function ValidateInput") {
		t.Errorf("missing handler: err = %v", err)
	}
}

// Without node (or node_modules) Run fails and says what to do; it never skips.
func TestMissingNodeFailsLoudly(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := sfnlocal.Run(context.Background(), sfnlocal.Options{})
	if err == nil || !strings.Contains(err.Error(), "npm ci") {
		t.Errorf("Run without node: %v, want an error that says to run npm ci", err)
	}
}

func TestTyped(t *testing.T) {
	type ev struct {
		MigrationID string `json:"migrationId"`
	}
	h := sfnlocal.Typed(func(ctx context.Context, e ev) (string, error) { return e.MigrationID, nil })
	out, err := h(context.Background(), json.RawMessage(`{"migrationId":"m1","extra":1}`))
	if err != nil || out != "m1" {
		t.Errorf("Typed = %v, %v", out, err)
	}
	_, err = h(context.Background(), json.RawMessage(`{"migrationId":1}`))
	if sfnlocal.ErrorType(err) != "UnmarshalTypeError" {
		t.Errorf("a decoding error must be returned as is (UnmarshalTypeError), got %T", err)
	}
}
