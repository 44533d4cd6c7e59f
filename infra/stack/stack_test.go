package stack

// CDK assertion tests. One synth of an app holding two stacks (rehearsal
// schedule off and on) is shared by every test; nothing runs in parallel
// (jsii is one Node process). A failed CDK assertion panics: checkCDK turns
// that into t.Errorf. Without node the tests fail, loudly.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"

	"github.com/seedrepl/seedrepl/internal/grants"
	"github.com/seedrepl/seedrepl/statemachine"
)

// issueTable is the grants table (internal/grants), the contract the
// handlers are bound by: permissions must grant exactly it.
var issueTable = grants.Actions

var testSecrets = []string{
	"arn:aws:secretsmanager:eu-west-1:111122223333:secret:seedrepl/src-repl-AbCdEf",
	"arn:aws:secretsmanager:eu-west-1:111122223333:secret:seedrepl/aurora-GhIjKl",
}

// testContext is a valid configuration; distDir is filled in per run.
func testContext(dist string) map[string]any {
	return map[string]any{
		KeyVpcID:             "vpc-0123456789abcdef0",
		KeyPrivateSubnetIDs:  []any{"subnet-0123456789abcdef0", "subnet-0fedcba9876543210"},
		KeyAvailabilityZones: []any{"eu-west-1a", "eu-west-1b"},
		KeySourceInstanceID:  "orders-pg",
		KeySecretARNs:        []any{testSecrets[0], testSecrets[1]},
		KeyDistDir:           dist,
		KeyAlarmSlotLag:      "10GiB",
		KeyAlarmFreeStorage:  float64(5 << 30),
	}
}

type cxMessage = cxapi.SynthesisMessage

type synthResult struct {
	app       awscdk.App
	plain     *Stack // schedule not configured
	scheduled *Stack // schedule configured
	tmpl      map[string]any
	tmplSched map[string]any
	took      time.Duration
	err       error
}

var (
	tempDirs  []string // removed after the tests
	synthOnce sync.Once
	synthed   synthResult
)

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("node"); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: infra/stack tests need node (CDK runs on jsii): install Node.js >= 20 and run `npm ci`")
		os.Exit(1)
	}
	code := m.Run()
	jsii.Close()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// fakeDist writes a throwaway dist/<dir>/bootstrap per function.
func fakeDist() (string, error) {
	dir, err := os.MkdirTemp("", "seedrepl-dist-")
	if err != nil {
		return "", err
	}
	tempDirs = append(tempDirs, dir)
	for _, f := range statemachine.Functions {
		if err := os.MkdirAll(filepath.Join(dir, f.Dir), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, f.Dir, "bootstrap"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func synth(t *testing.T) *synthResult {
	t.Helper()
	synthOnce.Do(func() {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				synthed.err = fmt.Errorf("synth panicked: %v", r)
			}
			synthed.took = time.Since(start)
		}()
		dist, err := fakeDist()
		if err != nil {
			synthed.err = err
			return
		}
		root, err := FindRepoRoot(".")
		if err != nil {
			synthed.err = err
			return
		}
		outdir, err := os.MkdirTemp("", "seedrepl-cdkout-")
		if err != nil {
			synthed.err = err
			return
		}
		tempDirs = append(tempDirs, outdir)
		app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir)})
		ctx := testContext(dist)
		cfg, err := ConfigFromContext(func(k string) any { return ctx[k] }, root)
		if err != nil {
			synthed.err = err
			return
		}
		plain, err := New(app, cfg)
		if err != nil {
			synthed.err = err
			return
		}
		ctx[KeyStackName] = "SeedreplScheduled"
		ctx[KeyRehearsalSchedule] = "cron(0 3 ? * SUN *)"
		ctx[KeyRehearsalInput] = `{"migrationId":"orders-rehearsal","rehearsal":true}`
		ctx[KeyRehearsalTimezone] = "Europe/Paris"
		ctx[KeyRegion] = "eu-west-1"
		ctx[KeyAccount] = "111122223333"
		cfg2, err := ConfigFromContext(func(k string) any { return ctx[k] }, root)
		if err != nil {
			synthed.err = err
			return
		}
		scheduled, err := New(app, cfg2)
		if err != nil {
			synthed.err = err
			return
		}
		ApplyNag(app, false)
		synthed.app, synthed.plain, synthed.scheduled = app, plain, scheduled
		synthed.tmpl = *assertions.Template_FromStack(plain.Stack, nil).ToJSON()
		synthed.tmplSched = *assertions.Template_FromStack(scheduled.Stack, nil).ToJSON()
	})
	if synthed.err != nil {
		t.Fatalf("synth: %v", synthed.err)
	}
	return &synthed
}

// checkCDK runs a CDK assertion; a failed one panics inside jsii.
func checkCDK(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

func resources(tmpl map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tmpl["Resources"].(map[string]any) {
		m := r.(map[string]any)
		if m["Type"] == typ {
			out[id] = m
		}
	}
	return out
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// flat renders a CloudFormation value as a string: Fn::Join concatenated,
// Ref as ${Name}, Fn::GetAtt as ${Id.Attr}.
func flat(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case map[string]any:
		if j, ok := t["Fn::Join"].([]any); ok {
			var b strings.Builder
			for _, p := range j[1].([]any) {
				b.WriteString(flat(p))
			}
			return b.String()
		}
		if r, ok := t["Ref"].(string); ok {
			return "${" + r + "}"
		}
		if g, ok := t["Fn::GetAtt"].([]any); ok {
			return fmt.Sprintf("${%v.%v}", g[0], g[1])
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

type stmt struct {
	Sid        string
	Effect     string
	Actions    []string
	Resources  []string
	Conditions map[string]any
}

func statements(doc any) []stmt {
	var out []stmt
	for _, s := range list(doc.(map[string]any)["Statement"]) {
		m := s.(map[string]any)
		st := stmt{Effect: fmt.Sprint(m["Effect"])}
		st.Sid, _ = m["Sid"].(string)
		for _, a := range list(m["Action"]) {
			st.Actions = append(st.Actions, a.(string))
		}
		for _, r := range list(m["Resource"]) {
			st.Resources = append(st.Resources, flat(r))
		}
		st.Conditions, _ = m["Condition"].(map[string]any)
		out = append(out, st)
	}
	return out
}

// functionsByState maps Task state name -> (logical id, properties) of its Lambda.
func functionsByState(t *testing.T, tmpl map[string]any) map[string]struct {
	ID    string
	Props map[string]any
} {
	t.Helper()
	byName := map[string]struct {
		ID    string
		Props map[string]any
	}{}
	for id, r := range resources(tmpl, "AWS::Lambda::Function") {
		p := props(r)
		name, _ := p["FunctionName"].(string)
		f, ok := statemachine.FunctionByARN(name)
		if !ok {
			t.Errorf("Lambda %s has FunctionName %q, which is no statemachine.Function", id, name)
			continue
		}
		byName[f.Name] = struct {
			ID    string
			Props map[string]any
		}{id, p}
	}
	return byName
}

// roleStatements returns the "api" inline policy statements of each state's role.
func roleStatements(t *testing.T, tmpl map[string]any) map[string][]stmt {
	t.Helper()
	roles := resources(tmpl, "AWS::IAM::Role")
	out := map[string][]stmt{}
	for state, fn := range functionsByState(t, tmpl) {
		roleID := fmt.Sprint(fn.Props["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0])
		role, ok := roles[roleID]
		if !ok {
			t.Errorf("%s: role %s not found", state, roleID)
			continue
		}
		out[state] = nil
		for _, pol := range list(props(role)["Policies"]) {
			p := pol.(map[string]any)
			if p["PolicyName"] == "api" {
				out[state] = statements(p["PolicyDocument"])
			}
		}
		if mp := props(role)["ManagedPolicyArns"]; mp != nil {
			t.Errorf("%s: role has managed policies %v; want inline least-privilege policies only", state, mp)
		}
	}
	// No other policy may be attached to the Lambda roles.
	for id, p := range resources(tmpl, "AWS::IAM::Policy") {
		for _, r := range list(props(p)["Roles"]) {
			if strings.Contains(flat(r), "Function") || strings.Contains(flat(r), "Role") && !strings.Contains(flat(r), "StateMachine") {
				t.Errorf("extra IAM policy %s attached to %s", id, flat(r))
			}
		}
	}
	return out
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func TestSynthTime(t *testing.T) {
	r := synth(t)
	t.Logf("shared synth of two stacks (with cdk-nag) took %s", r.took.Round(time.Millisecond))
}

func TestLambdaRuntimeArchitectureAndSizing(t *testing.T) {
	r := synth(t)
	fns := functionsByState(t, r.tmpl)
	if len(fns) != len(statemachine.Functions) {
		t.Fatalf("%d Lambdas, want one per statemachine.Functions entry (%d)", len(fns), len(statemachine.Functions))
	}
	for _, f := range statemachine.Functions {
		fn, ok := fns[f.Name]
		if !ok {
			t.Errorf("no Lambda for Task state %s", f.Name)
			continue
		}
		p := fn.Props
		if p["Runtime"] != "provided.al2023" || p["Handler"] != "bootstrap" {
			t.Errorf("%s: runtime %v handler %v, want provided.al2023 / bootstrap", f.Name, p["Runtime"], p["Handler"])
		}
		if !reflect.DeepEqual(p["Architectures"], []any{"arm64"}) {
			t.Errorf("%s: architectures %v, want [arm64]", f.Name, p["Architectures"])
		}
		if p["MemorySize"] != float64(256) {
			t.Errorf("%s: memory %v, want 256", f.Name, p["MemorySize"])
		}
		if p["Timeout"] != float64(Timeout(f.Name)) {
			t.Errorf("%s: timeout %v, want %d", f.Name, p["Timeout"], Timeout(f.Name))
		}
		lc, _ := p["LoggingConfig"].(map[string]any)
		if lc["LogFormat"] != "JSON" || lc["LogGroup"] == nil {
			t.Errorf("%s: logging %v, want JSON to its own log group", f.Name, lc)
		}
		vc, _ := p["VpcConfig"].(map[string]any)
		if !reflect.DeepEqual(vc["SubnetIds"], []any{"subnet-0123456789abcdef0", "subnet-0fedcba9876543210"}) || len(list(vc["SecurityGroupIds"])) != 1 {
			t.Errorf("%s: VPC config %v, want the private subnets and the Lambda security group", f.Name, vc)
		}
		env := p["Environment"].(map[string]any)["Variables"].(map[string]any)
		if env[EnvSSLMode] != "verify-full" || env[EnvSSLRootCert] != DefaultCABundlePath ||
			env[EnvAllowedSecretARNs] != strings.Join(testSecrets, ",") {
			t.Errorf("%s: environment %v", f.Name, env)
		}
		_, topic := env[EnvTopicARN]
		_, dmsRole := env[EnvDMSSecretsRoleARN]
		if topic != (f.Name == "Notify") || dmsRole != (f.Name == "ConfigureDMS") {
			t.Errorf("%s: topic ARN set %v, DMS role set %v", f.Name, topic, dmsRole)
		}
		for k, v := range env {
			if regexp.MustCompile(`(?i)password|secret_value|token`).MatchString(k + fmt.Sprint(v)) {
				t.Errorf("%s: environment %s looks secret", f.Name, k)
			}
		}
	}
	checkCDK(t, "CDK HasResourceProperties", func() {
		assertions.Template_FromStack(r.plain.Stack, nil).ResourcePropertiesCountIs(jsii.String("AWS::Lambda::Function"),
			map[string]any{"Runtime": "provided.al2023", "Architectures": []any{"arm64"}}, jsii.Number(float64(len(statemachine.Functions))))
	})
}

// TestLambdaTimeoutsWithinASL: a Lambda must not outlive its Task state.
func TestLambdaTimeoutsWithinASL(t *testing.T) {
	var def map[string]any
	if err := json.Unmarshal([]byte(statemachine.Definition), &def); err != nil {
		t.Fatal(err)
	}
	ph := statemachine.Placeholders()
	var walk func(states map[string]any)
	walk = func(states map[string]any) {
		for name, s := range states {
			m := s.(map[string]any)
			if res, ok := m["Resource"].(string); ok && strings.HasPrefix(res, "${") {
				state := ph[strings.Trim(res, "${}")]
				if ts, ok := m["TimeoutSeconds"].(float64); ok && float64(Timeout(state)) > ts {
					t.Errorf("Task %s: Lambda timeout %ds exceeds the state's TimeoutSeconds %v", name, Timeout(state), ts)
				}
			}
			for _, b := range list(m["Branches"]) {
				walk(b.(map[string]any)["States"].(map[string]any))
			}
			for _, k := range []string{"Iterator", "ItemProcessor"} {
				if it, ok := m[k].(map[string]any); ok {
					walk(it["States"].(map[string]any))
				}
			}
		}
	}
	walk(def["States"].(map[string]any))
}

func TestStateMachineSubstitutionsResolveToTheRightFunction(t *testing.T) {
	r := synth(t)
	sms := resources(r.tmpl, "AWS::StepFunctions::StateMachine")
	if len(sms) != 1 {
		t.Fatalf("%d state machines, want 1", len(sms))
	}
	var sm map[string]any
	for _, v := range sms {
		sm = props(v)
	}
	if sm["DefinitionString"] != statemachine.Definition {
		t.Errorf("DefinitionString is not statemachine.Definition inline (an S3 asset or an edit?)")
	}
	subs := sm["DefinitionSubstitutions"].(map[string]any)
	used := statemachine.Used(statemachine.Definition)
	var keys []string
	for k := range subs {
		keys = append(keys, k)
	}
	if !reflect.DeepEqual(sorted(keys), sorted(used)) {
		t.Errorf("substitution keys %v, ASL placeholders %v", sorted(keys), used)
	}
	fns := functionsByState(t, r.tmpl)
	for _, f := range statemachine.Functions {
		v, ok := subs[f.Placeholder]
		if !ok {
			t.Errorf("no substitution for ${%s}", f.Placeholder)
			continue
		}
		want := fmt.Sprintf("${%s.Arn}", fns[f.Name].ID)
		if got := flat(v); got != want {
			t.Errorf("${%s} = %s, want %s (function %s%s)", f.Placeholder, got, want, statemachine.FunctionPrefix, f.Dir)
		}
	}
	// The substituted definition is valid JSON and every Task names a known function.
	local, err := statemachine.LocalDefinition()
	if err != nil || !json.Valid([]byte(local)) {
		t.Errorf("local substitution: %v", err)
	}
	// Invoke permission: exactly these functions, unqualified.
	var invoke []string
	for _, p := range resources(r.tmpl, "AWS::IAM::Policy") {
		for _, st := range statements(props(p)["PolicyDocument"]) {
			for _, a := range st.Actions {
				if strings.HasPrefix(a, "lambda:") {
					if a != "lambda:InvokeFunction" {
						t.Errorf("state machine role has %s", a)
					}
					invoke = append(invoke, st.Resources...)
				}
			}
		}
	}
	var want []string
	for _, f := range statemachine.Functions {
		want = append(want, fmt.Sprintf("${%s.Arn}", fns[f.Name].ID))
	}
	if !reflect.DeepEqual(sorted(invoke), sorted(want)) {
		t.Errorf("lambda:InvokeFunction on\n %v\nwant\n %v", sorted(invoke), sorted(want))
	}
}

func TestStateMachineLoggingAndTracing(t *testing.T) {
	r := synth(t)
	for _, v := range resources(r.tmpl, "AWS::StepFunctions::StateMachine") {
		p := props(v)
		lc := p["LoggingConfiguration"].(map[string]any)
		if lc["IncludeExecutionData"] != false {
			t.Errorf("IncludeExecutionData = %v, want false", lc["IncludeExecutionData"])
		}
		if lc["Level"] != "ALL" && lc["Level"] != "ERROR" {
			t.Errorf("log level %v", lc["Level"])
		}
		if len(list(lc["Destinations"])) != 1 {
			t.Errorf("log destinations %v", lc["Destinations"])
		}
		if tc, _ := p["TracingConfiguration"].(map[string]any); tc["Enabled"] != true {
			t.Errorf("tracing %v, want enabled", tc)
		}
	}
	checkCDK(t, "CDK HasResourceProperties(logging)", func() {
		assertions.Template_FromStack(r.plain.Stack, nil).HasResourceProperties(jsii.String("AWS::StepFunctions::StateMachine"),
			map[string]any{"LoggingConfiguration": map[string]any{"IncludeExecutionData": false}})
	})
}

func TestIAMFunctionActionsEqualTheTable(t *testing.T) {
	// The data matches the issue's table...
	if len(Permissions) != len(issueTable) {
		t.Errorf("Permissions has %d rows, the issue %d", len(Permissions), len(issueTable))
	}
	for state, want := range issueTable {
		if got := Permissions[state].Actions; !reflect.DeepEqual(sorted(got), sorted(want)) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("Permissions[%s].Actions = %v, issue says %v", state, got, sorted(want))
		}
	}
	// ...and the synthesized roles grant exactly the data.
	r := synth(t)
	for state, sts := range roleStatements(t, r.tmpl) {
		seen := map[string]bool{}
		sids := map[string]bool{}
		for _, st := range sts {
			if sids[st.Sid] {
				t.Errorf("%s: duplicate Sid %s", state, st.Sid)
			}
			sids[st.Sid] = true
			if st.Effect != "Allow" {
				continue
			}
			for _, a := range st.Actions {
				seen[a] = true
			}
		}
		var got []string
		for a := range seen {
			got = append(got, a)
		}
		if want := issueTable[state]; !reflect.DeepEqual(sorted(got), sorted(want)) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: role allows %v, table says %v", state, sorted(got), sorted(want))
		}
	}
}

func TestIAMNoWildcardActionsAndScopedResources(t *testing.T) {
	r := synth(t)
	for state, sts := range roleStatements(t, r.tmpl) {
		for _, st := range sts {
			for _, a := range st.Actions {
				if strings.Contains(a, "*") {
					t.Errorf("%s/%s: wildcard action %s", state, st.Sid, a)
				}
			}
			if st.Effect != "Allow" {
				continue
			}
			for _, res := range st.Resources {
				if res != "*" {
					continue
				}
				for _, a := range st.Actions {
					// Only actions without resource-level permissions may use "*".
					if !strings.HasPrefix(a, "dms:Describe") {
						t.Errorf("%s/%s: %s on \"*\"", state, st.Sid, a)
					}
				}
			}
			for _, a := range st.Actions {
				if strings.HasPrefix(a, "rds:") {
					for _, res := range st.Resources {
						if !strings.HasPrefix(res, "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:") {
							t.Errorf("%s/%s: %s on %s, want an RDS ARN of this account and region", state, st.Sid, a, res)
						}
					}
				}
			}
		}
	}
}

func cond(st stmt, op, key string) string {
	m, _ := st.Conditions[op].(map[string]any)
	return fmt.Sprint(m[key])
}

func TestIAMDeletesAndModifiesAreTagConditioned(t *testing.T) {
	r := synth(t)
	wantKey := map[string]string{
		"rds:DeleteDBInstance": "rds:db-tag/" + TagManaged, "rds:DeleteDBCluster": "rds:cluster-tag/" + TagManaged,
		"rds:DeleteDBSnapshot": "rds:snapshot-tag/" + TagManaged, "rds:ModifyDBCluster": "rds:cluster-tag/" + TagManaged,
		"dms:DeleteReplicationTask": "aws:ResourceTag/" + TagManaged, "dms:StopReplicationTask": "aws:ResourceTag/" + TagManaged,
		"dms:DeleteEndpoint": "aws:ResourceTag/" + TagManaged, "dms:DeleteReplicationInstance": "aws:ResourceTag/" + TagManaged,
		"dms:StartReplicationTask": "aws:ResourceTag/" + TagManaged,
	}
	deletesSeen := 0
	for state, sts := range roleStatements(t, r.tmpl) {
		writesSource := false
		protected := false
		for _, st := range sts {
			if st.Effect == "Deny" {
				if st.Sid == "ProtectSourceInstance" && reflect.DeepEqual(st.Resources, []string{"arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:orders-pg"}) {
					protected = true
				}
				continue
			}
			for _, a := range st.Actions {
				if a == "rds:AddTagsToResource" || a == "rds:DeleteDBInstance" {
					if strings.Contains(strings.Join(st.Resources, " "), ":db:") {
						writesSource = true
					}
				}
				key, ok := wantKey[a]
				if !ok {
					if strings.Contains(a, ":Delete") {
						t.Errorf("%s: unconditioned delete %s", state, a)
					}
					if strings.Contains(a, ":Create") || strings.Contains(a, ":Restore") || a == "rds:AddTagsToResource" || a == "dms:AddTagsToResource" {
						if cond(st, "StringEquals", "aws:RequestTag/"+TagManaged) != "true" || cond(st, "Null", "aws:RequestTag/"+TagMigration) != "false" {
							t.Errorf("%s/%s: %s does not require the %s and %s tags in the request", state, st.Sid, a, TagManaged, TagMigration)
						}
					}
					continue
				}
				if st.Sid == "UseParameterGroups" { // ModifyDBCluster on parameter groups: no cluster tag exists there
					for _, res := range st.Resources {
						if !regexp.MustCompile(`:(cluster-pg|pg|og):\*$`).MatchString(res) {
							t.Errorf("%s/%s: untagged ModifyDBCluster on %s", state, st.Sid, res)
						}
					}
					continue
				}
				if strings.Contains(a, "Delete") {
					deletesSeen++
				}
				if cond(st, "StringEquals", key) != "true" {
					t.Errorf("%s/%s: %s without condition %s = true (conditions %v)", state, st.Sid, a, key, st.Conditions)
				}
			}
		}
		if writesSource && !protected {
			t.Errorf("%s: may tag or delete DB instances but lacks the Deny on the source instance", state)
		}
	}
	if deletesSeen < 10 {
		t.Errorf("only %d conditioned deletes seen; the test is not looking at the policies", deletesSeen)
	}
}

func TestIAMSecretsOnlyTheConfiguredARNs(t *testing.T) {
	r := synth(t)
	readers := 0
	for state, sts := range roleStatements(t, r.tmpl) {
		for _, st := range sts {
			for _, a := range st.Actions {
				if strings.HasPrefix(a, "secretsmanager:") {
					readers++
					if a != "secretsmanager:GetSecretValue" || !reflect.DeepEqual(sorted(st.Resources), sorted(testSecrets)) {
						t.Errorf("%s: %s on %v, want GetSecretValue on exactly %v", state, a, st.Resources, testSecrets)
					}
				}
			}
		}
	}
	want := 0
	for _, row := range issueTable {
		for _, a := range row {
			if a == "secretsmanager:GetSecretValue" {
				want++
			}
		}
	}
	if readers != want || want == 0 {
		t.Errorf("%d functions read secrets, the table says %d", readers, want)
	}
	// The DMS secrets-access role too; and PassRole only for it, only to DMS.
	roles := resources(r.tmpl, "AWS::IAM::Role")
	for id, role := range roles {
		if !strings.HasPrefix(id, "DMSSecretsAccessRole") {
			continue
		}
		for _, pol := range list(props(role)["Policies"]) {
			for _, st := range statements(pol.(map[string]any)["PolicyDocument"]) {
				if !reflect.DeepEqual(st.Actions, []string{"secretsmanager:GetSecretValue"}) || !reflect.DeepEqual(sorted(st.Resources), sorted(testSecrets)) {
					t.Errorf("DMS secrets role: %v on %v", st.Actions, st.Resources)
				}
			}
		}
		for _, st := range roleStatements(t, r.tmpl)["ConfigureDMS"] {
			if reflect.DeepEqual(st.Actions, []string{"iam:PassRole"}) {
				if !reflect.DeepEqual(st.Resources, []string{"${" + id + ".Arn}"}) || cond(st, "StringEquals", "iam:PassedToService") != "dms.amazonaws.com" {
					t.Errorf("ConfigureDMS PassRole: %v %v", st.Resources, st.Conditions)
				}
			}
		}
	}
}

func TestNotifyPublishesOnlyToTheTopic(t *testing.T) {
	r := synth(t)
	topics := resources(r.tmpl, "AWS::SNS::Topic")
	if len(topics) != 1 {
		t.Fatalf("%d topics", len(topics))
	}
	for id, tp := range topics {
		if props(tp)["KmsMasterKeyId"] == nil {
			t.Errorf("topic not KMS-encrypted")
		}
		sts := roleStatements(t, r.tmpl)["Notify"]
		if len(sts) != 1 || !reflect.DeepEqual(sts[0].Resources, []string{"${" + id + "}"}) {
			t.Errorf("Notify statements %+v, want sns:Publish on the topic only", sts)
		}
	}
	enforced := false
	for _, p := range resources(r.tmpl, "AWS::SNS::TopicPolicy") {
		for _, st := range statements(props(p)["PolicyDocument"]) {
			if st.Effect == "Deny" && cond(st, "Bool", "aws:SecureTransport") == "false" {
				enforced = true
			}
		}
	}
	if !enforced {
		t.Errorf("topic policy does not deny non-TLS publishing")
	}
}

func TestRehearsalSchedule(t *testing.T) {
	r := synth(t)
	check := func(tmpl map[string]any, wantState, wantExpr, wantTZ string, wantInput map[string]any) {
		t.Helper()
		ss := resources(tmpl, "AWS::Scheduler::Schedule")
		if len(ss) != 1 {
			t.Fatalf("%d schedules", len(ss))
		}
		sms := resources(tmpl, "AWS::StepFunctions::StateMachine")
		var smID string
		for id := range sms {
			smID = id
		}
		for _, s := range ss {
			p := props(s)
			if p["State"] != wantState || p["ScheduleExpression"] != wantExpr || p["ScheduleExpressionTimezone"] != wantTZ {
				t.Errorf("schedule %v %v %v, want %s %s %s", p["State"], p["ScheduleExpression"], p["ScheduleExpressionTimezone"], wantState, wantExpr, wantTZ)
			}
			target := p["Target"].(map[string]any)
			if flat(target["Arn"]) != "${"+smID+"}" {
				t.Errorf("schedule target %v, want the state machine", flat(target["Arn"]))
			}
			var in map[string]any
			if err := json.Unmarshal([]byte(target["Input"].(string)), &in); err != nil || !reflect.DeepEqual(in, wantInput) {
				t.Errorf("schedule input %v (%v), want %v", target["Input"], err, wantInput)
			}
			roleID := target["RoleArn"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
			role := resources(tmpl, "AWS::IAM::Role")[roleID]
			var acts, res []string
			for _, pol := range list(props(role)["Policies"]) {
				for _, st := range statements(pol.(map[string]any)["PolicyDocument"]) {
					acts = append(acts, st.Actions...)
					res = append(res, st.Resources...)
				}
			}
			if !reflect.DeepEqual(acts, []string{"states:StartExecution"}) || !reflect.DeepEqual(res, []string{"${" + smID + "}"}) {
				t.Errorf("schedule role: %v on %v, want states:StartExecution on the state machine only", acts, res)
			}
			trust := flat(props(role)["AssumeRolePolicyDocument"])
			if !strings.Contains(trust, "scheduler.amazonaws.com") {
				t.Errorf("schedule role trust: %s", trust)
			}
		}
	}
	check(r.tmpl, "DISABLED", "cron(0 2 ? * SAT *)", "UTC", map[string]any{"rehearsal": true})
	check(r.tmplSched, "ENABLED", "cron(0 3 ? * SUN *)", "Europe/Paris", map[string]any{"migrationId": "orders-rehearsal", "rehearsal": true})
}

func TestSourceAlarms(t *testing.T) {
	r := synth(t)
	alarms := resources(r.tmpl, "AWS::CloudWatch::Alarm")
	want := map[string]struct {
		threshold float64
		op        string
	}{
		"OldestReplicationSlotLag": {10 << 30, "GreaterThanThreshold"},
		"ReplicationSlotDiskUsage": {DefaultSlotDiskBytes, "GreaterThanThreshold"},
		"TransactionLogsDiskUsage": {DefaultTxLogsDiskBytes, "GreaterThanThreshold"},
		"FreeStorageSpace":         {5 << 30, "LessThanThreshold"},
	}
	topicID := ""
	for id := range resources(r.tmpl, "AWS::SNS::Topic") {
		topicID = id
	}
	seen := map[string]bool{}
	for id, a := range alarms {
		p := props(a)
		name, _ := p["MetricName"].(string)
		w, ok := want[name]
		if !ok {
			t.Errorf("unexpected alarm %s on %s", id, name)
			continue
		}
		seen[name] = true
		if p["Namespace"] != "AWS/RDS" || !reflect.DeepEqual(p["Dimensions"], []any{map[string]any{"Name": "DBInstanceIdentifier", "Value": "orders-pg"}}) {
			t.Errorf("%s: namespace %v dimensions %v", name, p["Namespace"], p["Dimensions"])
		}
		if p["Threshold"] != w.threshold || p["ComparisonOperator"] != w.op {
			t.Errorf("%s: %v %v, want %v %v", name, p["ComparisonOperator"], p["Threshold"], w.op, w.threshold)
		}
		actions := list(p["AlarmActions"])
		if len(actions) != 1 || flat(actions[0]) != "${"+topicID+"}" {
			t.Errorf("%s: alarm actions %v, want the topic", name, actions)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("alarms on %v, want %d metrics", seen, len(want))
	}
	if n := len(resources(r.tmpl, "AWS::CloudWatch::Dashboard")); n != 1 {
		t.Errorf("%d dashboards", n)
	}
}

func TestOutputs(t *testing.T) {
	r := synth(t)
	outs := r.tmpl["Outputs"].(map[string]any)
	sm := flat(outs["StateMachineArn"].(map[string]any)["Value"])
	url := flat(outs["StateMachineConsoleUrl"].(map[string]any)["Value"])
	want := "https://${AWS::Region}.console.aws.amazon.com/states/home?region=${AWS::Region}#/statemachines/view/" + sm
	if !strings.HasPrefix(sm, "${StateMachine") || url != want {
		t.Errorf("outputs: arn %s url %s, want %s", sm, url, want)
	}
	// With account and region configured, the URL is literal but the ARN.
	outs = r.tmplSched["Outputs"].(map[string]any)
	url = flat(outs["StateMachineConsoleUrl"].(map[string]any)["Value"])
	if !strings.HasPrefix(url, "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/statemachines/view/") {
		t.Errorf("console URL with region set: %s", url)
	}
}

func TestCdkNagAwsSolutionsZeroFindings(t *testing.T) {
	r := synth(t)
	for _, s := range []*Stack{r.plain, r.scheduled} {
		checkCDK(t, "cdk-nag", func() {
			ann := assertions.Annotations_FromStack(s.Stack)
			for _, find := range []func(*string, any) *[]*cxMessage{ann.FindError, ann.FindWarning} {
				msgs := find(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*")))
				for _, m := range *msgs {
					t.Errorf("%s: %s %v", *s.StackName(), *m.Id, m.Entry.Data)
				}
			}
		})
	}
	if len(Suppressions["AwsSolutions-IAM5"]) == 0 {
		t.Errorf("no IAM5 suppression recorded: is the suppression code still in use?")
	}
	for id, reasons := range Suppressions {
		for _, reason := range reasons {
			if len(reason) < 40 {
				t.Errorf("%s suppression reason too thin: %q", id, reason)
			}
		}
	}
}
