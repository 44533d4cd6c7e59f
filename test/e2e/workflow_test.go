// Package e2e runs the migration workflow end to end with real parts: the
// real ASL (statemachine/migration.asl.json) on the local Step Functions
// engine (test/sfnlocal), every Task state served by its real handler
// behind the real Lambda boundary (lambdamain.Invokers), whose real
// aws-sdk-go-v2 clients talk to the local cloud (test/localcloud: RDS, DMS
// and Secrets Manager on the wire, real PostgreSQL clusters behind), with a
// real PostgreSQL source under a light write load.
//
// Issue 3, item 7: both paths end to end; one transient failure per state
// is retried and the run completes; a terminal failure at each state that
// changes anything ends in Rollback with every created resource released.
//
// Needs node with the repository's node_modules (`npm ci`) and the
// PostgreSQL server binaries; without them every test fails (never skips).
// E2E_CONCURRENCY bounds the concurrent runs (default 3); E2E_VERBOSE=1
// logs every run's events and handler log.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	dmstypes "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sferr"
	"github.com/seedrepl/seedrepl/internal/steps"
	"github.com/seedrepl/seedrepl/test/sfnlocal"
)

var (
	subscriptionTables = []string{"public.accounts", "public.docs", "public.events", "public.measurements"}
	dmsTables          = []string{"public.accounts", "public.docs", "public.measurements"}
)

// observation is what a wrapper saw of the world while replication ran
// (just before Report, after Validate).
type observation struct {
	mu                sync.Mutex
	done              bool
	slot, active, pub bool
	subscriptions     int // this migration's enabled subscriptions on its target
	taskStatus        string
	problems          []string
}

// observeBeforeReport wraps Report: before the real handler runs, it reads
// the source's catalog, the target's subscription and the DMS task.
func observeBeforeReport(t *testing.T, w *world, id, mode string, obs *observation) wrapper {
	return func(state string, real sfnlocal.Handler) sfnlocal.Handler {
		if state != "Report" {
			return real
		}
		return func(ctx context.Context, p json.RawMessage) (any, error) {
			obs.mu.Lock()
			if !obs.done {
				obs.done = true
				obs.slot, obs.active, obs.pub = w.sourceObjects(t, id)
				if mode == "subscription" {
					host, port := w.targetOf(t, "seedrepl-"+id+"-aurora")
					n, err := w.countOnTarget(ctx, host, port, `SELECT count(*) FROM pg_subscription WHERE subname = $1 AND subenabled`, pgops.ObjectName(id))
					if err != nil {
						obs.problems = append(obs.problems, "target: "+err.Error())
					}
					obs.subscriptions = n
				} else {
					out, err := w.dms.DescribeReplicationTasks(ctx, &dms.DescribeReplicationTasksInput{WithoutSettings: aws.Bool(true),
						Filters: []dmstypes.Filter{{Name: aws.String("replication-task-id"), Values: []string{"seedrepl-" + id + "-task"}}}})
					if err != nil || len(out.ReplicationTasks) != 1 {
						obs.problems = append(obs.problems, fmt.Sprintf("DMS task: %v", err))
					} else {
						obs.taskStatus = aws.ToString(out.ReplicationTasks[0].Status)
					}
				}
			}
			obs.mu.Unlock()
			return real(ctx, p)
		}
	}
}

// checkObservation: during replication the slot (active: a subscriber
// streams it) and, for a subscription, the publication and the enabled
// subscription exist; for DMS the task runs.
func checkObservation(t *testing.T, obs *observation, mode string) {
	t.Helper()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if !obs.done {
		t.Fatalf("Report never ran: nothing observed during replication")
	}
	for _, p := range obs.problems {
		t.Error(p)
	}
	if !obs.slot || !obs.active {
		t.Errorf("during replication the source slot exists=%t active=%t, want both", obs.slot, obs.active)
	}
	if mode == "subscription" {
		if !obs.pub {
			t.Errorf("during replication the source publication is missing")
		}
		if obs.subscriptions != 1 {
			t.Errorf("during replication the target holds %d enabled subscriptions of this migration, want 1", obs.subscriptions)
		}
	} else if obs.taskStatus != "running" {
		t.Errorf("during replication the DMS task is %q, want running", obs.taskStatus)
	}
}

// TestHappyPathSubscription: mode subscription as a rehearsal. The run
// succeeds, its output is the report with every table equal, the slot and
// publication exist during replication, and Teardown leaves nothing: no
// slot, no publication, no snapshot, cluster or instance in the local cloud.
func TestHappyPathSubscription(t *testing.T) {
	t.Parallel()
	w := env(t)
	id := "e2e-happy-sub"
	obs := &observation{}
	o := execute(t, w.input(id, "subscription", true), observeBeforeReport(t, w, id, "subscription", obs))
	r := o.report(t)
	checkReport(t, r, id, "subscription", true, subscriptionTables)
	checkObservation(t, obs, "subscription")
	if o.Count("Teardown") != 1 || o.Count("Rollback") != 0 {
		t.Errorf("Teardown entered %d times, Rollback %d: want 1 and 0", o.Count("Teardown"), o.Count("Rollback"))
	}
	w.expectReleased(t, id)
}

// TestHappyPathDMS: mode dms, not a rehearsal. The run succeeds and leaves
// the migration replicating (slot streamed by the DMS task, the Aurora
// cluster kept); the real Teardown handler, run afterwards as an operator
// would, then releases everything.
func TestHappyPathDMS(t *testing.T) {
	t.Parallel()
	w := env(t)
	id := "e2e-happy-dms"
	obs := &observation{}
	in := w.input(id, "dms", false)
	o := execute(t, in, observeBeforeReport(t, w, id, "dms", obs))
	r := o.report(t)
	checkReport(t, r, id, "dms", false, dmsTables)
	checkObservation(t, obs, "dms")
	if r.DMSTaskARN == "" {
		t.Errorf("report has no DMS task ARN")
	}
	if o.Count("Teardown") != 0 || o.Count("Rollback") != 0 {
		t.Errorf("Teardown/Rollback ran on a real migration: %v", o.Entered())
	}
	// Still replicating after the run: slot, task, cluster.
	if slot, active, _ := w.sourceObjects(t, id); !slot || !active {
		t.Errorf("after the run the slot exists=%t active=%t, want a live replication", slot, active)
	}
	kept := w.resources(t, id)
	for _, want := range []string{"DB cluster seedrepl-" + id + "-aurora (available)", "DMS task seedrepl-" + id + "-task (running)"} {
		if !slices.Contains(kept, want) {
			t.Errorf("after the run %q is missing; the local cloud holds %v", want, kept)
		}
	}
	out := invokeDirect(t, o.handlers["Teardown"], in)
	var rr steps.RollbackResult
	_ = json.Unmarshal(out, &rr)
	if !rr.SlotGone || len(rr.Failed) > 0 {
		t.Errorf("Teardown: %s", out)
	}
	w.expectReleased(t, id)
}

// transientOnce makes the first call of every Task state fail with a
// declared Transient error before the real handler is reached; every later
// call goes to the real handler.
func transientOnce(also wrapper) wrapper {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(state string, real sfnlocal.Handler) sfnlocal.Handler {
		if also != nil {
			real = also(state, real)
		}
		return func(ctx context.Context, p json.RawMessage) (any, error) {
			mu.Lock()
			first := !seen[state]
			seen[state] = true
			mu.Unlock()
			if first {
				return nil, sferr.Transientf("injected: connection reset by peer at %s (first call)", state)
			}
			return real(ctx, p)
		}
	}
}

// checkRetriedEverywhere: every Task state the run entered was retried on
// Transient once, and called again.
func checkRetriedEverywhere(t *testing.T, o *outcome) []string {
	t.Helper()
	entered := taskStatesEntered(o.Result)
	retried := retriedStates(o.Result, "Transient")
	for _, s := range entered {
		if !retried[s] {
			t.Errorf("no StateRetried (Transient) event for %s", s)
		}
		calls := o.Calls(s)
		if len(calls) < 2 || calls[0].Error != "Transient" || calls[1].Error == "Transient" {
			var errs []string
			for _, c := range calls {
				errs = append(errs, "'"+c.Error+"'")
			}
			t.Errorf("%s calls' errors %v: want Transient, then the real handler", s, errs)
		}
	}
	return entered
}

// TestTransientOnceAtEveryState: in one run per path, every Task state's
// first call fails with Transient; each is retried by the ASL and the run
// succeeds. The subscription run upgrades the engine (the upgrade states
// run too) and is not a rehearsal (Rollback is called afterwards, as an
// operator abandoning the target would); the DMS run is a rehearsal
// (Teardown runs and is retried too).
func TestTransientOnceAtEveryState(t *testing.T) {
	t.Parallel()
	w := env(t)
	t.Run("subscription", func(t *testing.T) {
		t.Parallel()
		id := "e2e-transient-sub"
		in := w.withUpgrade(w.input(id, "subscription", false))
		o := execute(t, in, transientOnce(nil))
		checkReport(t, o.report(t), id, "subscription", false, subscriptionTables)
		entered := checkRetriedEverywhere(t, o)
		for _, want := range []string{"ValidateInput", "Preflight", "CreatePublicationAndSlot", "CreateSnapshot", "PollSnapshot",
			"RestoreAuroraCluster", "PollAuroraCluster", "CreateAuroraInstances", "PollAuroraInstances", "UpgradeAuroraCluster",
			"PollAuroraUpgrade", "RestoreTempInstance", "PollTempInstance", "ReadSeedLSN", "DeleteTempInstance", "ProveSeed",
			"ConfigureSubscription", "VerifyLag", "Validate", "Report", "Notify"} {
			if !slices.Contains(entered, want) {
				t.Errorf("%s never ran (entered %v)", want, entered)
			}
		}
		out := invokeDirect(t, o.handlers["Rollback"], in)
		var rr steps.RollbackResult
		_ = json.Unmarshal(out, &rr)
		if !rr.SlotGone || len(rr.Failed) > 0 {
			t.Errorf("Rollback: %s", out)
		}
		w.expectReleased(t, id)
	})
	t.Run("dms", func(t *testing.T) {
		t.Parallel()
		id := "e2e-transient-dms"
		o := execute(t, w.input(id, "dms", true), transientOnce(nil))
		checkReport(t, o.report(t), id, "dms", true, dmsTables)
		entered := checkRetriedEverywhere(t, o)
		for _, want := range []string{"ConfigureDMS", "PollDMSTask", "Teardown"} {
			if !slices.Contains(entered, want) {
				t.Errorf("%s never ran (entered %v)", want, entered)
			}
		}
		w.expectReleased(t, id)
	})
}

// TestThrottlingInTheLocalCloud: the local cloud answers Throttling to
// CreateDBSnapshot and RestoreDBClusterFromSnapshot more times than the
// SDK's own retryer tries (3): the handler reports Transient, the ASL
// retries it, and the run succeeds.
func TestThrottlingInTheLocalCloud(t *testing.T) {
	t.Parallel()
	w := env(t)
	id := "e2e-throttle"
	const times = 4
	throttled := map[string]string{"CreateSnapshot": "CreateDBSnapshot", "RestoreAuroraCluster": "RestoreDBClusterFromSnapshot"}
	var mu sync.Mutex
	injected := map[string]bool{}
	left := map[string]int{}
	o := execute(t, w.input(id, "subscription", true), func(state string, real sfnlocal.Handler) sfnlocal.Handler {
		action, ok := throttled[state]
		if !ok {
			return real
		}
		return func(ctx context.Context, p json.RawMessage) (any, error) {
			faultMu.Lock()
			defer faultMu.Unlock()
			ctx = context.WithValue(ctx, exclusiveKey{}, true)
			mu.Lock()
			if !injected[state] {
				injected[state] = true
				w.srv.InjectFault(action, "Throttling", times)
			}
			mu.Unlock()
			out, err := real(ctx, p)
			mu.Lock()
			left[action] = w.srv.PendingFaults(action)
			mu.Unlock()
			return out, err
		}
	})
	checkReport(t, o.report(t), id, "subscription", true, subscriptionTables)
	retried := retriedStates(o.Result, "Transient")
	for state, action := range throttled {
		if left[action] != 0 {
			t.Errorf("%d injected Throttling faults of %s were never served", left[action], action)
		}
		if !retried[state] {
			t.Errorf("no StateRetried (Transient) for %s after %d Throttling answers to %s", state, times, action)
		}
	}
	w.expectReleased(t, id)
}

// terminalCase is one terminal failure: at state, after the real handler
// did its work (after=true: the real handler's own transient errors are
// passed on, so the ASL retries it as usual, and the terminal error replaces
// its first successful result) or instead of it.
type terminalCase struct {
	state   string
	mode    string
	upgrade bool
	after   bool
	err     func(string) error
	// rehearsal: the run is a rehearsal (Teardown runs).
	rehearsal bool
	// present: what must exist when the failure is injected (kinds as
	// listed by world.present), so Rollback has that to release.
	present []string
	// slow: a state of the other Parallel branch whose handler is delayed,
	// so its Lambda is still in flight when this branch fails and Rollback
	// runs (Step Functions stops the branch, not a running invocation).
	slow string
}

func (c terminalCase) name() string {
	s := c.state
	if c.after {
		s += "/after-real"
	} else {
		s += "/instead"
	}
	if c.mode == "dms" && c.state != "ConfigureDMS" && c.state != "PollDMSTask" {
		s += "/dms"
	}
	if c.slow != "" {
		s += "/" + c.slow + "-in-flight"
	}
	return s
}

var terminalCases = []terminalCase{
	{state: "CreatePublicationAndSlot", mode: "subscription", after: true, err: terminalf, present: []string{"slot", "publication"}},
	{state: "CreatePublicationAndSlot", mode: "dms", after: true, err: resourceFailedf, present: []string{"slot"}},
	{state: "CreateSnapshot", mode: "subscription", after: true, err: resourceFailedf, present: []string{"slot", "DB snapshot"}},
	{state: "CreateSnapshot", mode: "subscription", after: false, err: terminalf, present: []string{"slot"}},
	{state: "PollSnapshot", mode: "subscription", after: true, err: resourceFailedf, present: []string{"DB snapshot"}},
	{state: "RestoreAuroraCluster", mode: "subscription", after: true, err: resourceFailedf, present: []string{"DB cluster"}},
	{state: "RestoreAuroraCluster", mode: "subscription", after: false, err: terminalf, present: []string{"DB snapshot"}},
	{state: "RestoreAuroraCluster", mode: "subscription", after: false, err: resourceFailedf, slow: "RestoreTempInstance"},
	{state: "PollAuroraCluster", mode: "subscription", after: true, err: resourceFailedf, present: []string{"DB cluster"}},
	{state: "CreateAuroraInstances", mode: "subscription", after: true, err: resourceFailedf, present: []string{"DB instance seedrepl-%s-aurora-writer"}},
	{state: "PollAuroraInstances", mode: "subscription", after: true, err: resourceFailedf, present: []string{"DB instance seedrepl-%s-aurora-reader-1"}},
	{state: "UpgradeAuroraCluster", mode: "subscription", upgrade: true, after: true, err: resourceFailedf, present: []string{"DB cluster"}},
	{state: "PollAuroraUpgrade", mode: "subscription", upgrade: true, after: true, err: resourceFailedf, present: []string{"DB cluster"}},
	{state: "RestoreTempInstance", mode: "subscription", after: true, err: resourceFailedf, present: []string{"DB instance seedrepl-%s-seedtmp"}},
	{state: "PollTempInstance", mode: "subscription", after: true, err: resourceFailedf, present: []string{"DB instance seedrepl-%s-seedtmp"}},
	{state: "ReadSeedLSN", mode: "subscription", after: true, err: terminalf, present: []string{"DB instance seedrepl-%s-seedtmp"}},
	{state: "DeleteTempInstance", mode: "subscription", after: true, err: resourceFailedf},
	{state: "ProveSeed", mode: "subscription", after: true, err: seedProofFailedf, present: []string{"slot", "DB cluster"}},
	{state: "ConfigureSubscription", mode: "subscription", after: true, err: terminalf, present: []string{"subscription"}},
	{state: "ConfigureSubscription", mode: "subscription", after: false, err: resourceFailedf, present: []string{"DB cluster"}},
	{state: "ConfigureDMS", mode: "dms", after: true, err: resourceFailedf, present: []string{"DMS task", "DMS replication instance", "DMS endpoint"}},
	{state: "PollDMSTask", mode: "dms", after: true, err: resourceFailedf, present: []string{"DMS task"}},
	{state: "VerifyLag", mode: "subscription", after: true, err: terminalf, present: []string{"subscription"}},
	{state: "Validate", mode: "subscription", after: true, err: validationFailedf, present: []string{"subscription"}},
	{state: "Validate", mode: "dms", after: true, err: validationFailedf, present: []string{"DMS task"}},
	{state: "Teardown", mode: "subscription", rehearsal: true, after: true, err: terminalf},
}

func terminalf(s string) error { return sferr.Terminalf("injected terminal failure at %s", s) }
func resourceFailedf(s string) error {
	return sferr.ResourceFailedf("injected: resource of %s ended in state failed", s)
}
func seedProofFailedf(s string) error {
	return sferr.NewSeedProofFailed(fmt.Errorf("injected: seed proof refused at %s", s))
}
func validationFailedf(s string) error {
	return sferr.ValidationFailedf("injected: 1 of 4 tables differ at %s", s)
}

// TestTerminalFailureRollsBack: a terminal failure at each state that
// changes anything (and at the poll states, caught at the top level or by
// the Parallel) ends the run FAILED with that error's name after Rollback,
// and Rollback leaves nothing of the migration: no slot or publication on
// the source, no snapshot, cluster, instance or DMS resource in the local
// cloud, no subscription on any target.
func TestTerminalFailureRollsBack(t *testing.T) {
	t.Parallel()
	w := env(t)
	for i, c := range terminalCases {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("e2e-fail-%02d", i)
			in := w.input(id, c.mode, c.rehearsal)
			if c.upgrade {
				in = w.withUpgrade(in)
			}
			want := c.err(c.state)
			wantName := sferr.Name(want)
			var mu sync.Mutex
			injected := 0
			var atInjection []string
			o := execute(t, in, func(state string, real sfnlocal.Handler) sfnlocal.Handler {
				if state == c.slow {
					return func(ctx context.Context, p json.RawMessage) (any, error) {
						time.Sleep(1500 * time.Millisecond)
						return real(ctx, p)
					}
				}
				if state != c.state {
					return real
				}
				return func(ctx context.Context, p json.RawMessage) (any, error) {
					if c.after {
						if _, err := real(ctx, p); err != nil {
							if name := sfnlocal.ErrorType(err); name == "Transient" || name == "NotReadyYet" {
								return nil, err // the ASL retries it as in any run
							}
							t.Errorf("the real %s failed by itself: %s: %v", c.state, sfnlocal.ErrorType(err), err)
						}
					}
					mu.Lock()
					defer mu.Unlock()
					injected++
					atInjection = w.present(t, id)
					return nil, want
				}
			})
			if o.Status != "FAILED" || o.Error != wantName {
				t.Errorf("status %s error %s (%s), want FAILED %s", o.Status, o.Error, trim(o.Cause, 500), wantName)
			}
			if injected != 1 {
				t.Errorf("the terminal error was returned %d times: it is not retried", injected)
			}
			for _, p := range c.present {
				if strings.Contains(p, "%s") {
					p = fmt.Sprintf(p, id)
				}
				if !slices.ContainsFunc(atInjection, func(s string) bool { return strings.HasPrefix(s, p) }) {
					t.Errorf("when %s failed, no %q existed (present: %v): the case does not test what it claims", c.state, p, atInjection)
				}
			}
			if !strings.Contains(o.Cause, "injected") {
				t.Errorf("execution cause %q does not carry the injected failure", trim(o.Cause, 300))
			}
			rb := o.Calls("Rollback")
			if len(rb) == 0 {
				t.Fatalf("Rollback never ran: %v", o.Entered())
			}
			var doc struct {
				Error struct{ Error, Cause string } `json:"error"`
			}
			if err := json.Unmarshal(rb[0].Payload, &doc); err != nil || doc.Error.Error != wantName {
				t.Errorf("Rollback got $.error %+v (%v), want %s", doc.Error, err, wantName)
			}
			if last := rb[len(rb)-1]; last.Error != "" {
				t.Errorf("the last Rollback call failed with %s", last.Error)
			}
			if e := o.Entered(); !slices.Equal(e[len(e)-4:], []string{"Rollback", "Notify", "Outcome", "Failed"}) {
				t.Errorf("run ends %v, want Rollback Notify Outcome Failed", e[max(0, len(e)-6):])
			}
			if c.slow != "" {
				// Let the in-flight invocation finish its work first.
				time.Sleep(2 * time.Second)
			}
			w.expectReleased(t, id)
		})
	}
}

// TestAllTaskStatesCovered: the tests above name every Task state of the
// definition somewhere (a guard for states added later).
func TestAllTaskStatesCovered(t *testing.T) {
	covered := map[string]bool{"ValidateInput": true, "Preflight": true, "Report": true, "Notify": true, "Rollback": true}
	for _, c := range terminalCases {
		covered[c.state] = true
	}
	var missing []string
	for _, f := range statemachineFunctions() {
		if !covered[f] {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("Task states with no terminal-failure case: %v", missing)
	}
}
