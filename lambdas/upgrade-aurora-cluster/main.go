// Command upgrade-aurora-cluster is the Lambda of the UpgradeAuroraCluster state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("UpgradeAuroraCluster", (*steps.Steps).UpgradeAuroraCluster) }
