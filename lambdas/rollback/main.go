// Command rollback is the Lambda of the Rollback state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("Rollback", (*steps.Steps).Rollback) }
