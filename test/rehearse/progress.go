package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/seedrepl/seedrepl/statemachine"
	"github.com/seedrepl/seedrepl/test/sfnlocal"
)

// phaseStates group the states into the phases the report times.
var phaseStates = []struct {
	name   string
	states []string
}{
	{"validate input and preflight", []string{"ValidateInput", "Preflight"}},
	{"publication and slot", []string{"CreatePublicationAndSlot"}},
	{"snapshot", []string{"CreateSnapshot", "WaitSnapshot", "PollSnapshot", "SnapshotReady"}},
	{"restore Aurora ∥ read seed (Parallel)", []string{"RestoreInParallel"}},
	{"  Aurora cluster and instances", []string{"RestoreAuroraCluster", "WaitAuroraCluster", "PollAuroraCluster", "CreateAuroraInstances", "WaitAuroraInstances", "PollAuroraInstances", "UpgradeAuroraCluster", "WaitAuroraUpgrade", "PollAuroraUpgrade"}},
	{"  temporary RDS instance and seed", []string{"RestoreTempInstance", "WaitTempInstance", "PollTempInstance", "ReadSeedLSN", "DeleteTempInstance"}},
	{"seed proof", []string{"ProveSeed"}},
	{"replication set-up", []string{"ConfigureSubscription", "ConfigureDMS", "WaitDMSTask", "PollDMSTask", "DMSTaskReady"}},
	{"catch-up (lag)", []string{"VerifyLag", "WaitLag", "LagCaughtUp"}},
	{"validation", []string{"Validate"}},
	{"report, teardown, notify", []string{"Report", "IsRehearsal", "Teardown", "Notify"}},
	{"rollback", []string{"Rollback"}},
}

type progress struct {
	t0      time.Time
	mu      sync.Mutex
	entered map[string]time.Time
	first   map[string]time.Time
	last    map[string]time.Time
	isTask  map[string]bool
	failed  map[string]bool
}

func newProgress(t0 time.Time) *progress {
	p := &progress{t0: t0, entered: map[string]time.Time{}, first: map[string]time.Time{}, last: map[string]time.Time{}, isTask: map[string]bool{}, failed: map[string]bool{}}
	for _, f := range statemachine.Functions {
		p.isTask[f.Name] = true
	}
	p.isTask["RestoreInParallel"] = true
	return p
}

func (p *progress) event(e sfnlocal.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	stamp := fmt.Sprintf("%6.1fs", at.Sub(p.t0).Seconds())
	switch e.Type {
	case "StateEntered":
		p.entered[e.State] = at
		p.failed[e.State] = false
		if _, ok := p.first[e.State]; !ok {
			p.first[e.State] = at
		}
		if p.isTask[e.State] {
			fmt.Printf("%s ▶ %s\n", stamp, e.State)
		}
	case "StateExited":
		p.last[e.State] = at
		if p.isTask[e.State] && !p.failed[e.State] {
			fmt.Printf("%s ✓ %s (%.1fs)%s\n", stamp, e.State, at.Sub(p.entered[e.State]).Seconds(), summarize(e.State, e.Output))
		}
	case "StateRetried":
		fmt.Printf("%s ↻ %s retried after %s (attempt %d)\n", stamp, e.State, e.Error, e.Attempt)
	case "StateCaught":
		fmt.Printf("%s   %s's error caught → %s\n", stamp, e.State, e.Next)
	case "StateFailed":
		if e.Error != "" {
			p.last[e.State] = at
			p.failed[e.State] = true
			fmt.Printf("%s ✗ %s: %s %s\n", stamp, e.State, e.Error, firstLineOf(e.Cause))
		}
	case "ExecutionSucceeded":
		fmt.Printf("%s execution SUCCEEDED\n", stamp)
	case "ExecutionFailed":
		fmt.Printf("%s execution FAILED: %s %s\n", stamp, e.Error, firstLineOf(e.Cause))
	}
}

func firstLineOf(s string) string {
	var v struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(s), &v) == nil && v.ErrorMessage != "" {
		s = v.ErrorMessage
	}
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// summarize picks the few figures of a state's result worth a line.
func summarize(state string, out json.RawMessage) string {
	f, ok := statemachine.FunctionByName(state)
	key := f.ResultKey
	if !ok || key == "" || len(out) == 0 {
		return ""
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(out, &doc) != nil {
		return ""
	}
	var r map[string]any
	dec := json.NewDecoder(strings.NewReader(string(doc[key])))
	dec.UseNumber()
	if dec.Decode(&r) != nil {
		return ""
	}
	var parts []string
	for _, f := range []string{"status", "ready", "lsn", "slotName", "consistentPoint", "lagBytes", "equal", "different", "unverified", "outcome", "percent"} {
		if v, ok := r[f]; ok && v != nil && v != "" {
			parts = append(parts, fmt.Sprintf("%s=%v", f, v))
		}
	}
	if p, ok := r["proof"].(map[string]any); ok {
		parts = append(parts, fmt.Sprintf("seed=%v confirmedFlush=%v current=%v", p["seed"], p["confirmedFlush"], p["current"]))
	}
	if len(parts) == 0 {
		return ""
	}
	return "  " + strings.Join(parts, " ")
}

// phaseTime is one phase's wall time in the run.
type phaseTime struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

func (p *progress) phases() []phaseTime {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []phaseTime
	for _, ph := range phaseStates {
		var start, end time.Time
		for _, s := range ph.states {
			if f, ok := p.first[s]; ok && (start.IsZero() || f.Before(start)) {
				start = f
			}
			if l, ok := p.last[s]; ok && l.After(end) {
				end = l
			}
		}
		if !start.IsZero() && !end.IsZero() {
			out = append(out, phaseTime{ph.name, end.Sub(start).Seconds()})
		}
	}
	return out
}
