// Command poll-aurora-instances is the Lambda of the PollAuroraInstances state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("PollAuroraInstances", (*steps.Steps).PollAuroraInstances) }
