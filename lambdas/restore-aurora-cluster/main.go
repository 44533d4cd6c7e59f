// Command restore-aurora-cluster is the Lambda of the RestoreAuroraCluster state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("RestoreAuroraCluster", (*steps.Steps).RestoreAuroraCluster) }
