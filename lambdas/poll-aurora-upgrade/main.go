// Command poll-aurora-upgrade is the Lambda of the PollAuroraUpgrade state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("PollAuroraUpgrade", (*steps.Steps).PollAuroraUpgrade) }
