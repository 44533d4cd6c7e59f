// Command infra is the CDK app of seedrepl. Run it through the CDK CLI from
// the repository root (cdk.json: "app": "go run ./infra"):
//
//	npx cdk synth -c vpcId=vpc-... -c sourceInstanceId=...
//
// Configuration comes from cdk.json's "context" and -c flags; see
// infra/stack/config.go and docs/deploy.md.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/seedrepl/seedrepl/infra/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seedrepl infra:", err)
		jsii.Close()
		os.Exit(1)
	}
	jsii.Close()
}

func run() error {
	app := awscdk.NewApp(nil)
	root, err := stack.FindRepoRoot(".")
	if err != nil {
		return err
	}
	cfg, err := stack.ConfigFromContext(func(key string) any {
		return app.Node().TryGetContext(jsii.String(key))
	}, root)
	if err != nil {
		return err
	}
	if _, err := stack.New(app, cfg); err != nil {
		return err
	}
	stack.ApplyNag(app, true)
	app.Synth(nil)
	stack.RemoveStubs()
	return nil
}
