// Command preflight is the Lambda of the Preflight state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("Preflight", (*steps.Steps).Preflight) }
