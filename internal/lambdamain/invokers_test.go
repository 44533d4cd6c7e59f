package lambdamain

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/seedrepl/seedrepl/internal/sferr"
	"github.com/seedrepl/seedrepl/internal/steps"
	"github.com/seedrepl/seedrepl/statemachine"
)

// Every Task state has exactly one invoker and one Lambda main, and the main
// starts the handler of its own state.
func TestInvokersCoverEveryState(t *testing.T) {
	inv := Invokers(&steps.Steps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var want, got []string
	for _, f := range statemachine.Functions {
		want = append(want, f.Name)
		src, err := os.ReadFile(filepath.Join("..", "..", "lambdas", f.Dir, "main.go"))
		if err != nil {
			t.Errorf("lambdas/%s/main.go: %v", f.Dir, err)
		} else if !strings.Contains(string(src), `"`+f.Name+`", (*steps.Steps).`+f.Name+`)`) {
			t.Errorf("lambdas/%s/main.go does not start %s", f.Dir, f.Name)
		}
	}
	for name := range inv {
		got = append(got, name)
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(want, ",") != strings.Join(got, ",") {
		t.Fatalf("invokers %v\nstates   %v", got, want)
	}
}

// A bad input reaches the caller under its declared name, through the same boundary as a Lambda.
func TestInvokerClassifiesErrors(t *testing.T) {
	inv := Invokers(&steps.Steps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_, err := inv["ValidateInput"](context.Background(), json.RawMessage(`{"migrationId":"x"}`))
	if err == nil || sferr.Name(err) != "InvalidInput" {
		t.Fatalf("ValidateInput of a bad input: %v (name %q)", err, sferr.Name(err))
	}
}

// Every log line of a step carries the run's labels: migrationId, executionId, step.
func TestLogLinesCarryTheRunsLabels(t *testing.T) {
	var buf strings.Builder
	s := &steps.Steps{Log: slog.New(slog.NewJSONHandler(&buf, nil))}
	doc := `{"migrationId":"orders-1","mode":"subscription","executionId":"arn:aws:states:us-east-1:000000000000:execution:seedrepl-migration:x"}`
	if _, err := Invokers(s)["Report"](context.Background(), json.RawMessage(doc)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("no log line")
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		if m["migrationId"] != "orders-1" || m["executionId"] == nil || m["executionId"] == "" || m["step"] != "Report" {
			t.Errorf("line without the run's labels: %s", l)
		}
	}
}
