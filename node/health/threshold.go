package health

import "fmt"

// threshold is one check's state machine: consecutive results turn it
// passing or critical. It is pure (no clock, no I/O) so that it can be
// tested result by result.
//
// It starts critical with no result: a service must answer once before it
// takes sessions.
type threshold struct {
	failuresBeforeCritical int
	successesBeforePassing int

	passing   bool
	failures  int   // failures in a row, 0 after a success
	successes int   // successes in a row, 0 after a failure
	lastErr   error // the latest failure's error, kept until passing
}

func newThreshold(failures, successes int) threshold {
	return threshold{failuresBeforeCritical: failures, successesBeforePassing: successes}
}

// observe records one run's result (nil for a success) and reports whether
// the check flipped between passing and critical.
func (t *threshold) observe(err error) (flipped bool) {
	was := t.passing
	if err == nil {
		t.failures = 0
		t.successes++
		if !t.passing && t.successes >= t.successesBeforePassing {
			t.passing = true
			t.lastErr = nil
		}
	} else {
		t.successes = 0
		t.failures++
		t.lastErr = err
		if t.passing && t.failures >= t.failuresBeforeCritical {
			t.passing = false
		}
	}
	return t.passing != was
}

// reason says why a critical check is critical; it is empty while the
// check passes.
func (t *threshold) reason() string {
	switch {
	case t.passing:
		return ""
	case t.lastErr == nil && t.successes == 0:
		return "no result yet"
	case t.lastErr == nil:
		return fmt.Sprintf("%d of %d successes needed, no failure yet", t.successes, t.successesBeforePassing)
	case t.successes > 0:
		return fmt.Sprintf("%d of %d successes needed since: %v", t.successes, t.successesBeforePassing, t.lastErr)
	case t.failures == 1:
		return fmt.Sprintf("1 failure: %v", t.lastErr)
	default:
		return fmt.Sprintf("%d failures in a row: %v", t.failures, t.lastErr)
	}
}
