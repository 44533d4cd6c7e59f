package steps

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/seedrepl/seedrepl/internal/sferr"
)

func readExample(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExamplesAreValid(t *testing.T) {
	s := &Steps{}
	for _, name := range []string{"subscription.json", "dms.json"} {
		b, _ := os.ReadFile("../../examples/" + name)
		p, err := s.ValidateInput(context.Background(), b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch name {
		case "subscription.json":
			if p.Plugin != "pgoutput" || !p.Upgrade || p.Names.Snapshot != "seedrepl-orders-2025-06-snap" ||
				p.Names.Slot != "seedrepl_orders_2025_06" || len(p.Names.Readers) != 2 || p.Names.DMSTask != "" {
				t.Errorf("plan %+v", p)
			}
		case "dms.json":
			if p.Plugin != "test_decoding" || p.Upgrade || p.Names.Writer != "ledger-aurora-writer" ||
				p.Names.Readers[2] != "ledger-aurora-reader-3" || p.Names.DMSTask != "seedrepl-ledger-dms-1-task" {
				t.Errorf("plan %+v", p)
			}
		}
	}
}

// set changes a copy of an example at a dotted path ("" value deletes).
func set(m map[string]any, path string, v any) map[string]any {
	b, _ := json.Marshal(m)
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	parts := strings.Split(path, ".")
	node := c
	for _, p := range parts[:len(parts)-1] {
		node = node[p].(map[string]any)
	}
	if v == nil {
		delete(node, parts[len(parts)-1])
	} else {
		node[parts[len(parts)-1]] = v
	}
	return c
}

func TestBadInputsNameTheField(t *testing.T) {
	sub := readExample(t, "subscription.json")
	dms := readExample(t, "dms.json")
	secret := "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"
	for _, c := range []struct {
		name  string
		in    map[string]any
		field string
		fix   string // part of the message's fix
	}{
		{"password field", set(sub, "source.password", "hunter2"), "/source", "never a password"},
		{"connection string", set(sub, "source.dsn", "postgres://u:p@h/db"), "/source", "remove the field"},
		{"unknown top-level", set(sub, "extra", 1), "/", "remove the field"},
		{"bad mode", set(sub, "mode", "copy"), "/mode", "subscription"},
		{"missing mode", set(sub, "mode", nil), "/", "native publication"},
		{"bad migration id", set(sub, "migrationId", "Orders_1"), "/migrationId", "a-z"},
		{"double hyphen", set(sub, "migrationId", "a--b"), "/migrationId", "hyphens"},
		{"not a secret arn", set(sub, "source.adminSecretArn", "arn:aws:s3:::bucket"), "/source/adminSecretArn", "RDS-format"},
		{"replication = admin", set(sub, "source.replicationSecretArn", sub["source"].(map[string]any)["adminSecretArn"]), "/source/replicationSecretArn", "dedicated role"},
		{"secret in another region", set(sub, "source.replicationSecretArn", strings.Replace(secret, "eu-west-1", "us-east-1", 1)), "/source/replicationSecretArn", "region"},
		{"too many readers", set(sub, "target.readers", 16), "/target/readers", "0 to 15"},
		{"missing readers", set(sub, "target.readers", nil), "/target", "Number of reader"},
		{"bad instance class", set(sub, "target.instanceClass", "r6g.large"), "/target/instanceClass", "db.r6g.large"},
		{"bad security group", set(sub, "target.vpcSecurityGroupIds", []any{"default"}), "/target/vpcSecurityGroupIds/0", ""},
		{"tables and schemas", set(sub, "scope.tables", []any{"public.t"}), "/scope", ""},
		{"empty scope", set(sub, "scope.schemas", nil), "/scope", ""},
		{"bad table name", set(dms, "scope.tables", []any{"public.t; drop table x"}), "/scope/tables/0", "schema.table"},
		{"dms without section", set(dms, "dms", nil), "/", "DMS path"},
		{"dms section in subscription mode", set(sub, "dms", dms["dms"]), "/", ""},
		{"subscription section in dms mode", set(dms, "subscription", map[string]any{"sslmode": "require"}), "/", ""},
		{"bad sslmode", set(sub, "subscription.sslmode", "prefer"), "/subscription/sslmode", "require"},
		{"negative lag", set(sub, "verify.maxLagBytes", -1), "/verify/maxLagBytes", "confirmed_flush_lsn"},
		{"cluster id ending in a hyphen", set(dms, "target.clusterId", "ledger-"), "/target/clusterId", "single hyphens"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, _ := json.Marshal(c.in)
			_, err := (&Steps{}).ValidateInput(context.Background(), b)
			if err == nil {
				t.Fatalf("accepted")
			}
			if sferr.Name(err) != "InvalidInput" {
				t.Errorf("error type %s, want InvalidInput", sferr.Name(err))
			}
			msg := err.Error()
			if !strings.Contains(msg, "  - "+c.field+": ") {
				t.Errorf("message does not name %s:\n%s", c.field, msg)
			}
			if c.fix != "" && !strings.Contains(msg, c.fix) {
				t.Errorf("message lacks the fix %q:\n%s", c.fix, msg)
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "u:p@h") {
				t.Errorf("message echoes a secret value:\n%s", msg)
			}
		})
	}
}

func TestNotJSON(t *testing.T) {
	_, err := (&Steps{}).ValidateInput(context.Background(), json.RawMessage(`[1`))
	if sferr.Name(err) != "InvalidInput" {
		t.Fatalf("%v", err)
	}
}
