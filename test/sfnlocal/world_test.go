package sfnlocal_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/seedrepl/seedrepl/internal/sferr"
	"github.com/seedrepl/seedrepl/statemachine"
	"github.com/seedrepl/seedrepl/test/sfnlocal"
)

// terminalFor is the terminal error a state's handler would return.
func terminalFor(state string) error {
	err := errors.New("scripted failure at " + state)
	switch state {
	case "ValidateInput":
		return sferr.NewInvalidInput(err)
	case "Preflight":
		return sferr.NewPreflightFailed(err)
	case "ProveSeed":
		return sferr.NewSeedProofFailed(err)
	case "Validate":
		return sferr.NewValidationFailed(err)
	case "PollSnapshot", "PollAuroraCluster", "PollAuroraInstances", "PollAuroraUpgrade", "PollTempInstance", "PollDMSTask":
		return sferr.NewResourceFailed(err)
	}
	return sferr.NewTerminal(err)
}

// world is a scripted set of handlers: each create/poll pair becomes ready
// after Polls polls, every other step succeeds, and Fail can make a state's
// handler return an error on chosen calls.
type world struct {
	Upgrade bool
	Polls   int // poll calls returning ready=false before ready=true
	// Fail, if set, is asked before each call (1-based call number per
	// function) and returns the error to return instead of a result.
	Fail func(function string, call int) error

	mu    sync.Mutex
	calls map[string]int
}

func (w *world) next(fn string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.calls == nil {
		w.calls = map[string]int{}
	}
	w.calls[fn]++
	return w.calls[fn]
}

type poll struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Ready       bool   `json:"ready"`
	WaitSeconds int    `json:"waitSeconds"`
	Attempt     int    `json:"attempt"`
}

// pollFuncs are the poll functions and the result key they write.
var pollOf = map[string]string{
	"PollSnapshot":        "CreateSnapshot",
	"PollAuroraCluster":   "RestoreAuroraCluster",
	"PollAuroraInstances": "CreateAuroraInstances",
	"PollAuroraUpgrade":   "UpgradeAuroraCluster",
	"PollTempInstance":    "RestoreTempInstance",
	"PollDMSTask":         "ConfigureDMS",
}

func (w *world) result(fn string, call int, payload json.RawMessage) any {
	if _, ok := pollOf[fn]; ok {
		ready := call > w.Polls
		st := "creating"
		if ready {
			st = "available"
		}
		// 300 s: the longest wait the schedule allows; WaitScale makes it short.
		return poll{ID: fn, Status: st, Ready: ready, WaitSeconds: 300, Attempt: call}
	}
	for _, create := range pollOf {
		if create == fn {
			return poll{ID: fn, Status: "creating", WaitSeconds: 15}
		}
	}
	switch fn {
	case "ValidateInput":
		return map[string]any{"migrationId": "m1", "upgrade": w.Upgrade, "slotName": "seedrepl_m1"}
	case "Preflight":
		return map[string]any{"ok": true}
	case "CreatePublicationAndSlot":
		return map[string]any{"slotName": "seedrepl_m1", "publication": "seedrepl_m1", "created": true}
	case "ReadSeedLSN":
		return map[string]any{"lsn": "0/16B3748"}
	case "DeleteTempInstance":
		return poll{ID: "temp", Status: "deleting", Ready: true}
	case "ProveSeed":
		return map[string]any{"proved": true}
	case "ConfigureSubscription":
		return map[string]any{"ready": true, "subscription": "seedrepl_m1"}
	case "VerifyLag":
		return map[string]any{"ready": call > w.Polls, "waitSeconds": 60, "lagBytes": 1024}
	case "Validate":
		return map[string]any{"ok": true, "tables": 3}
	case "Report":
		var doc map[string]any
		_ = json.Unmarshal(payload, &doc)
		return map[string]any{"migrationId": "m1", "outcome": "replicating", "mode": doc["mode"]}
	case "Notify":
		return map[string]any{"messageId": "n1"}
	case "Teardown", "Rollback":
		return map[string]any{"dropped": []string{"subscription", "slot", "publication"}}
	}
	return map[string]any{}
}

func (w *world) handlers() map[string]sfnlocal.Handler {
	m := map[string]sfnlocal.Handler{}
	for _, f := range statemachine.Functions {
		fn := f.Name
		m[fn] = func(ctx context.Context, payload json.RawMessage) (any, error) {
			call := w.next(fn)
			if w.Fail != nil {
				if err := w.Fail(fn, call); err != nil {
					return nil, err
				}
			}
			if !json.Valid(payload) {
				return nil, fmt.Errorf("invalid payload")
			}
			return w.result(fn, call, payload), nil
		}
	}
	return m
}
