// Command validate is the Lambda of the Validate state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("Validate", (*steps.Steps).Validate) }
