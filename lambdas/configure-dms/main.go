// Command configure-dms is the Lambda of the ConfigureDMS state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("ConfigureDMS", (*steps.Steps).ConfigureDMS) }
