// Command delete-temp-instance is the Lambda of the DeleteTempInstance state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("DeleteTempInstance", (*steps.Steps).DeleteTempInstance) }
