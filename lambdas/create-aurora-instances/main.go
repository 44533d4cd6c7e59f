// Command create-aurora-instances is the Lambda of the CreateAuroraInstances state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("CreateAuroraInstances", (*steps.Steps).CreateAuroraInstances) }
