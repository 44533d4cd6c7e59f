package steps

import (
	"github.com/seedrepl/seedrepl/internal/sferr"

	"math"
	"time"
)

// Poll backoff. Step Functions owns the waiting: each poll handler returns
// waitSeconds for the next Wait (SecondsPath). Two regimes:
//
//   - AWS reports progress (DBSnapshot.PercentProgress,
//     DBCluster.PercentProgress): the remaining time is estimated as
//     elapsed×(100−p)/p and the next wait is a third of it (at most the time
//     elapsed so far, at most ProgressMaxWait), so the waits shrink as
//     completion nears and completion is noticed within seconds, while a
//     long operation costs few polls;
//   - no progress: a capped exponential, 10 s doubling per attempt, never
//     more than a third of the time elapsed so far (a short operation is not
//     overshot by much), never more than MaxWait.
//
// Every wait is at least MinWait. docs/bench-polling.md has the
// figures (TestWritePollingReport).
const (
	MinWait         = 10  // seconds
	MaxWait         = 300 // seconds, without progress
	ProgressMaxWait = 600 // seconds, when AWS reports progress
)

// NextWait is the next Wait in seconds. attempt is the number of polls made
// so far (0 for the create call), elapsed the time since the operation
// started, percent AWS's progress (negative: not reported).
func NextWait(attempt int, elapsed time.Duration, percent int) int {
	return schedule.next(attempt, elapsed, percent)
}

// waitSchedule is NextWait's tuning.
type waitSchedule struct {
	divisor     float64 // wait = estimated remaining / divisor
	progressMax float64 // cap when progress is reported
	elapsedDiv  float64 // a progress-based wait is at most elapsed / elapsedDiv
}

// schedule was chosen with the simulation in backoff_test.go (see
// docs/bench-polling.md): a third of the remaining time keeps the mean
// detection delay near 10 s when progress is linear and under 20 s when it
// accelerates; a wait never longer than the time elapsed so far guards
// against the huge estimates of an early 1-2 %; the longer cap with progress
// (ProgressMaxWait) is what keeps a 2-hour operation well under 100
// transitions: at MaxWait alone it would cost 72 for the waits only.
var schedule = waitSchedule{divisor: 3, progressMax: ProgressMaxWait, elapsedDiv: 1}

func (ws waitSchedule) next(attempt int, elapsed time.Duration, percent int) int {
	if elapsed < 0 {
		elapsed = 0
	}
	var w float64
	switch {
	case percent >= 100:
		w = MinWait // finishing: AWS still says creating/modifying
	case percent > 0:
		remaining := elapsed.Seconds() * float64(100-percent) / float64(percent)
		w = remaining / ws.divisor
		if ws.elapsedDiv > 0 && w > elapsed.Seconds()/ws.elapsedDiv {
			w = elapsed.Seconds() / ws.elapsedDiv
		}
		if w > ws.progressMax {
			w = ws.progressMax
		}
		if w < MinWait {
			w = MinWait
		}
		return int(math.Round(w))
	default:
		exp := MinWait * math.Pow(2, float64(attempt))
		w = math.Min(exp, math.Max(elapsed.Seconds()/3, MinWait))
	}
	return clampWait(w)
}

func clampWait(w float64) int {
	if math.IsNaN(w) || w < MinWait {
		return MinWait
	}
	if w > MaxWait {
		return MaxWait
	}
	return int(math.Round(w))
}

// nextPoll fills a Poll's Attempt and WaitSeconds from the previous result
// and what AWS reported now. A resource still not ready after
// Config.PollTimeout is a failure (the state machine has no loop limit of
// its own): ResourceFailed, so the run rolls back instead of waiting forever.
func (s *Steps) nextPoll(prev *Poll, cur *Poll, created time.Time) error {
	attempt := 0
	started := ""
	createdFlag := false
	if prev != nil {
		attempt = prev.Attempt
		started = prev.StartedAt
		createdFlag = prev.Created
	}
	cur.Attempt = attempt + 1
	if cur.StartedAt == "" {
		cur.StartedAt = started
	}
	if cur.StartedAt == "" && !created.IsZero() {
		cur.StartedAt = created.UTC().Format(time.RFC3339)
	}
	cur.Created = cur.Created || createdFlag
	if cur.Ready {
		cur.WaitSeconds = 0
		return nil
	}
	var elapsed time.Duration
	if t, err := time.Parse(time.RFC3339, cur.StartedAt); err == nil {
		elapsed = s.now().Sub(t)
	}
	if err := s.pollExpired(cur.ID, cur.Status, elapsed); err != nil {
		return err
	}
	pct := -1
	if cur.Percent > 0 {
		pct = cur.Percent
	}
	cur.WaitSeconds = NextWait(cur.Attempt, elapsed, pct)
	return nil
}

// pollExpired fails a poll that has waited longer than Config.PollTimeout.
func (s *Steps) pollExpired(id, status string, elapsed time.Duration) error {
	if s.Config.PollTimeout > 0 && elapsed > s.Config.PollTimeout {
		return sferr.ResourceFailedf("%s is still %q after %s (SEEDREPL_POLL_TIMEOUT %s): giving up and rolling back",
			id, status, elapsed.Round(time.Second), s.Config.PollTimeout)
	}
	return nil
}
