// Command poll-dms-task is the Lambda of the PollDMSTask state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("PollDMSTask", (*steps.Steps).PollDMSTask) }
