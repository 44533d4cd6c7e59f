package grants

import (
	"testing"

	"github.com/seedrepl/seedrepl/statemachine"
)

func TestEveryStateHasARow(t *testing.T) {
	if len(Actions) != len(statemachine.Functions) {
		t.Errorf("%d rows for %d functions", len(Actions), len(statemachine.Functions))
	}
	for _, f := range statemachine.Functions {
		if _, ok := Actions[f.Name]; !ok {
			t.Errorf("no grants row for %s", f.Name)
		}
	}
	for state, actions := range Actions {
		for _, a := range actions {
			if a == "*" || a == "rds:*" || a == "dms:*" {
				t.Errorf("%s: wildcard action %s", state, a)
			}
		}
	}
}
