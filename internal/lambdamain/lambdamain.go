// Package lambdamain is the wiring every Lambda main shares: configuration
// from the environment, AWS clients from config.LoadDefaultConfig (which
// honours AWS_ENDPOINT_URL_RDS and friends), the JSON logger, the error-name
// conversion at the handler boundary (sferr.Classify), and lambda.Start.
package lambdamain

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/config"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/seedrepl/seedrepl/internal/sferr"
	"github.com/seedrepl/seedrepl/internal/steps"
)

// New builds the handlers' dependencies from the environment.
func New(ctx context.Context) (*steps.Steps, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &steps.Steps{
		RDS:     rds.NewFromConfig(cfg),
		DMS:     dms.NewFromConfig(cfg),
		Secrets: secretsmanager.NewFromConfig(cfg),
		SNS:     sns.NewFromConfig(cfg),
		Config:  steps.ConfigFromEnv(),
		Log:     slog.New(slog.NewJSONHandler(os.Stdout, nil)),
	}, nil
}

// Wrap is the handler boundary: it logs the outcome with the step's name
// and converts any error to a declared name, keeping the message.
func Wrap[T, R any](step string, log *slog.Logger, h func(context.Context, T) (R, error)) func(context.Context, T) (R, error) {
	return func(ctx context.Context, in T) (R, error) {
		start := time.Now()
		log := log
		if st, ok := any(in).(steps.State); ok { // every line carries the run's labels
			log = log.With("migrationId", st.MigrationID, "executionId", st.ExecutionID)
		}
		out, err := h(ctx, in)
		reqID := ""
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			reqID = lc.AwsRequestID
		}
		if err != nil {
			err = sferr.Classify(err)
			log.Error("step failed", "step", step, "errorType", sferr.Name(err), "error", err.Error(),
				"requestId", reqID, "ms", time.Since(start).Milliseconds())
			var zero R
			return zero, err
		}
		log.Info("step done", "step", step, "requestId", reqID, "ms", time.Since(start).Milliseconds())
		return out, nil
	}
}

// Start runs one handler as a Lambda: h is a method expression of
// steps.Steps, e.g. (*steps.Steps).CreateSnapshot.
func Start[T, R any](step string, h func(*steps.Steps, context.Context, T) (R, error)) {
	s, err := New(context.Background())
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stdout, nil)).Error("configuration", "step", step, "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(Wrap(step, s.Log, func(ctx context.Context, in T) (R, error) { return h(s, ctx, in) }))
}
