package node

import (
	"maps"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/wire"
)

// ServiceViews is the farm's view of each named service: the nodes that
// offer it, with the service's addresses and load (see farmView). The
// agent swaps the whole map; nothing modifies a published one.
type ServiceViews map[string]*assign.View

// servicePicker is a serving goroutine's assigner for one named service:
// its own pending ledger over the service's own view.
type servicePicker struct {
	asg       *assign.Assigner
	installed *assign.View
}

// newTerm starts every assigner afresh for a new leadership term. A new
// term is a new leader's ledger: this node does not know what was
// assigned under the last one, so it starts cold (p2c until its view has
// caught up; see assign.Config) rather than trusting counts it never made.
func (p *prober) newTerm(term uint64) {
	if p.term != 0 {
		p.asg.TakePicks(p.count)
		p.asg = assign.New(p.r.cfg.Assign, p.clock, p.rng)
		p.installed = nil
		for _, sp := range p.services {
			sp.asg.TakePicks(p.count)
		}
		clear(p.services)
	}
	p.term = term
}

// assigner returns the assigner for the service req asks for, with the
// newest view installed: the built-in session endpoint's for an Usher
// probe that names none (or "default"), the vip_service's for a stock
// request. It sets p.named when the service is a named one.
func (p *prober) assigner(req *wire.Request) (*assign.Assigner, dropReason) {
	r := p.r
	name := r.cfg.StockService
	if req.HasSession {
		name = string(req.Service)
	}
	if name == "" || name == defaultService {
		p.named = false
		if v := r.cfg.View.Load(); v != p.installed {
			p.asg.TakePicks(p.count)
			p.asg.SetView(v)
			p.installed = v
			p.copyAssigned()
		}
		return p.asg, dropNone
	}
	p.named = true
	var views ServiceViews
	if r.cfg.ServiceViews != nil {
		if pv := r.cfg.ServiceViews.Load(); pv != nil {
			views = *pv
		}
	}
	v, ok := views[name]
	if !ok {
		return nil, dropUnknownService
	}
	sp := p.services[name]
	if sp == nil {
		// Once per service and term: the names come from the farm's
		// authenticated reports, at most a few per node.
		sp = &servicePicker{asg: assign.New(r.cfg.Assign, p.clock, p.rng)}
		p.services[name] = sp
	}
	if v != sp.installed {
		sp.asg.TakePicks(p.count)
		sp.asg.SetView(v)
		sp.installed = v
		p.copyAssigned()
	}
	return sp.asg, dropNone
}

// copyAssigned publishes this goroutine's assignment counts for metrics.
func (p *prober) copyAssigned() {
	p.assignedMu.Lock()
	maps.Copy(p.assignedCopy, p.assigned)
	p.assignedMu.Unlock()
}
