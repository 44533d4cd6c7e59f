// Command poll-snapshot is the Lambda of the PollSnapshot state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("PollSnapshot", (*steps.Steps).PollSnapshot) }
