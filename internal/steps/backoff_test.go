package steps

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNextWait(t *testing.T) {
	for _, c := range []struct {
		attempt int
		elapsed time.Duration
		pct     int
		want    int
	}{
		{0, 0, -1, MinWait},
		{1, 10 * time.Second, -1, MinWait},    // a fifth of the elapsed time bounds it
		{3, 180 * time.Second, -1, 60},        // min(80, 60)
		{3, 1000 * time.Second, -1, 80},       // 10·2³
		{20, 5 * time.Hour, -1, MaxWait},      // capped
		{5, time.Hour, 50, ProgressMaxWait},   // 1 h left → 20 min → cap
		{5, 100 * time.Second, 2, 100},        // early 2 %: at most the elapsed time
		{5, 100 * time.Minute, 98, 41},        // 122 s left → a third
		{5, 100 * time.Minute, 100, MinWait},  // finishing
		{5, time.Minute, 99, MinWait},         // < 1 s left → floor
		{5, -time.Minute, 50, MinWait},        // clock skew
		{1000, 1000 * time.Hour, -1, MaxWait}, // no overflow
	} {
		if got := NextWait(c.attempt, c.elapsed, c.pct); got != c.want {
			t.Errorf("NextWait(%d, %s, %d) = %d, want %d", c.attempt, c.elapsed, c.pct, got, c.want)
		}
	}
}

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

// TestPollingTwoHourRestore holds the design goal for operations AWS
// reports progress for: a 2-hour restore costs well under 100 transitions
// (3 per poll: Wait, Task, Choice) and is noticed within ~20 s on average.
func TestPollingTwoHourRestore(t *testing.T) {
	for _, m := range models[1:] {
		s := summarize(2*time.Hour, m)
		t.Logf("%s: %.1f polls (%.0f transitions), mean delay %.1f s, p90 %.1f s", m.name, s.meanPolls, s.meanTransitions, s.meanDelay, s.p90)
		if s.meanTransitions >= 100 {
			t.Errorf("%s: %.0f transitions, want < 100", m.name, s.meanTransitions)
		}
		if s.meanDelay > 20 {
			t.Errorf("%s: mean detection delay %.1f s, want <= 20", m.name, s.meanDelay)
		}
	}
	// Without progress the goal is out of reach (20 s mean delay needs ~40 s
	// waits): the schedule is capped instead, bounded cost and bounded delay.
	s := summarize(2*time.Hour, models[0])
	t.Logf("%s: %.1f polls (%.0f transitions), mean delay %.1f s", models[0].name, s.meanPolls, s.meanTransitions, s.meanDelay)
	if s.meanTransitions >= 150 || s.meanDelay > MaxWait/2+10 {
		t.Errorf("no progress: %.0f transitions, delay %.1f s", s.meanTransitions, s.meanDelay)
	}
}

func BenchmarkPolling(b *testing.B) {
	for _, m := range models {
		b.Run(strings.ReplaceAll(m.name, " ", "_"), func(b *testing.B) {
			var s simSummary
			for i := 0; i < b.N; i++ {
				s = summarize(2*time.Hour, m)
			}
			b.ReportMetric(s.meanTransitions, "transitions/op2h")
			b.ReportMetric(s.meanDelay, "delay-s/op2h")
		})
	}
}

// TestWritePollingReport writes docs/bench-polling.md when
// SEEDREPL_WRITE_BENCH=1:
//
//	SEEDREPL_WRITE_BENCH=1 go test ./internal/steps -run TestWritePollingReport -count=1
func TestWritePollingReport(t *testing.T) {
	var b strings.Builder
	b.WriteString("# Polling cost and detection delay\n\n")
	b.WriteString("Generated by `SEEDREPL_WRITE_BENCH=1 go test ./internal/steps -run TestWritePollingReport -count=1`\n")
	b.WriteString("(pure simulation of `steps.NextWait`, the schedule every poll handler returns as `waitSeconds`).\n\n")
	fmt.Fprintf(&b, "Waits are at least %d s; at most %d s without progress, %d s with progress. Each poll costs 3 state transitions (Wait, Task, Choice).\n", MinWait, MaxWait, ProgressMaxWait)
	b.WriteString("Each row is the mean over 200 operations whose duration is spread ±5 % around the nominal one,\n")
	b.WriteString("so the phase of the last wait against the completion varies as it does in reality.\n\n")
	b.WriteString("| operation | progress reported by AWS | polls | transitions | mean delay (s) | p90 delay (s) |\n|---|---|---:|---:|---:|---:|\n")
	for _, d := range []time.Duration{10 * time.Minute, 30 * time.Minute, 2 * time.Hour, 6 * time.Hour} {
		for _, m := range models {
			s := summarize(d, m)
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.0f | %.1f | %.1f |\n", d, m.name, s.meanPolls, s.meanTransitions, s.meanDelay, s.p90)
		}
	}
	b.WriteString(`
Reading it:

- With progress (DBSnapshot.PercentProgress for CreateSnapshot/PollSnapshot, DBCluster.PercentProgress for the
  Aurora restore and upgrade) the wait is a third of the estimated remaining time (never more than the time
  elapsed so far, never more than 600 s): a 2-hour operation costs well under 100 transitions and is
  noticed within ~10-20 s on average — the design goal.
- Without progress (DB instances: the temporary instance, the Aurora writer and readers; DMS) the schedule
  is a capped exponential (10 s doubling) bounded by a third of the elapsed time: cost stays bounded, but the delay is about half
  the last wait (up to ~150 s for long operations). Those operations are usually minutes, not hours.
- Both at once are impossible without progress: a mean delay of 20 s needs ~40 s waits, i.e. ~540
  transitions for 2 hours.
`)
	if os.Getenv("SEEDREPL_WRITE_BENCH") != "1" {
		t.Log("\n" + b.String())
		return
	}
	_, file, _ := callerFile()
	out := filepath.Join(filepath.Dir(file), "..", "..", "docs", "bench-polling.md")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
}

func callerFile() (uintptr, string, int) {
	pc, file, line, _ := runtimeCaller(0)
	return pc, file, line
}
