// Command poll-aurora-cluster is the Lambda of the PollAuroraCluster state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("PollAuroraCluster", (*steps.Steps).PollAuroraCluster) }
