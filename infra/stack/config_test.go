package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seedrepl/seedrepl/statemachine"
)

// Pure Go: no CDK, no node.

func TestConfigErrorsNameTheKeyAndTheFix(t *testing.T) {
	root := t.TempDir()
	cases := []struct {
		name string
		set  map[string]any
		del  []string
		want []string
	}{
		{"missing vpc", nil, []string{KeyVpcID},
			[]string{`context "vpcId": missing; pass -c vpcId=vpc-0123456789abcdef0 or set it in cdk.json`}},
		{"missing secrets", nil, []string{KeySecretARNs}, []string{`context "secretArns": missing`}},
		{"bad subnet", map[string]any{KeyPrivateSubnetIDs: "subnet-xyz,subnet-0123456789abcdef0"}, nil,
			[]string{`context "privateSubnetIds": "subnet-xyz" is not valid`}},
		{"partial secret ARN", map[string]any{KeySecretARNs: "arn:aws:secretsmanager:eu-west-1:111122223333:secret:seedrepl/src"}, nil,
			[]string{`context "secretArns": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:seedrepl/src" is not valid`}},
		{"subnets vs zones", map[string]any{KeyAvailabilityZones: "eu-west-1a,eu-west-1b,eu-west-1c"}, nil,
			[]string{`context "privateSubnetIds": 2 subnets for 3 availability zones`}},
		{"zone outside region", map[string]any{KeyRegion: "us-east-1"}, nil,
			[]string{`context "availabilityZones": "eu-west-1a" is not in region "us-east-1"`}},
		{"schedule without input", map[string]any{KeyRehearsalSchedule: "cron(0 2 ? * SAT *)"}, nil,
			[]string{`context "rehearsalInput": missing while rehearsalSchedule is set`}},
		{"input not a rehearsal", map[string]any{KeyRehearsalSchedule: "rate(7 days)", KeyRehearsalInput: `{"rehearsal": false}`}, nil,
			[]string{`context "rehearsalInput": does not say "rehearsal": true`}},
		{"bad threshold", map[string]any{KeyAlarmFreeStorage: "lots"}, nil,
			[]string{`context "alarmFreeStorageSpaceBytes": "lots" is not a size`}},
		{"bad retention", map[string]any{KeyLogRetentionDays: float64(42)}, nil,
			[]string{`context "logRetentionDays": 42 is not a CloudWatch Logs retention`}},
		{"no dist", map[string]any{KeyDistDir: filepath.Join(root, "nope")}, nil,
			[]string{`context "distDir": ` + filepath.Join(root, "nope") + ` lacks validate-input/bootstrap`, "run `make build` first"}},
	}
	dist, err := fakeDist()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dist)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := testContext(dist)
			for k, v := range c.set {
				ctx[k] = v
			}
			for _, k := range c.del {
				delete(ctx, k)
			}
			_, err := ConfigFromContext(func(k string) any { return ctx[k] }, root)
			if err == nil {
				t.Fatalf("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks\n%s", err, w)
				}
			}
		})
	}
}

func TestConfigDefaultsAndParsing(t *testing.T) {
	dist, err := fakeDist()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dist)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "examples", "r.json"), []byte(`{"rehearsal": true, "migrationId": "m1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(dist)
	ctx[KeyPrivateSubnetIDs] = "subnet-0123456789abcdef0, subnet-0fedcba9876543210" // -c form
	ctx[KeyAlarmSlotLag] = "1.5GiB"
	ctx[KeyDBPort] = "6432"
	ctx[KeyRehearsalSchedule] = "rate(7 days)"
	ctx[KeyRehearsalInput] = "examples/r.json"
	c, err := ConfigFromContext(func(k string) any { return ctx[k] }, root)
	if err != nil {
		t.Fatal(err)
	}
	if c.StackName != DefaultStackName || c.CABundlePath != DefaultCABundlePath || c.LogRetentionDays != DefaultLogRetentionDays ||
		c.RehearsalTimezone != "UTC" || c.DBPort != 6432 || len(c.PrivateSubnetIDs) != 2 {
		t.Errorf("defaults: %+v", c)
	}
	if c.Alarms.OldestReplicationSlotLag != 1.5*(1<<30) || c.Alarms.TransactionLogsDiskUsage != DefaultTxLogsDiskBytes {
		t.Errorf("thresholds: %+v", c.Alarms)
	}
	if !c.RehearsalEnabled() || c.RehearsalInput != `{"migrationId":"m1","rehearsal":true}` {
		t.Errorf("rehearsal: %q %q", c.RehearsalSchedule, c.RehearsalInput)
	}
	delete(ctx, KeyRehearsalSchedule)
	delete(ctx, KeyRehearsalInput)
	if c, err = ConfigFromContext(func(k string) any { return ctx[k] }, root); err != nil || c.RehearsalEnabled() {
		t.Errorf("without schedule: enabled=%v err=%v", c.RehearsalEnabled(), err)
	}
}

func TestStubMissingCode(t *testing.T) {
	t.Cleanup(RemoveStubs)
	root := t.TempDir()
	ctx := testContext(filepath.Join(root, "dist"))
	ctx[KeyStubMissingCode] = "true"
	c, err := ConfigFromContext(func(k string) any { return ctx[k] }, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.StubbedFunctions) != len(statemachine.Functions) {
		t.Fatalf("stubbed %v", c.StubbedFunctions)
	}
	dir, err := c.CodeDir(statemachine.Functions[0])
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "bootstrap")); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("stub bootstrap: %v", err)
	}
}

func TestPermissionsTableIsSane(t *testing.T) {
	for _, f := range statemachine.Functions {
		p, ok := Permissions[f.Name]
		if !ok {
			t.Errorf("no row for %s", f.Name)
			continue
		}
		sids := map[string]bool{}
		for _, st := range p.Statements {
			if st.Sid == "" || sids[st.Sid] {
				t.Errorf("%s: empty or duplicate Sid %q", f.Name, st.Sid)
			}
			sids[st.Sid] = true
			if len(st.Actions) == 0 || len(st.Resources) == 0 {
				t.Errorf("%s/%s: no actions or resources", f.Name, st.Sid)
			}
		}
	}
}
