package statemachine_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/seedrepl/seedrepl/internal/sferr"
	"github.com/seedrepl/seedrepl/statemachine"
)

// The declared error names come from internal/sferr, where each is a Go
// type (aws-lambda-go reports the type's name).
var (
	transientNames = sferr.TransientNames
	terminalNames  = sferr.TerminalNames
	lambdaNames    = []string{"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}
	statesNames    = []string{"States.Timeout", "States.TaskFailed", "States.ALL"}
)

// noCatch are the top-level Task states without a Catch, and why.
var noCatch = map[string]string{
	"Report": "builds the report only; a failure must not roll back a working replication (the execution fails, the alarm fires)",
	"Notify": "sends a message only; it runs on both the success and the failure path, and must never trigger a Rollback",
}

// catchToNotify are the Task states whose Catch skips Rollback, and why.
var catchToNotify = map[string]string{
	"ValidateInput": "changes nothing",
	"Preflight":     "changes nothing; it may have found another run's slot or publication, which a Rollback must not drop",
	"Rollback":      "a failed rollback is reported, never retried in a loop",
}

// resultPaths is the document contract of internal/steps/state.go, as
// statemachine.Functions records it: "$.<key>", or nil (discarded).
var resultPaths = func() map[string]any {
	m := map[string]any{}
	for _, f := range statemachine.Functions {
		if f.ResultKey == "" {
			m[f.Name] = nil
		} else {
			m[f.Name] = "$." + f.ResultKey
		}
	}
	return m
}()

type state struct {
	Type           string
	Comment        string
	Resource       string
	Next           string
	End            bool
	Default        string
	Choices        []map[string]any
	Retry          []retrier
	Catch          []catcher
	TimeoutSeconds int
	ResultPath     *string
	ResultPathNull bool
	SecondsPath    string
	Branches       []machine
	raw            map[string]json.RawMessage
}

type retrier struct {
	ErrorEquals     []string
	IntervalSeconds *float64
	MaxAttempts     *int
	BackoffRate     *float64
	MaxDelaySeconds *int
	JitterStrategy  string
}

type catcher struct {
	ErrorEquals []string
	ResultPath  string
	Next        string
}

type machine struct {
	Comment string
	StartAt string
	States  map[string]*state
}

func (s *state) UnmarshalJSON(b []byte) error {
	type plain state
	if err := json.Unmarshal(b, (*plain)(s)); err != nil {
		return err
	}
	if err := json.Unmarshal(b, &s.raw); err != nil {
		return err
	}
	if rp, ok := s.raw["ResultPath"]; ok && string(rp) == "null" {
		s.ResultPathNull = true
	}
	return nil
}

// scope is one States object: the top level or a Parallel branch.
type scope struct {
	name     string // "" for the top level, else the Parallel's name + branch index
	parallel string // the enclosing Parallel state, "" at the top level
	m        machine
}

func parse(t *testing.T, def string) (machine, []scope, map[string]*state) {
	t.Helper()
	var m machine
	if err := json.Unmarshal([]byte(def), &m); err != nil {
		t.Fatalf("definition is not valid JSON: %v", err)
	}
	var scopes []scope
	all := map[string]*state{}
	var walk func(sc scope)
	walk = func(sc scope) {
		scopes = append(scopes, sc)
		for name, st := range sc.m.States {
			if _, dup := all[name]; dup {
				t.Errorf("state name %s is used twice (names must be unique in the whole machine; the local engine overrides Tasks by name)", name)
			}
			all[name] = st
			for i, b := range st.Branches {
				walk(scope{name: fmt.Sprintf("%s[%d]", name, i), parallel: name, m: b})
			}
		}
	}
	walk(scope{m: m})
	return m, scopes, all
}

func localDef(t *testing.T) string {
	t.Helper()
	d, err := statemachine.LocalDefinition()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func targets(st *state) []string {
	var out []string
	if st.Next != "" {
		out = append(out, st.Next)
	}
	if st.Default != "" {
		out = append(out, st.Default)
	}
	for _, c := range st.Choices {
		if n, ok := c["Next"].(string); ok {
			out = append(out, n)
		}
	}
	for _, c := range st.Catch {
		out = append(out, c.Next)
	}
	return out
}

func TestTargetsExistAndEveryStateIsReachable(t *testing.T) {
	_, scopes, _ := parse(t, statemachine.Definition)
	for _, sc := range scopes {
		if _, ok := sc.m.States[sc.m.StartAt]; !ok {
			t.Errorf("scope %q: StartAt %q does not exist", sc.name, sc.m.StartAt)
		}
		terminal := false
		for name, st := range sc.m.States {
			for _, n := range targets(st) {
				if _, ok := sc.m.States[n]; !ok {
					t.Errorf("scope %q: %s goes to %q, which is not a state of this scope", sc.name, name, n)
				}
			}
			switch {
			case st.Type == "Succeed" || st.Type == "Fail" || st.End:
				terminal = true
			case st.Type != "Choice" && st.Next == "":
				t.Errorf("%s has neither Next nor End", name)
			}
		}
		if !terminal {
			t.Errorf("scope %q has no terminal state", sc.name)
		}
		seen := map[string]bool{sc.m.StartAt: true}
		queue := []string{sc.m.StartAt}
		for len(queue) > 0 {
			st := sc.m.States[queue[0]]
			queue = queue[1:]
			if st == nil {
				continue
			}
			for _, n := range targets(st) {
				if !seen[n] {
					seen[n] = true
					queue = append(queue, n)
				}
			}
		}
		for name := range sc.m.States {
			if !seen[name] {
				t.Errorf("scope %q: %s is not reachable from %s", sc.name, name, sc.m.StartAt)
			}
		}
	}
}

func TestEveryTaskHasRetryTimeoutAndItsOwnFunction(t *testing.T) {
	_, _, all := parse(t, statemachine.Definition)
	used := map[string]bool{}
	placeholders := statemachine.Placeholders()
	for name, st := range all {
		if st.Type != "Task" {
			continue
		}
		if st.TimeoutSeconds <= 0 || st.TimeoutSeconds > 900 {
			t.Errorf("%s: TimeoutSeconds %d, want 1..900 (the Lambda maximum)", name, st.TimeoutSeconds)
		}
		if !strings.HasPrefix(st.Resource, "${") || !strings.HasSuffix(st.Resource, "}") {
			t.Errorf("%s: Resource %q is not a ${...} Lambda ARN placeholder", name, st.Resource)
			continue
		}
		fn, ok := placeholders[st.Resource[2:len(st.Resource)-1]]
		if !ok {
			t.Errorf("%s: Resource %s is not a placeholder of statemachine.Functions", name, st.Resource)
			continue
		}
		if fn != name {
			t.Errorf("Task %s calls function %s: state and function names must match", name, fn)
		}
		used[fn] = true
		if len(st.Retry) == 0 {
			t.Errorf("%s has no Retry", name)
		}
		retried := map[string]bool{}
		for i, r := range st.Retry {
			for _, e := range r.ErrorEquals {
				retried[e] = true
			}
			if r.JitterStrategy != "FULL" || r.BackoffRate == nil || *r.BackoffRate < 1 || r.MaxDelaySeconds == nil || r.IntervalSeconds == nil || r.MaxAttempts == nil || *r.MaxAttempts < 1 {
				t.Errorf("%s: retrier %d %v: want IntervalSeconds, MaxAttempts >= 1, BackoffRate >= 1, MaxDelaySeconds and JitterStrategy FULL", name, i, r.ErrorEquals)
			}
		}
		for _, e := range append(slices.Clone(transientNames), lambdaNames...) {
			if !retried[e] {
				t.Errorf("%s does not retry %s", name, e)
			}
		}
		want, ok := resultPaths[name]
		if !ok {
			t.Errorf("%s: no ResultPath in the contract table", name)
		} else if want == nil {
			if !st.ResultPathNull {
				t.Errorf("%s: ResultPath must be null (it must not clobber the document)", name)
			}
		} else if st.ResultPath == nil || *st.ResultPath != want {
			t.Errorf("%s: ResultPath %v, want %s", name, st.ResultPath, want)
		}
	}
	for _, f := range statemachine.Functions {
		if !used[f.Name] {
			t.Errorf("function %s is used by no Task state", f.Name)
		}
	}
}

// Every state that changes anything is covered by a Catch (its own, or the
// enclosing Parallel's) that goes to Rollback with ResultPath $.error.
func TestCatchCoversEveryChangingState(t *testing.T) {
	_, scopes, all := parse(t, statemachine.Definition)
	rollback := all["Rollback"]
	if rollback == nil || rollback.Type != "Task" {
		t.Fatal("no Rollback Task state")
	}
	for _, sc := range scopes {
		for name, st := range sc.m.States {
			if st.Type != "Task" && st.Type != "Parallel" {
				if len(st.Catch) > 0 {
					t.Errorf("%s (%s) has a Catch", name, st.Type)
				}
				continue
			}
			if sc.parallel != "" {
				if len(st.Catch) > 0 {
					t.Errorf("%s is inside %s: the Parallel's Catch covers it; its own Catch would hide the failure from it", name, sc.parallel)
				}
				continue
			}
			if why, ok := noCatch[name]; ok {
				if len(st.Catch) > 0 {
					t.Errorf("%s is listed without Catch (%s) but has one", name, why)
				}
				continue
			}
			if len(st.Catch) == 0 {
				t.Errorf("%s has no Catch", name)
				continue
			}
			wantNext, wantRP := "Rollback", "$.error"
			if _, ok := catchToNotify[name]; ok {
				wantNext = "Notify"
			}
			if name == "Rollback" {
				// $.error keeps the error that caused the rollback.
				wantRP = "$.rollbackError"
			}
			caught := map[string]bool{}
			for i, c := range st.Catch {
				if c.Next != wantNext || c.ResultPath != wantRP {
					t.Errorf("%s: catcher %d goes to %s with ResultPath %q, want %s with %s", name, i, c.Next, c.ResultPath, wantNext, wantRP)
				}
				for _, e := range c.ErrorEquals {
					caught[e] = true
				}
			}
			for _, e := range append(slices.Clone(terminalNames), statesNames...) {
				if !caught[e] {
					t.Errorf("%s does not catch %s", name, e)
				}
			}
		}
	}
	// Rollback never loops: nothing after it leads back to it.
	if rollback.Next != "Notify" || all["Notify"].Next != "Outcome" {
		t.Errorf("Rollback → %s, Notify → %s: want Rollback → Notify → Outcome", rollback.Next, all["Notify"].Next)
	}
	if all["Notify"].Catch != nil {
		t.Error("Notify must not have a Catch")
	}
	if f := all["Failed"]; f == nil || f.Type != "Fail" {
		t.Error("no Fail state named Failed")
	}
}

func TestErrorNamesAreDeclared(t *testing.T) {
	_, _, all := parse(t, statemachine.Definition)
	retryable := append(append([]string{}, transientNames...), lambdaNames...)
	catchable := append(append([]string{}, terminalNames...), statesNames...)
	for name, st := range all {
		for i, r := range st.Retry {
			for _, e := range r.ErrorEquals {
				if !slices.Contains(retryable, e) {
					t.Errorf("%s: retrier %d retries %q: only transient names and Lambda service exceptions are retried (declared: %v)", name, i, e, retryable)
				}
			}
		}
		for i, c := range st.Catch {
			for _, e := range c.ErrorEquals {
				if !slices.Contains(catchable, e) {
					t.Errorf("%s: catcher %d catches %q, which is not a declared terminal name or a States.* name", name, i, e)
				}
				if e == "States.ALL" && (len(c.ErrorEquals) != 1 || i != len(st.Catch)-1) {
					t.Errorf("%s: States.ALL must be alone in the last catcher", name)
				}
			}
		}
	}
}

// Each poll loop is Poll → Choice($.k.ready) → default Wait($.k.waitSeconds) → Poll.
func TestPollLoops(t *testing.T) {
	_, _, all := parse(t, statemachine.Definition)
	loops := 0
	for name, st := range all {
		if st.Type != "Wait" {
			continue
		}
		loops++
		poll := all[st.Next]
		if poll == nil || poll.Type != "Task" || poll.ResultPath == nil {
			t.Errorf("Wait %s must lead to a Task with a ResultPath", name)
			continue
		}
		key := *poll.ResultPath
		if st.SecondsPath != key+".waitSeconds" {
			t.Errorf("Wait %s: SecondsPath %q, want %s.waitSeconds (the Task after it is %s)", name, st.SecondsPath, key, st.Next)
		}
		choice := all[poll.Next]
		if choice == nil || choice.Type != "Choice" || choice.Default != name || len(choice.Choices) != 1 {
			t.Errorf("%s must lead to a Choice whose one rule leaves the loop and whose Default is %s", st.Next, name)
			continue
		}
		rule := choice.Choices[0]
		if rule["Variable"] != key+".ready" || rule["BooleanEquals"] != true {
			t.Errorf("Choice %s: rule %v, want %s.ready BooleanEquals true", poll.Next, rule, key)
		}
	}
	if loops != 7 {
		t.Errorf("%d Wait loops, want 7 (snapshot, Aurora cluster, Aurora instances, upgrade, temp instance, DMS task, lag)", loops)
	}
}

func TestNoSecretsInTheDefinition(t *testing.T) {
	var v any
	if err := json.Unmarshal([]byte(localDef(t)), &v); err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"password", "secretstring", "dsn", "postgres://", "postgresql://", "connectionstring", "passwd"}
	var walk func(path string, v any)
	check := func(path, s string) {
		l := strings.ToLower(s)
		for _, f := range forbidden {
			if strings.Contains(l, f) {
				t.Errorf("%s: %q mentions %q", path, s, f)
			}
		}
	}
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				check(path+"/"+k, k)
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case string:
			check(path, x)
		}
	}
	walk("", v)
}

func TestPlaceholders(t *testing.T) {
	used := statemachine.Used(statemachine.Definition)
	var want []string
	for p := range statemachine.Placeholders() {
		want = append(want, p)
	}
	sort.Strings(want)
	if !slices.Equal(used, want) {
		t.Errorf("placeholders in the definition %v, want exactly %v", used, want)
	}
	def := localDef(t)
	if strings.Contains(def, "${") {
		t.Error("a placeholder is left after substitution")
	}
	for _, f := range statemachine.Functions {
		arn := statemachine.LocalARN(f)
		if !strings.Contains(def, `"`+arn+`"`) {
			t.Errorf("%s: %s not in the substituted definition", f.Name, arn)
		}
		if got, ok := statemachine.FunctionByARN(arn); !ok || got != f {
			t.Errorf("FunctionByARN(%s) = %v, %v", arn, got, ok)
		}
		if got, ok := statemachine.FunctionByARN(arn + ":live"); !ok || got != f {
			t.Errorf("FunctionByARN with a qualifier = %v, %v", got, ok)
		}
	}
	if _, ok := statemachine.FunctionByARN("arn:aws:states:::lambda:invoke"); ok {
		t.Error("FunctionByARN accepted a non-Lambda ARN")
	}
}

func TestSubstituteNamesEveryProblem(t *testing.T) {
	def := `{"a":"${One}","b":"${Two}","c":"${One}"}`
	got, err := statemachine.Substitute(def, map[string]string{"One": "1", "Two": "2"})
	if err != nil || got != `{"a":"1","b":"2","c":"1"}` {
		t.Errorf("Substitute = %q, %v", got, err)
	}
	_, err = statemachine.Substitute(def, map[string]string{"One": "1", "Three": "3", "Four": "4"})
	if err == nil {
		t.Fatal("no error for a missing and unused keys")
	}
	for _, s := range []string{"${Two}", "Three", "Four"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if strings.Contains(err.Error(), "${One}") {
		t.Errorf("error %q names a resolved placeholder", err)
	}
	if _, err := statemachine.Substitute(def, map[string]string{"One": `x"y`, "Two": "2"}); err == nil {
		t.Error("a value needing JSON escaping was accepted")
	}
	if _, err := statemachine.Substitute(statemachine.Definition, nil); err == nil || strings.Count(err.Error(), "FunctionArn") != len(statemachine.Functions) {
		t.Errorf("with no substitutions the error must name all %d placeholders: %v", len(statemachine.Functions), err)
	}
}

// The flow's decisions read the fields the contract says.
func TestChoices(t *testing.T) {
	_, _, all := parse(t, statemachine.Definition)
	want := map[string]string{
		"UpgradeNeeded":   "$.plan.upgrade",
		"ReplicationMode": "$.mode",
		"IsRehearsal":     "$.rehearsal",
		"Outcome":         "$.error",
	}
	for name, v := range want {
		st := all[name]
		if st == nil || st.Type != "Choice" {
			t.Errorf("no Choice %s", name)
			continue
		}
		b, _ := json.Marshal(st.Choices)
		if !strings.Contains(string(b), `"Variable":"`+v+`"`) {
			t.Errorf("Choice %s does not read %s: %s", name, v, b)
		}
	}
	if s := all["Succeeded"]; s == nil || s.Type != "Succeed" || string(s.raw["OutputPath"]) != `"$.report"` {
		t.Error("the execution must end in Succeeded with OutputPath $.report")
	}
	if f := all["Failed"]; f == nil || string(f.raw["ErrorPath"]) != `"$.error.Error"` || string(f.raw["CausePath"]) != `"$.error.Cause"` {
		t.Error("Failed must fail with the original error ($.error.Error / $.error.Cause)")
	}
}
