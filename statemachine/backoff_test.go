package statemachine_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/seedrepl/seedrepl/statemachine"
)

// A model of the poll loops' cost, for the figures quoted in the ASL's
// Comment. The real schedules are computed by the poll handlers
// (internal/steps); `make bench` will measure those. Here:
//
//   - an operation takes T seconds; the create call is made at t = 0 and
//     returns the first waitSeconds; each poll at t_k returns ready when
//     t_k >= T, otherwise the next waitSeconds;
//   - transitions = 1 (the create Task) + 3 per poll (Wait, Poll, Choice);
//   - detection delay = t_k - T for the first ready poll; its mean is taken
//     over T uniform in [T0 - 10 min, T0 + 10 min] in 1 s steps, so the
//     phase of completion against the schedule is averaged out;
//   - Lambda latency (a few hundred ms per poll) is ignored.

type schedule func(elapsed float64, attempt int, percent int) float64

// capped is the capped exponential schedule: first, doubling, capped at max.
func capped(first, max float64) schedule {
	return func(elapsed float64, attempt int, percent int) float64 {
		return math.Min(first*math.Pow(2, float64(attempt)), max)
	}
}

// progressAware uses AWS's PercentProgress when it is > 0: wait =
// clamp(remaining/2, lo, hi) with remaining = elapsed*(100-p)/p; before
// any progress is reported it falls back to the capped schedule.
func progressAware(lo, hi float64, fallback schedule) schedule {
	return func(elapsed float64, attempt int, percent int) float64 {
		if percent <= 0 {
			return fallback(elapsed, attempt, percent)
		}
		remaining := elapsed * float64(100-percent) / float64(percent)
		return math.Max(lo, math.Min(hi, remaining/2))
	}
}

// simulate returns the number of polls and the detection delay for an
// operation of duration total whose reported percent grows linearly and is
// truncated to an integer, as RDS reports it.
func simulate(s schedule, total float64) (polls int, delay float64) {
	t := 0.0
	attempt := 0
	percent := 0
	for {
		// Step Functions' Wait takes whole seconds.
		t += math.Round(s(t, attempt, percent))
		polls++
		attempt++
		if t >= total {
			return polls, t - total
		}
		percent = int(100 * t / total)
	}
}

type figures struct {
	Transitions    int     // at exactly T0
	MeanTransition float64 // over the window
	MeanDelay      float64
	MaxDelay       float64
}

func measure(s schedule, t0 float64) figures {
	polls, _ := simulate(s, t0)
	f := figures{Transitions: 1 + 3*polls}
	n := 0
	var sumDelay, sumTrans float64
	for total := t0 - 600; total <= t0+600; total++ {
		p, d := simulate(s, total)
		sumDelay += d
		sumTrans += float64(1 + 3*p)
		f.MaxDelay = math.Max(f.MaxDelay, d)
		n++
	}
	f.MeanDelay = sumDelay / float64(n)
	f.MeanTransition = sumTrans / float64(n)
	return f
}

func (f figures) String() string {
	return fmt.Sprintf("%d transitions (mean %.0f), mean delay %.0f s (max %.0f s)", f.Transitions, f.MeanTransition, f.MeanDelay, f.MaxDelay)
}

// The schedules the Comment quotes.
var (
	capped300   = capped(15, 300)
	capped60    = capped(15, 60)
	progress300 = progressAware(10, 300, capped(15, 300))
)

func TestBackoffFigures(t *testing.T) {
	const twoHours = 7200
	rows := []struct {
		name string
		s    schedule
	}{
		{"capped 15s doubling, cap 300s", capped300},
		{"capped 15s doubling, cap 120s", capped(15, 120)},
		{"capped 15s doubling, cap 60s", capped60},
		{"capped 15s doubling, cap 30s", capped(15, 30)},
		{"progress-aware clamp(remaining/2, 10s, 300s)", progress300},
	}
	got := map[string]figures{}
	for _, r := range rows {
		f := measure(r.s, twoHours)
		got[r.name] = f
		t.Logf("2 h operation, %-46s %s", r.name+":", f)
	}
	pa := got["progress-aware clamp(remaining/2, 10s, 300s)"]
	if pa.Transitions >= 100 || pa.MeanDelay > 20 {
		t.Errorf("progress-aware schedule: %s; the design asks < 100 transitions and ~20 s mean delay", pa)
	}

	// The Comment of migration.asl.json quotes these figures: keep them true.
	c := statemachine.Definition
	for _, want := range []string{
		fmt.Sprintf("costs %d transitions", got["capped 15s doubling, cap 300s"].Transitions),
		fmt.Sprintf("noticed %.0f s after completion on average", got["capped 15s doubling, cap 300s"].MeanDelay),
		fmt.Sprintf("cap 60 s: %d transitions, %.0f s", got["capped 15s doubling, cap 60s"].Transitions, got["capped 15s doubling, cap 60s"].MeanDelay),
		fmt.Sprintf("p > 0), costs %d transitions", pa.Transitions),
		fmt.Sprintf("noticed %.0f s after completion on average (at most %.0f s)", pa.MeanDelay, pa.MaxDelay),
	} {
		if !strings.Contains(c, want) {
			t.Errorf("the definition's Comment does not say %q", want)
		}
	}
}
