// Command configure-subscription is the Lambda of the ConfigureSubscription state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("ConfigureSubscription", (*steps.Steps).ConfigureSubscription) }
