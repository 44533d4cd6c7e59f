package steps

import (
	"math"
	"time"
)

// A simulation of the poll loops' cost under NextWait, the schedule every
// poll handler returns as waitSeconds: the figures `make bench` writes to
// docs/bench-polling.md and the state machine's Comment quotes.

// progressModel maps the fraction of the operation done to AWS's percent.
type progressModel struct {
	name string
	pct  func(frac float64) int // negative: not reported
}

var models = []progressModel{
	{"no progress reported", func(float64) int { return -1 }},
	{"linear progress", func(f float64) int { return int(100 * f) }},
	{"stalled then fast (0% for the first 30%, quadratic after)", func(f float64) int {
		if f < 0.3 {
			return 0
		}
		g := (f - 0.3) / 0.7
		return int(100 * g * g)
	}},
}

// simResult is one simulated operation's cost and delay.
type simResult struct {
	polls int
	delay float64 // seconds between completion and the poll that saw it
}

// simulate an operation of duration d polled by NextWait from the create
// call (attempt 0) on.
func simulate(d time.Duration, m progressModel) simResult {
	t := 0.0
	total := d.Seconds()
	wait := NextWait(0, 0, -1)
	var r simResult
	for attempt := 1; ; attempt++ {
		t += float64(wait)
		r.polls++
		if t >= total {
			r.delay = t - total
			return r
		}
		wait = NextWait(attempt, time.Duration(t*float64(time.Second)), m.pct(t/total))
	}
}

type simSummary struct {
	model              string
	duration           time.Duration
	meanPolls, maxPoll float64
	meanTransitions    float64
	meanDelay, p90     float64
}

// summarize runs durations d±5% (200 samples) so the phase of the last
// wait against completion is spread out, as it is in reality.
func summarize(d time.Duration, m progressModel) simSummary {
	const n = 200
	var polls, delays []float64
	for i := 0; i < n; i++ {
		dd := time.Duration(float64(d) * (0.95 + 0.1*float64(i)/float64(n-1)))
		r := simulate(dd, m)
		polls = append(polls, float64(r.polls))
		delays = append(delays, r.delay)
	}
	s := simSummary{model: m.name, duration: d}
	for i := range polls {
		s.meanPolls += polls[i] / n
		s.maxPoll = math.Max(s.maxPoll, polls[i])
		s.meanDelay += delays[i] / n
	}
	s.meanTransitions = 3 * s.meanPolls
	sorted := append([]float64(nil), delays...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	s.p90 = sorted[int(0.9*float64(n))]
	return s
}

// PollingFigures is the mean cost (state transitions: Wait, Task and Choice
// per poll) and the mean delay between completion and the poll that notices
// it, for an operation of duration d, with AWS reporting linear progress or none.
func PollingFigures(d time.Duration, linearProgress bool) (transitions, meanDelaySeconds float64) {
	m := models[0]
	if linearProgress {
		m = models[1]
	}
	s := summarize(d, m)
	return s.meanTransitions, s.meanDelay
}
