package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/node/health"
	"github.com/usherlb/usher/node/loadsrc"
)

// serviceRun is one service block as this node runs it: its health
// checks and its load, and the count of sessions it has accepted as far
// as this node can tell (see observe).
type serviceRun struct {
	svc    Service
	checks *health.Checker
	load   loadsrc.Source
	push   *loadsrc.Push // load, when the application pushes it; nil otherwise

	mu       sync.Mutex
	last     int    // the last load figure that was OK
	accepted uint64 // every rise of it, summed: what the leader's ledger reconciles against
}

// observe records a new load figure: a rise counts as that many sessions
// accepted, which is what the leader's pending ledger reconciles against
// when the load source knows no count of its own.
func (s *serviceRun) observe(load int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if load > s.last {
		s.accepted += uint64(load - s.last)
	}
	s.last = load
}

// report returns the service's part of the node's report at now. A load
// figure that is not OK is reported as a load failure, never as a load.
func (s *serviceRun) report(now time.Time, draining bool) cluster.ServiceReport {
	passing, _ := s.checks.Status()
	st := s.load.Status(now)
	if st.OK {
		s.observe(st.Load)
	}
	s.mu.Lock()
	sessions, accepted := s.last, s.accepted
	s.mu.Unlock()
	capacity := s.svc.Capacity
	if st.Capacity > 0 {
		capacity = st.Capacity
	}
	return cluster.ServiceReport{
		Name:       s.svc.Name,
		Addr:       s.svc.Addr,
		Addr6:      s.svc.Addr6,
		Domain:     s.svc.Domain,
		Sessions:   uint32(max(sessions, 0)),
		Capacity:   uint32(capacity),
		Accepted:   accepted,
		Draining:   draining,
		Unhealthy:  !passing,
		LoadFailed: !st.OK,
	}
}

// reason says why the service is not accepting, or nothing.
func (s *serviceRun) reason(now time.Time) string {
	_, checks := s.checks.Status()
	load := s.load.Status(now).Reason
	switch {
	case checks != "" && load != "":
		return checks + "; " + load
	case checks != "":
		return checks
	}
	return load
}

// startServices starts the health checks of every service block. A
// check's change of mind wakes the view loop, so the farm hears of it at
// the next publish rather than a tick later.
func (a *Agent) startServices(logger hclog.Logger, undo *undoStack) error {
	for _, svc := range a.cfg.Parsed.Services {
		s, err := a.startService(svc, logger.Named("service").With("service", svc.Name))
		if s != nil {
			undo.push(s.close)
		}
		if err != nil {
			return fmt.Errorf("service %q: %w", svc.Name, err)
		}
		a.services = append(a.services, s)
	}
	return nil
}

// startService starts one service's health checks and load source.
func (a *Agent) startService(svc Service, log hclog.Logger) (*serviceRun, error) {
	s := &serviceRun{svc: svc}
	checks, err := health.New(a.cfg.serviceConfig(svc.Name).Checks, health.Options{
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
		return nil, err
	}
	s.checks = checks
	spec := svc.LoadSpec
	s.load, err = spec.Build(svc.Name, loadsrc.Env{
		Sessions: func() int { n, _ := a.ep.Load(); return n },
		Options:  loadsrc.Options{Logger: log, OnChange: a.wakeView},
	})
	if err != nil {
		return s, err
	}
	s.push, _ = s.load.(*loadsrc.Push)
	return s, nil
}

// close stops the service's checks and load source.
func (s *serviceRun) close() {
	s.checks.Close()
	if s.load != nil {
		s.load.Close()
	}
}

// closeServices stops every service's checks and load source.
func (a *Agent) closeServices() {
	for _, s := range a.services {
		s.close()
	}
}

// serviceReports returns the services' part of the node's report.
func (a *Agent) serviceReports(draining bool) []cluster.ServiceReport {
	if len(a.services) == 0 {
		return nil
	}
	now := time.Now()
	out := make([]cluster.ServiceReport, len(a.services))
	for i, s := range a.services {
		out[i] = s.report(now, draining)
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
			return s.reason(time.Now())
		}
	}
	return ""
}

// maxPushBody bounds the body of a load push.
const maxPushBody = 1 << 10

// pushLoad serves PUT /v1/services/NAME/load: the application behind a
// push service reports its load, {"load":N,"capacity":M} (capacity 0 or
// absent: the service block's).
func (a *Agent) pushLoad(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var s *serviceRun
	for _, sr := range a.services {
		if sr.svc.Name == name {
			s = sr
		}
	}
	switch {
	case s == nil:
		writeError(w, http.StatusNotFound, "no service "+strconv.Quote(name)+" on this node")
		return
	case s.push == nil:
		writeError(w, http.StatusConflict, "service "+strconv.Quote(name)+"'s load source is "+s.svc.Load.Kind+", not push")
		return
	}
	var body struct {
		Load     *int `json:"load"`
		Capacity int  `json:"capacity"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPushBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Load == nil {
		writeError(w, http.StatusBadRequest, `the body must be {"load":N,"capacity":M} (capacity optional)`)
		return
	}
	if err := s.push.Set(*body.Load, body.Capacity, time.Now()); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The figure goes out with the next report; the push source wakes
	// the view loop itself when the service starts or stops accepting.
	writeJSON(w, http.StatusOK, map[string]any{"service": name, "load": *body.Load, "capacity": body.Capacity})
}
