// Command teardown is the Lambda of the Teardown state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("Teardown", (*steps.Steps).Teardown) }
