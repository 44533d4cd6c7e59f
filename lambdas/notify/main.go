// Command notify is the Lambda of the Notify state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("Notify", (*steps.Steps).Notify) }
