package sfnlocal_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seedrepl/seedrepl/internal/sferr"
	"github.com/seedrepl/seedrepl/statemachine"
	"github.com/seedrepl/seedrepl/test/sfnlocal"
)

// waitScale makes a 300 s Wait last 30 ms and a 5 s retry interval 0.5 ms.
const waitScale = 1e-4

func input(mode string, rehearsal bool) map[string]any {
	return map[string]any{
		"migrationId": "m1",
		"mode":        mode,
		"rehearsal":   rehearsal,
		"source":      map[string]any{"instanceId": "prod-db", "secretArn": "arn:aws:secretsmanager:us-east-1:000000000000:secret:src"},
	}
}

func run(t *testing.T, w *world, in any) *sfnlocal.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var lines []string
	res, err := sfnlocal.Run(ctx, sfnlocal.Options{
		Input:     in,
		Handlers:  w.handlers(),
		WaitScale: waitScale,
		Events: func(e sfnlocal.Event) {
			if os.Getenv("SFNLOCAL_VERBOSE") != "" {
				b, _ := json.Marshal(e)
				t.Log(string(b))
			}
			lines = append(lines, e.Type+" "+e.State+" "+e.Error)
		},
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("status %s error %s cause %s\nevents:\n%s", res.Status, res.Error, res.Cause, strings.Join(lines, "\n"))
		}
	})
	return res
}

func TestHappyPathSubscription(t *testing.T) {
	t.Parallel()
	w := &world{Polls: 2}
	res := run(t, w, input("subscription", false))
	if res.Status != "SUCCEEDED" {
		t.Fatalf("status %s (%s: %s), want SUCCEEDED", res.Status, res.Error, res.Cause)
	}
	var out map[string]any
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatal(err)
	}
	if out["outcome"] != "replicating" || out["mode"] != "subscription" {
		t.Errorf("output %s, want the report", res.Output)
	}
	// Poll loops iterate: ready=false twice, then ready.
	for _, p := range []string{"PollSnapshot", "PollAuroraCluster", "PollAuroraInstances", "PollTempInstance"} {
		if n := res.Count(p); n != 3 {
			t.Errorf("%s entered %d times, want 3", p, n)
		}
	}
	if n := res.Count("VerifyLag"); n != 3 {
		t.Errorf("VerifyLag entered %d times, want 3", n)
	}
	for _, s := range []string{"UpgradeAuroraCluster", "PollAuroraUpgrade", "ConfigureDMS", "PollDMSTask", "Teardown", "Rollback"} {
		if n := res.Count(s); n != 0 {
			t.Errorf("%s entered %d times, want 0", s, n)
		}
	}
	for _, s := range []string{"ConfigureSubscription", "ProveSeed", "Validate", "Report", "Notify", "Succeeded"} {
		if n := res.Count(s); n != 1 {
			t.Errorf("%s entered %d times, want 1", s, n)
		}
	}
	// ProveSeed sees the merged Parallel result at the root of the document.
	calls := res.Calls("ProveSeed")
	if len(calls) != 1 {
		t.Fatalf("ProveSeed called %d times", len(calls))
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(calls[0].Payload, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"migrationId", "mode", "plan", "preflight", "slot", "snapshot", "aurora", "auroraInstances", "temp", "seed"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("ProveSeed input lacks %q: %s", k, calls[0].Payload)
		}
	}
	if string(doc["seed"]) != `{"lsn":"0/16B3748"}` {
		t.Errorf("ProveSeed input seed %s", doc["seed"])
	}
	if !strings.Contains(string(doc["temp"]), `"deleting"`) {
		t.Errorf("temp should be DeleteTempInstance's result, got %s", doc["temp"])
	}
	if _, ok := doc["doc"]; ok {
		t.Errorf("the Parallel's merge key leaked into the document")
	}
}

func TestHappyPathDMSWithUpgradeAndRehearsal(t *testing.T) {
	t.Parallel()
	w := &world{Polls: 2, Upgrade: true}
	res := run(t, w, input("dms", true))
	if res.Status != "SUCCEEDED" {
		t.Fatalf("status %s (%s: %s), want SUCCEEDED", res.Status, res.Error, res.Cause)
	}
	var out map[string]any
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatal(err)
	}
	if out["outcome"] != "replicating" || out["mode"] != "dms" {
		t.Errorf("output %s, want the report", res.Output)
	}
	for s, want := range map[string]int{
		"ConfigureDMS": 1, "PollDMSTask": 3, "WaitDMSTask": 3, "ConfigureSubscription": 0,
		"UpgradeAuroraCluster": 1, "PollAuroraUpgrade": 3,
		"Teardown": 1, "Rollback": 0, "Notify": 1,
	} {
		if n := res.Count(s); n != want {
			t.Errorf("%s entered %d times, want %d", s, n, want)
		}
	}
	// Teardown comes after Report, Notify after Teardown.
	e := res.Entered()
	if !(slices.Index(e, "Report") < slices.Index(e, "Teardown") && slices.Index(e, "Teardown") < slices.Index(e, "Notify")) {
		t.Errorf("order: %v", e)
	}
	// Notify did not clobber the document: its input carries the report.
	n := res.Calls("Notify")
	if len(n) != 1 || !strings.Contains(string(n[0].Payload), `"report"`) || !strings.Contains(string(n[0].Payload), `"teardown"`) {
		t.Errorf("Notify input: %v", n)
	}
}

func TestRehearsalAbsentAndUpgradeFalse(t *testing.T) {
	t.Parallel()
	w := &world{Polls: 0, Upgrade: false}
	in := input("subscription", false)
	delete(in, "rehearsal")
	res := run(t, w, in)
	if res.Status != "SUCCEEDED" {
		t.Fatalf("status %s (%s: %s), want SUCCEEDED", res.Status, res.Error, res.Cause)
	}
	if res.Count("Teardown") != 0 || res.Count("UpgradeAuroraCluster") != 0 {
		t.Errorf("Teardown/Upgrade ran: %v", res.Entered())
	}
}

func TestUnknownModeRollsBack(t *testing.T) {
	t.Parallel()
	for name, mode := range map[string]any{"unknown": "copy", "absent": nil} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := input("subscription", false)
			if mode == nil {
				delete(in, "mode")
			} else {
				in["mode"] = mode
			}
			res := run(t, &world{}, in)
			if res.Status != "FAILED" || res.Error != "InvalidInput" {
				t.Fatalf("status %s error %s, want FAILED InvalidInput", res.Status, res.Error)
			}
			if res.Count("UnknownMode") != 1 || res.Count("Rollback") != 1 || res.Count("Notify") != 1 {
				t.Errorf("entered %v", res.Entered())
			}
		})
	}
}

// Every function with its handler are run; a Transient error on the first
// call of each Task state is retried and the run completes.
func TestTransientOnceAtEveryTaskIsRetried(t *testing.T) {
	t.Parallel()
	for _, f := range statemachine.Functions {
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			mode, rehearsal, upgrade := "subscription", false, false
			switch f.Name {
			case "ConfigureDMS", "PollDMSTask":
				mode = "dms"
			case "Teardown":
				rehearsal = true
			case "UpgradeAuroraCluster", "PollAuroraUpgrade":
				upgrade = true
			}
			if f.Name == "Rollback" {
				// Rollback runs only after a failure: make Validate fail,
				// then Rollback fail once with Transient.
				w := &world{Polls: 1, Fail: func(fn string, call int) error {
					if fn == "Validate" {
						return sferr.ValidationFailedf("rows differ")
					}
					if fn == "Rollback" && call == 1 {
						return sferr.Transientf("throttled")
					}
					return nil
				}}
				res := run(t, w, input(mode, rehearsal))
				if res.Status != "FAILED" || res.Error != "ValidationFailed" {
					t.Fatalf("status %s error %s, want FAILED with the original error ValidationFailed", res.Status, res.Error)
				}
				if n := len(res.Calls("Rollback")); n != 2 {
					t.Errorf("Rollback called %d times, want 2 (one retry)", n)
				}
				return
			}
			w := &world{Polls: 1, Upgrade: upgrade, Fail: func(fn string, call int) error {
				if fn == f.Name && call == 1 {
					return sferr.Transientf("connection reset")
				}
				return nil
			}}
			res := run(t, w, input(mode, rehearsal))
			if res.Status != "SUCCEEDED" {
				t.Fatalf("status %s (%s: %s), want SUCCEEDED", res.Status, res.Error, res.Cause)
			}
			calls := res.Calls(f.Name)
			if len(calls) < 2 || calls[0].Error != "Transient" {
				t.Errorf("%s calls %v: want a Transient then a retry", f.Name, calls)
			}
			retried := false
			for _, e := range res.Events {
				if e.Type == "StateRetried" && e.State == f.Name && slices.Contains(e.ErrorEquals, "Transient") {
					retried = true
				}
			}
			if !retried {
				t.Errorf("no StateRetried event for %s", f.Name)
			}
			if res.Count("Rollback") != 0 {
				t.Errorf("Rollback ran")
			}
		})
	}
}

// noRollback are the Task states whose terminal failure must not start a
// Rollback; every other Task state's must end in Rollback → Notify → Fail.
var noRollback = map[string]string{
	"ValidateInput": "changes nothing; goes to Notify → Fail",
	"Preflight":     "changes nothing and may have found another run's slot; goes to Notify → Fail",
	"Report":        "must not roll back a working replication; the execution fails",
	"Notify":        "must not roll back a working replication; the execution fails",
	"Rollback":      "tested in TestRollbackFailureEndsInFail",
}

func TestTerminalErrorAtEveryStateRollsBack(t *testing.T) {
	t.Parallel()
	for _, f := range statemachine.Functions {
		if f.Name == "Rollback" {
			continue // TestRollbackFailureEndsInFail
		}
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			mode, rehearsal, upgrade := "subscription", false, false
			switch f.Name {
			case "ConfigureDMS", "PollDMSTask":
				mode = "dms"
			case "Teardown":
				rehearsal = true
			case "UpgradeAuroraCluster", "PollAuroraUpgrade":
				upgrade = true
			}
			want := terminalFor(f.Name)
			wantName := sfnlocal.ErrorType(want)
			w := &world{Polls: 1, Upgrade: upgrade, Fail: func(fn string, call int) error {
				if fn == f.Name {
					return want
				}
				return nil
			}}
			res := run(t, w, input(mode, rehearsal))
			if res.Status != "FAILED" || res.Error != wantName {
				t.Fatalf("status %s error %s, want FAILED %s", res.Status, res.Error, wantName)
			}
			if len(res.Calls(f.Name)) != 1 {
				t.Errorf("%s called %d times: a terminal error must not be retried", f.Name, len(res.Calls(f.Name)))
			}
			rb := res.Calls("Rollback")
			if _, exempt := noRollback[f.Name]; exempt {
				if len(rb) != 0 {
					t.Errorf("Rollback ran after %s", f.Name)
				}
			} else {
				if len(rb) != 1 {
					t.Fatalf("Rollback called %d times, want 1", len(rb))
				}
				var doc struct {
					Error struct{ Error, Cause string } `json:"error"`
				}
				if err := json.Unmarshal(rb[0].Payload, &doc); err != nil {
					t.Fatal(err)
				}
				if doc.Error.Error != wantName || !strings.Contains(doc.Error.Cause, "scripted failure at "+f.Name) {
					t.Errorf("Rollback got $.error %+v, want %s with the cause", doc.Error, wantName)
				}
				e := res.Entered()
				if i := slices.Index(e, "Rollback"); i < 0 || !slices.Equal(e[i:], []string{"Rollback", "Notify", "Outcome", "Failed"}) {
					t.Errorf("tail of the run %v, want Rollback Notify Outcome Failed", e)
				}
			}
			if f.Name != "Notify" && f.Name != "Report" {
				if len(res.Calls("Notify")) != 1 {
					t.Errorf("Notify called %d times, want 1", len(res.Calls("Notify")))
				}
			}
		})
	}
}

func TestRollbackFailureEndsInFail(t *testing.T) {
	t.Parallel()
	w := &world{Polls: 0, Fail: func(fn string, call int) error {
		switch fn {
		case "ProveSeed":
			return sferr.NewSeedProofFailed(errors.New("seed ahead of pg_current_wal_lsn()"))
		case "Rollback":
			return sferr.Terminalf("cannot drop slot")
		}
		return nil
	}}
	res := run(t, w, input("subscription", false))
	if res.Status != "FAILED" || res.Error != "SeedProofFailed" {
		t.Fatalf("status %s error %s, want FAILED with the original SeedProofFailed", res.Status, res.Error)
	}
	if n := len(res.Calls("Rollback")); n != 1 {
		t.Errorf("Rollback called %d times, want 1 (no loop)", n)
	}
	n := res.Calls("Notify")
	if len(n) != 1 {
		t.Fatalf("Notify called %d times", len(n))
	}
	var doc struct {
		Error         struct{ Error string } `json:"error"`
		RollbackError struct{ Error string } `json:"rollbackError"`
	}
	_ = json.Unmarshal(n[0].Payload, &doc)
	if doc.Error.Error != "SeedProofFailed" || doc.RollbackError.Error != "Terminal" {
		t.Errorf("Notify got error %q rollbackError %q", doc.Error.Error, doc.RollbackError.Error)
	}
}
