// Command create-publication-and-slot is the Lambda of the CreatePublicationAndSlot state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("CreatePublicationAndSlot", (*steps.Steps).CreatePublicationAndSlot) }
