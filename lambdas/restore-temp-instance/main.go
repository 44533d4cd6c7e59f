// Command restore-temp-instance is the Lambda of the RestoreTempInstance state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("RestoreTempInstance", (*steps.Steps).RestoreTempInstance) }
