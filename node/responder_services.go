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
	view      *assign.View // the newest view of the service; nil when no node offers it
	installed *assign.View // the view asg has
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
		p.views = nil
	}
	p.term = term
}

// assigner returns the assigner for the service req asks for, with the
// newest view installed: the built-in session endpoint's for an Usher
// probe that names none (or "default"), the vip_service's for a stock
// request. It sets p.named when the service is a named one. It does not
// allocate but for a service's first probe in a term.
func (p *prober) assigner(req *wire.Request) (*assign.Assigner, dropReason) {
	r := p.r
	name := p.stockService
	if req.HasSession {
		name = req.Service
	}
	if len(name) == 0 || string(name) == defaultService {
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
	p.refreshViews()
	sp := p.services[string(name)]
	if sp == nil {
		v, ok := (*p.views)[string(name)]
		if !ok {
			return nil, dropUnknownService
		}
		// Once per service and term: the names come from the farm's
		// authenticated reports, at most a few per node.
		sp = &servicePicker{asg: assign.New(r.cfg.Assign, p.clock, p.rng), view: v}
		p.services[string(name)] = sp
	}
	if sp.view == nil {
		return nil, dropUnknownService
	}
	if sp.view != sp.installed {
		sp.asg.TakePicks(p.count)
		sp.asg.SetView(sp.view)
		sp.installed = sp.view
		p.copyAssigned()
	}
	return sp.asg, dropNone
}

// noViews is the views of a farm without named services.
var noViews = ServiceViews{}

// refreshViews takes the newest ServiceViews, if they changed, and hands
// each service's assigner its newest view, so that a probe looks its
// service up once.
func (p *prober) refreshViews() {
	pv := &noViews
	if p.r.cfg.ServiceViews != nil {
		if v := p.r.cfg.ServiceViews.Load(); v != nil {
			pv = v
		}
	}
	if pv == p.views {
		return
	}
	p.views = pv
	for name, sp := range p.services {
		sp.view = (*pv)[name]
	}
}

// copyAssigned publishes this goroutine's assignment counts for metrics.
func (p *prober) copyAssigned() {
	p.assignedMu.Lock()
	maps.Copy(p.assignedCopy, p.assigned)
	p.assignedMu.Unlock()
}
