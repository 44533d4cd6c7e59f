// Command prove-seed is the Lambda of the ProveSeed state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("ProveSeed", (*steps.Steps).ProveSeed) }
