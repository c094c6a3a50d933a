package node

import (
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/node/health"
)

// serviceRun is one service block as this node runs it: its health
// checks and its load, and the count of sessions it has accepted as far
// as this node can tell (see observe).
type serviceRun struct {
	svc    Service
	checks *health.Checker

	mu       sync.Mutex
	load     int    // the last load figure
	accepted uint64 // every rise of load, summed: what the leader's ledger reconciles against
}

// observe records a new load figure: a rise counts as that many sessions
// accepted, which is what the leader's pending ledger reconciles against
// when the load source knows no count of its own.
func (s *serviceRun) observe(load int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if load > s.load {
		s.accepted += uint64(load - s.load)
	}
	s.load = load
}

// report returns the service's part of the node's report.
func (s *serviceRun) report(draining bool) cluster.ServiceReport {
	passing, _ := s.checks.Status()
	s.mu.Lock()
	load, accepted := s.load, s.accepted
	s.mu.Unlock()
	return cluster.ServiceReport{
		Name:      s.svc.Name,
		Addr:      s.svc.Addr,
		Addr6:     s.svc.Addr6,
		Sessions:  uint32(max(load, 0)),
		Capacity:  uint32(s.svc.Capacity),
		Accepted:  accepted,
		Draining:  draining,
		Unhealthy: !passing,
	}
}

// startServices starts the health checks of every service block. A
// check's change of mind wakes the view loop, so the farm hears of it at
// the next publish rather than a tick later.
func (a *Agent) startServices(logger hclog.Logger, undo *undoStack) error {
	for _, svc := range a.cfg.Parsed.Services {
		s := &serviceRun{svc: svc}
		log := logger.Named("service").With("service", svc.Name)
		specs := a.cfg.serviceConfig(svc.Name).Checks
		checks, err := health.New(specs, health.Options{
			Logger: log,
			OnChange: func(passing bool, reason string) {
				if passing {
					log.Info("service passing its health checks")
				} else {
					log.Warn("service failing its health checks: it takes no new sessions", "reason", reason)
				}
				a.wakeView()
			},
		})
		if err != nil {
			return fmt.Errorf("service %q: %w", svc.Name, err)
		}
		s.checks = checks
		undo.push(func() { checks.Close() })
		a.services = append(a.services, s)
	}
	return nil
}

// closeServices stops every service's checks and load source.
func (a *Agent) closeServices() {
	for _, s := range a.services {
		s.checks.Close()
	}
}

// serviceReports returns the services' part of the node's report.
func (a *Agent) serviceReports(draining bool) []cluster.ServiceReport {
	if len(a.services) == 0 {
		return nil
	}
	out := make([]cluster.ServiceReport, len(a.services))
	for i, s := range a.services {
		out[i] = s.report(draining)
	}
	return out
}

// serviceConfig returns the service block named name.
func (r *Runtime) serviceConfig(name string) ServiceConfig {
	for _, s := range r.Services {
		if s.Name == name {
			return s
		}
	}
	return ServiceConfig{}
}

// newServiceViews builds the responder's views of the named services.
func newServiceViews(named map[string][]assign.Node) *ServiceViews {
	v := make(ServiceViews, len(named))
	for name, nodes := range named {
		v[name] = assign.NewView(nodes)
	}
	return &v
}

// serviceInfo describes sr for the API; drained is the operator's drain
// of the node.
func serviceInfo(sr cluster.ServiceReport, drained bool) ServiceInfo {
	si := ServiceInfo{Name: sr.Name, Addr: sr.Addr.String(), Sessions: sr.Sessions, Capacity: sr.Capacity, State: "accepting"}
	if sr.Addr6.IsValid() {
		si.Addr6 = sr.Addr6.String()
	}
	if sr.Capacity > 0 {
		si.Load = float64(sr.Sessions) / float64(sr.Capacity)
	}
	switch {
	case sr.LoadFailed:
		si.State = "load-failed"
	case sr.Unhealthy:
		si.State = "unhealthy"
	case sr.Draining || drained:
		si.State = "draining"
	}
	return si
}

// serviceReason says why this node's service name is not accepting, or
// nothing.
func (a *Agent) serviceReason(name string) string {
	for _, s := range a.services {
		if s.svc.Name == name {
			_, reason := s.checks.Status()
			return reason
		}
	}
	return ""
}
