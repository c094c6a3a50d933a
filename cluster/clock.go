package cluster

import "time"

// processStart anchors Monotonic. time.Now carries a monotonic reading, so
// time.Since(processStart) never jumps with wall-clock changes.
var processStart = time.Now()

// Monotonic returns the time elapsed since the process started, from the
// monotonic clock. Lease deadlines and Config.OnVIP instants use this scale,
// so intervals recorded by a harness in the same process compare directly.
func Monotonic() time.Duration { return time.Since(processStart) }
