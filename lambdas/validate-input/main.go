// Command validate-input is the Lambda of the ValidateInput state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("ValidateInput", (*steps.Steps).ValidateInput) }
