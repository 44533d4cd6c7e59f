// Package sfnlocal runs a state machine definition on the local Step
// Functions engine (the npm package aws-local-stepfunctions, driven by
// run.mjs beside this file) with every Task state routed to Go handlers.
//
// Run starts an HTTP server on 127.0.0.1:0 that plays the Lambda service:
// it receives a Task's input exactly as Step Functions would send it to the
// function, decodes it as the Lambda Go runtime does and answers with the
// handler's result, or with {"errorType","errorMessage"} built as
// aws-lambda-go builds it (the Go type name of the returned error), so the
// definition's Retry and Catch see the same error names as in AWS.
//
// Node and the repository's node_modules are required: Run fails with an
// error that says to run `npm ci` when they are missing. It never skips.
package sfnlocal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/seedrepl/seedrepl/statemachine"
)

// Handler is one Lambda function's handler: it gets the raw JSON payload (as
// a Go Lambda handler taking json.RawMessage does) and returns a value that
// is marshalled to JSON, or an error.
type Handler func(ctx context.Context, payload json.RawMessage) (any, error)

// Typed adapts a handler with a typed event, as lambda.Start accepts it, to
// a Handler: the payload is decoded into E with a json.Decoder as
// aws-lambda-go does by default (no UseNumber, unknown fields ignored), and a
// decoding error is returned as the handler's error, as there.
func Typed[E, R any](h func(context.Context, E) (R, error)) Handler {
	return func(ctx context.Context, payload json.RawMessage) (any, error) {
		var ev E
		if err := json.NewDecoder(bytes.NewReader(payload)).Decode(&ev); err != nil {
			return nil, err
		}
		return h(ctx, ev)
	}
}

// Options of one execution.
type Options struct {
	// Definition is the ASL JSON with every ${...} already substituted
	// (statemachine.LocalDefinition). Empty means the local definition.
	Definition string
	// Input is the execution input: json.RawMessage, []byte or any value
	// encoding/json marshals.
	Input any
	// Handlers by Task state name as listed in statemachine.Functions. A
	// Task state reaches the handler of the function its Resource names.
	Handlers map[string]Handler
	// WaitScale multiplies every Wait duration and Retry interval (0.001
	// turns a 300 s wait into 300 ms). Zero means 1. Task timeouts are not
	// scaled.
	WaitScale float64
	// Events, if set, is called with each event as it happens.
	Events func(Event)
	// Stderr receives node's stderr (default: kept and put in errors).
	Stderr io.Writer
}

// Event is one line of run.mjs's output.
type Event struct {
	Type        string          `json:"type"` // ExecutionStarted, StateEntered, StateExited, StateFailed, StateRetried, StateCaught, ParallelBranch*, ExecutionSucceeded, ExecutionFailed, Result
	Time        time.Time       `json:"time"`
	State       string          `json:"state,omitempty"`
	StateType   string          `json:"stateType,omitempty"`
	Parent      string          `json:"parent,omitempty"` // the Parallel/Map state of a branch event
	Index       *int            `json:"index,omitempty"`
	Error       string          `json:"error,omitempty"`
	Cause       string          `json:"cause,omitempty"`
	Attempt     int             `json:"attempt,omitempty"`     // StateRetried
	ErrorEquals []string        `json:"errorEquals,omitempty"` // the matching retrier or catcher
	Next        string          `json:"next,omitempty"`        // StateCaught
	ResultPath  string          `json:"resultPath,omitempty"`  // StateCaught
	Input       json.RawMessage `json:"input,omitempty"`
	Output      json.RawMessage `json:"output,omitempty"`
	Status      string          `json:"status,omitempty"` // Result
}

// Result of one execution.
type Result struct {
	Status string          // SUCCEEDED, FAILED, TIMED_OUT or ABORTED
	Output json.RawMessage // the execution's output when it succeeded
	Error  string          // the execution's error name when it failed
	Cause  string
	Events []Event
	// Invocations in order: which state called which function.
	Invocations []Invocation
}

// Invocation is one call of a handler.
type Invocation struct {
	State    string
	Function string // Task state name of the function (statemachine.Function.Name)
	Payload  json.RawMessage
	Error    string // error type name returned, if any
}

// Entered lists the states entered, in order.
func (r *Result) Entered() []string {
	var out []string
	for _, e := range r.Events {
		if e.Type == "StateEntered" {
			out = append(out, e.State)
		}
	}
	return out
}

// Count is how many times state was entered.
func (r *Result) Count(state string) int {
	n := 0
	for _, s := range r.Entered() {
		if s == state {
			n++
		}
	}
	return n
}

// Calls returns the invocations of one function.
func (r *Result) Calls(function string) []Invocation {
	var out []Invocation
	for _, c := range r.Invocations {
		if c.Function == function {
			out = append(out, c)
		}
	}
	return out
}

// Dir is the directory of this package (where run.mjs is) and Root the
// repository root (where node_modules is).
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Root is the repository root.
func Root() string { return filepath.Clean(filepath.Join(Dir(), "..", "..")) }

// CheckTools reports a clear error when node or the npm packages are missing.
func CheckTools() error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("sfnlocal: node is not on PATH: install Node.js >= 20, then run `npm ci` at the repository root")
	}
	for _, p := range []string{"aws-local-stepfunctions", "asl-validator"} {
		if _, err := os.Stat(filepath.Join(Root(), "node_modules", p, "package.json")); err != nil {
			return fmt.Errorf("sfnlocal: %s is not installed in %s: run `npm ci` at the repository root", p, filepath.Join(Root(), "node_modules"))
		}
	}
	return nil
}

// ErrorType is the error name aws-lambda-go reports for err: the name of
// its dynamic Go type, with one pointer level removed (lambda/errors.go).
// A messages.InvokeResponse_Error carries its own type.
func ErrorType(err error) string {
	if v, ok := err.(messages.InvokeResponse_Error); ok {
		return v.Type
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		return t.Elem().Name()
	}
	return t.Name()
}

// errorBody is what the Lambda runtime returns for a handler error.
func errorBody(err error) messages.InvokeResponse_Error {
	if v, ok := err.(messages.InvokeResponse_Error); ok {
		return v
	}
	return messages.InvokeResponse_Error{Message: err.Error(), Type: ErrorType(err)}
}

// panicBody is what the Lambda runtime returns for a handler panic.
func panicBody(v any) messages.InvokeResponse_Error {
	if ive, ok := v.(messages.InvokeResponse_Error); ok {
		return ive
	}
	name := ""
	if t := reflect.TypeOf(v); t != nil {
		if t.Kind() == reflect.Pointer {
			name = t.Elem().Name()
		} else {
			name = t.Name()
		}
	}
	msg := fmt.Sprint(v)
	if e, ok := v.(error); ok {
		msg = e.Error()
	}
	return messages.InvokeResponse_Error{Message: msg, Type: name}
}

type server struct {
	handlers map[string]Handler
	mu       sync.Mutex
	calls    []Invocation
	problems []string
}

func (s *server) problem(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, fmt.Sprintf(format, a...))
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/invoke" {
		http.Error(w, "POST /invoke only", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	state := r.Header.Get("X-Sfnlocal-State")
	arn := r.Header.Get("X-Sfnlocal-Function")
	fn, ok := statemachine.FunctionByARN(arn)
	if !ok {
		s.problem("state %s: Resource %q is not one of statemachine.Functions", state, arn)
		http.Error(w, "unknown function "+arn, http.StatusNotFound)
		return
	}
	h := s.handlers[fn.Name]
	if h == nil {
		s.problem("state %s: no handler for function %s", state, fn.Name)
		http.Error(w, "no handler for "+fn.Name, http.StatusNotFound)
		return
	}

	// As aws-lambda-go: a json.Decoder decodes the payload into the
	// handler's argument type (here json.RawMessage); a decode error is
	// returned as the handler's error.
	var payload json.RawMessage
	inv := Invocation{State: state, Function: fn.Name, Payload: json.RawMessage(body)}
	out, herr := func() (out any, err error) {
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&payload); err != nil {
			return nil, err
		}
		defer func() {
			if v := recover(); v != nil {
				err = panicBody(v)
			}
		}()
		return h(r.Context(), payload)
	}()
	var resp []byte
	if herr != nil {
		eb := errorBody(herr)
		inv.Error = eb.Type
		resp, _ = json.Marshal(eb)
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
	} else {
		// As aws-lambda-go: json.Encoder, HTML escaping off.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			eb := errorBody(err)
			inv.Error = eb.Type
			resp, _ = json.Marshal(eb)
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
		} else {
			resp = buf.Bytes()
		}
	}
	s.mu.Lock()
	s.calls = append(s.calls, inv)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(resp)
}

// Run executes one state machine run and returns its outcome. An error
// means the run could not be made or the harness saw a problem (a Task with
// no handler, a Resource that is no known function); a failed execution is
// not an error: see Result.Status.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := CheckTools(); err != nil {
		return nil, err
	}
	def := o.Definition
	if def == "" {
		d, err := statemachine.LocalDefinition()
		if err != nil {
			return nil, err
		}
		def = d
	}
	var input []byte
	switch v := o.Input.(type) {
	case json.RawMessage:
		input = v
	case []byte:
		input = v
	case nil:
		input = []byte("{}")
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("sfnlocal: input: %w", err)
		}
		input = b
	}
	scale := o.WaitScale
	if scale == 0 {
		scale = 1
	}

	dir, err := os.MkdirTemp("", "sfnlocal-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	defPath := filepath.Join(dir, "definition.json")
	inPath := filepath.Join(dir, "input.json")
	if err := os.WriteFile(defPath, []byte(def), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(inPath, input, 0o600); err != nil {
		return nil, err
	}

	srv := &server{handlers: o.Handlers}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	cmd := exec.CommandContext(ctx, "node", filepath.Join(Dir(), "run.mjs"),
		"--definition", defPath, "--input", inPath,
		"--url", "http://"+ln.Addr().String(),
		"--wait-scale", strconv.FormatFloat(scale, 'g', -1, 64))
	cmd.Dir = Root()
	var stderr bytes.Buffer
	if o.Stderr != nil {
		cmd.Stderr = io.MultiWriter(&stderr, o.Stderr)
	} else {
		cmd.Stderr = &stderr
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sfnlocal: starting node: %w", err)
	}

	res := &Result{}
	var final *Event
	var parseErr error
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			if parseErr == nil {
				parseErr = fmt.Errorf("sfnlocal: bad event line %q: %w", sc.Text(), err)
			}
			continue
		}
		if ev.Type == "Result" {
			e := ev
			final = &e
		} else {
			res.Events = append(res.Events, ev)
		}
		if o.Events != nil {
			o.Events(ev)
		}
	}
	waitErr := cmd.Wait()

	srv.mu.Lock()
	res.Invocations = append(res.Invocations, srv.calls...)
	problems := append([]string(nil), srv.problems...)
	srv.mu.Unlock()

	if waitErr != nil || final == nil {
		msg := strings.TrimSpace(stderr.String())
		if final != nil && final.Cause != "" {
			msg = final.Cause + "\n" + msg
		}
		return res, fmt.Errorf("sfnlocal: node run.mjs: %v: %s", waitErr, msg)
	}
	if parseErr != nil {
		return res, parseErr
	}
	res.Status = final.Status
	res.Output = final.Output
	res.Error = final.Error
	res.Cause = final.Cause
	if len(problems) > 0 {
		return res, fmt.Errorf("sfnlocal: %s", strings.Join(problems, "; "))
	}
	return res, nil
}

// Validate checks a definition with asl-validator (validate.mjs): the JSON
// schema of the States Language, JSONPath syntax and Resource ARNs.
func Validate(ctx context.Context, definition string) error {
	if err := CheckTools(); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(Dir(), "validate.mjs"))
	cmd.Dir = Root()
	cmd.Stdin = strings.NewReader(definition)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("sfnlocal: asl-validator: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
