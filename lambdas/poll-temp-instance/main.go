// Command poll-temp-instance is the Lambda of the PollTempInstance state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("PollTempInstance", (*steps.Steps).PollTempInstance) }
