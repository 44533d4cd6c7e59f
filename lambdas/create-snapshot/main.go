// Command create-snapshot is the Lambda of the CreateSnapshot state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("CreateSnapshot", (*steps.Steps).CreateSnapshot) }
