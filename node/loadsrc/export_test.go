package loadsrc

import "time"

// withTicks makes the Tracker tick when the test sends on ticks.
func withTicks(o Options, ticks <-chan time.Time) Options {
	o.tick = func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
	return o
}
