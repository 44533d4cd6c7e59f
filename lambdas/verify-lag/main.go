// Command verify-lag is the Lambda of the VerifyLag state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("VerifyLag", (*steps.Steps).VerifyLag) }
