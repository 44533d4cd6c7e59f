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
