// Command read-seed-lsn is the Lambda of the ReadSeedLSN state.
package main

import (
	"github.com/seedrepl/seedrepl/internal/lambdamain"
	"github.com/seedrepl/seedrepl/internal/steps"
)

func main() { lambdamain.Start("ReadSeedLSN", (*steps.Steps).ReadSeedLSN) }
