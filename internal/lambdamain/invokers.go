package lambdamain

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/seedrepl/seedrepl/internal/steps"
)

// Invoker is one state's handler as the Lambda runtime sees it: the raw
// event in, the result (or an error with a declared name) out.
type Invoker func(ctx context.Context, payload json.RawMessage) (any, error)

// invoker decodes the event as aws-lambda-go does (json.Decoder, unknown
// fields ignored) and calls the handler behind the same boundary as Start.
func invoker[T, R any](step string, s *steps.Steps, h func(*steps.Steps, context.Context, T) (R, error)) Invoker {
	w := Wrap(step, s.Log, func(ctx context.Context, in T) (R, error) { return h(s, ctx, in) })
	return func(ctx context.Context, payload json.RawMessage) (any, error) {
		var in T
		if err := json.NewDecoder(bytes.NewReader(payload)).Decode(&in); err != nil {
			return nil, err
		}
		return w(ctx, in)
	}
}

// Invokers maps every Task state name (statemachine.Functions) to its
// handler, for running the workflow in one process (the local rehearsal and
// the end-to-end tests) exactly as the Lambdas run it.
func Invokers(s *steps.Steps) map[string]Invoker {
	return map[string]Invoker{
		"ValidateInput":            invoker("ValidateInput", s, (*steps.Steps).ValidateInput),
		"Preflight":                invoker("Preflight", s, (*steps.Steps).Preflight),
		"CreatePublicationAndSlot": invoker("CreatePublicationAndSlot", s, (*steps.Steps).CreatePublicationAndSlot),
		"CreateSnapshot":           invoker("CreateSnapshot", s, (*steps.Steps).CreateSnapshot),
		"PollSnapshot":             invoker("PollSnapshot", s, (*steps.Steps).PollSnapshot),
		"RestoreAuroraCluster":     invoker("RestoreAuroraCluster", s, (*steps.Steps).RestoreAuroraCluster),
		"PollAuroraCluster":        invoker("PollAuroraCluster", s, (*steps.Steps).PollAuroraCluster),
		"CreateAuroraInstances":    invoker("CreateAuroraInstances", s, (*steps.Steps).CreateAuroraInstances),
		"PollAuroraInstances":      invoker("PollAuroraInstances", s, (*steps.Steps).PollAuroraInstances),
		"UpgradeAuroraCluster":     invoker("UpgradeAuroraCluster", s, (*steps.Steps).UpgradeAuroraCluster),
		"PollAuroraUpgrade":        invoker("PollAuroraUpgrade", s, (*steps.Steps).PollAuroraUpgrade),
		"RestoreTempInstance":      invoker("RestoreTempInstance", s, (*steps.Steps).RestoreTempInstance),
		"PollTempInstance":         invoker("PollTempInstance", s, (*steps.Steps).PollTempInstance),
		"ReadSeedLSN":              invoker("ReadSeedLSN", s, (*steps.Steps).ReadSeedLSN),
		"DeleteTempInstance":       invoker("DeleteTempInstance", s, (*steps.Steps).DeleteTempInstance),
		"ProveSeed":                invoker("ProveSeed", s, (*steps.Steps).ProveSeed),
		"ConfigureSubscription":    invoker("ConfigureSubscription", s, (*steps.Steps).ConfigureSubscription),
		"ConfigureDMS":             invoker("ConfigureDMS", s, (*steps.Steps).ConfigureDMS),
		"PollDMSTask":              invoker("PollDMSTask", s, (*steps.Steps).PollDMSTask),
		"VerifyLag":                invoker("VerifyLag", s, (*steps.Steps).VerifyLag),
		"Validate":                 invoker("Validate", s, (*steps.Steps).Validate),
		"Report":                   invoker("Report", s, (*steps.Steps).Report),
		"Notify":                   invoker("Notify", s, (*steps.Steps).Notify),
		"Teardown":                 invoker("Teardown", s, (*steps.Steps).Teardown),
		"Rollback":                 invoker("Rollback", s, (*steps.Steps).Rollback),
	}
}
