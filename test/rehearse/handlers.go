package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/test/sfnlocal"
)

// buildHandlers wires every Task state to its real handler, with the real SDK
// clients (pointed at the local cloud by AWS_ENDPOINT_URL_*) and the same
// error boundary as the Lambdas. Handler logs go to handlers.log.
func buildHandlers(ctx context.Context, dir string) (map[string]sfnlocal.Handler, func(), error) {
	s, err := lambdamain.New(ctx)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Create(filepath.Join(dir, "handlers.log"))
	if err != nil {
		return nil, nil, err
	}
	s.Log = slog.New(slog.NewJSONHandler(f, nil))
	out := map[string]sfnlocal.Handler{}
	for name, inv := range lambdamain.Invokers(s) {
		out[name] = sfnlocal.Handler(inv)
	}
	return out, func() { f.Close() }, nil
}
