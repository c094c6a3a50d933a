package node

import "sync"

// quietAgents holds the agents that tests silenced with setQuiet.
var quietAgents sync.Map // *Agent → struct{}

func init() {
	testHookQuiet = func(a *Agent) bool {
		_, ok := quietAgents.Load(a)
		return ok
	}
}

// setQuiet makes a stop (on) or resume publishing its load reports, as a
// node whose reports stopped reaching the farm would.
func setQuiet(a *Agent, on bool) {
	if on {
		quietAgents.Store(a, struct{}{})
		return
	}
	quietAgents.Delete(a)
}
