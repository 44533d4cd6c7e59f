package statemachine_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/seedrepl/seedrepl/internal/steps"
	"github.com/seedrepl/seedrepl/statemachine"
)

// The definition's Comment quotes what polling costs under the schedule the
// poll handlers really use (steps.NextWait, simulated by steps.PollingFigures):
// keep it true, and keep the design goal for operations AWS reports progress
// for (a 2-hour restore: well under 100 transitions, noticed within ~20 s).
func TestCommentQuotesThePollingFigures(t *testing.T) {
	lt, ld := steps.PollingFigures(2*time.Hour, true)
	nt, nd := steps.PollingFigures(2*time.Hour, false)
	t.Logf("2 h with progress: %.1f transitions, %.1f s mean delay; without: %.1f transitions, %.1f s", lt, ld, nt, nd)
	if lt >= 100 || ld > 20 {
		t.Errorf("with progress a 2-hour restore costs %.0f transitions and is noticed %.0f s late; the design asks < 100 and ~20 s", lt, ld)
	}
	for _, want := range []string{
		fmt.Sprintf("a 2-hour restore costs %.0f transitions", math.Round(lt)),
		fmt.Sprintf("noticed %.0f s after completion on average", math.Round(ld)),
		fmt.Sprintf("would cost %.0f transitions and be noticed %.0f s late", math.Round(nt), math.Round(nd)),
	} {
		if !strings.Contains(statemachine.Definition, want) {
			t.Errorf("the definition's Comment does not say %q", want)
		}
	}
}
