package loadsrc

import (
	"context"
	"errors"
	"fmt"
)

// Env is what Build needs from the agent.
type Env struct {
	// Sessions counts the built-in endpoint's sessions; required by the
	// sessions source.
	Sessions func() int
	// Options are the Tracker's (or, for push, only OnChange).
	Options Options
}

// Build validates the spec and starts its source for the service name: a
// *Push for push (the agent's API calls its Set), a running *Tracker for
// every other kind. The caller closes it.
func (s *Spec) Build(name string, env Env) (Source, error) {
	set, err := s.Validate()
	if err != nil {
		return nil, err
	}
	var p Poller
	switch set.Kind {
	case KindPush:
		return NewPush(set, env.Options.OnChange), nil
	case KindSessions:
		if env.Sessions == nil {
			return nil, errors.New("load.source \"sessions\": the agent gave no session count")
		}
		count := env.Sessions
		p = PollerFunc(func(context.Context) (Reading, error) { return Reading{Load: count()}, nil })
	case KindPrometheus:
		p = newPrometheus(set)
	case KindCommand:
		p = newCommand(set)
	case KindSockets:
		p = newSockets(set)
	default:
		return nil, fmt.Errorf("load.source %q: unknown", set.Kind)
	}
	return NewTracker(name, p, set, env.Options), nil
}
