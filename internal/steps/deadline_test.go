package steps

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sferr"
)

// A poll past Config.PollTimeout fails with ResourceFailed (the run rolls
// back) instead of looping forever; before it, or with no timeout, it waits.
func TestPollTimeout(t *testing.T) {
	s := &Steps{Config: Config{PollTimeout: time.Hour}}
	if err := s.pollExpired("seedrepl-x-aurora", "creating", 59*time.Minute); err != nil {
		t.Fatalf("within the timeout: %v", err)
	}
	err := s.pollExpired("seedrepl-x-aurora", "creating", 61*time.Minute)
	if err == nil || sferr.Name(err) != "ResourceFailed" {
		t.Fatalf("past the timeout: %v (%s)", err, sferr.Name(err))
	}
	if err := (&Steps{}).pollExpired("x", "creating", 1000*time.Hour); err != nil {
		t.Fatalf("no timeout configured: %v", err)
	}
	if c := ConfigFromEnv(); c.PollTimeout != 24*time.Hour && os.Getenv("SEEDREPL_POLL_TIMEOUT") == "" {
		t.Fatalf("default poll timeout %s", c.PollTimeout)
	}
}

// A partitioned table's leaf partitions get selection rules of their own:
// test_decoding names the partition, not the parent, in every change.
func TestTableMappingsListPartitions(t *testing.T) {
	m, err := TableMappings(pgops.Scope{Tables: []string{"public.measurements", "public.orders"}},
		[]pgops.Table{{Schema: "public", Name: "measurements_2024"}, {Schema: "public", Name: "measurements_2025"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"table-name":"measurements"`, `"table-name":"orders"`, `"table-name":"measurements_2024"`, `"table-name":"measurements_2025"`} {
		if !strings.Contains(m, want) {
			t.Errorf("mappings %s lack %s", m, want)
		}
	}
}

// A secret the deployment may not read is refused by ValidateInput, naming the field.
func TestValidateInputRefusesSecretsNotAllowed(t *testing.T) {
	raw, err := os.ReadFile("../../examples/subscription.json")
	if err != nil {
		t.Fatal(err)
	}
	var in Input
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	s := &Steps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Config: Config{AllowedSecretARNs: []string{in.Source.AdminSecretARN}}}
	_, err = s.ValidateInput(context.Background(), raw)
	if err == nil || sferr.Name(err) != "InvalidInput" || !strings.Contains(err.Error(), "/source/replicationSecretArn") {
		t.Fatalf("replication secret outside the allowed list: %v", err)
	}
	s.Config.AllowedSecretARNs = append(s.Config.AllowedSecretARNs, in.Source.ReplicationSecretARN, in.Target.AdminSecretARN)
	if _, err := s.ValidateInput(context.Background(), raw); err != nil {
		t.Fatalf("every secret allowed: %v", err)
	}
}
