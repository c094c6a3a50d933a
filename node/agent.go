package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	metrics "github.com/hashicorp/go-metrics"

	"github.com/usherlb/usher/assign"
)

// Version is the agent's version, reported by the API and `usher version`.
// Release builds set it with
// -ldflags "-X github.com/usherlb/usher/node.Version=v1.2.3".
var Version = "dev"

// viewInterval is how often the agent republishes the load view.
const viewInterval = 250 * time.Millisecond

// Agent is the Usher agent on one machine: the session endpoint on the
// node's real address, the probe responder on the balancer address, the
// load view that feeds the responder, metrics, and the HTTP API.
type Agent struct {
	cfg     Config
	log     hclog.Logger
	started time.Time

	serving ServingFunc
	source  ViewSource
	view    atomic.Pointer[assign.View]

	ep      *Endpoint
	resp    *Responder
	vip     vipHolder
	vipConn *net.UDPConn // the probe socket in netlink and script modes
	tel     *telemetry

	httpLn  net.Listener
	httpSrv *http.Server

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and starts an agent: it binds the session endpoint, then
// the balancer address (this node leads itself until clustering arrives),
// then the HTTP API. A nil logger discards logs. Close stops it.
func New(cfg Config, logger hclog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	p := cfg.Parsed
	a := &Agent{
		cfg:     cfg,
		log:     logger.Named("agent"),
		started: time.Now(),
		serving: Solo,
		stop:    make(chan struct{}),
	}
	key := p.TicketKey
	if key == nil {
		key = make([]byte, 32)
		rand.Read(key)
	}
	tel, err := newTelemetry()
	if err != nil {
		return nil, err
	}
	a.tel = tel

	ep, err := ListenEndpoint(p.SessionAddr, EndpointConfig{
		Addr:               p.AdvertiseSessionAddr,
		SessionTTL:         p.SessionTTL,
		RequireTicket:      cfg.RequireTicket,
		TicketKey:          key,
		StockAmplification: cfg.StockAmplification,
		Logger:             logger.Named("endpoint"),
	})
	if err != nil {
		return nil, err
	}
	a.ep = ep
	if ep.Addr().Addr().IsUnspecified() {
		ep.Close()
		return nil, errors.New("advertise_session_addr must be set when session_addr is an unspecified address")
	}
	a.source = &localView{id: cfg.NodeName, capacity: cfg.Capacity, ep: ep}
	a.publishView()

	a.resp = NewResponder(ResponderConfig{
		Assign:             assign.Config{Policy: p.Policy, PendingTTL: 2 * p.DeadAfter, StartWarm: true},
		Serving:            a.serving,
		View:               &a.view,
		TicketKey:          key,
		TicketTTL:          p.TicketTTL,
		KeepaliveInterval:  p.KeepaliveInterval,
		DeadAfter:          p.DeadAfter,
		StockAmplification: cfg.StockAmplification,
		Backups:            cfg.Backups,
		Logger:             logger.Named("responder"),
	})
	if err := a.takeVIP(logger); err != nil {
		a.ep.Close()
		return nil, err
	}

	if cfg.HTTP != "" {
		ln, err := net.Listen("tcp", cfg.HTTP)
		if err != nil {
			a.releaseVIP()
			a.ep.Close()
			return nil, fmt.Errorf("http api: %w", err)
		}
		a.httpLn = ln
		a.httpSrv = &http.Server{Handler: a.handler(logger.Named("api")), ReadHeaderTimeout: 5 * time.Second}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := a.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("http api stopped", "error", err)
			}
		}()
	}

	a.wg.Add(1)
	go a.viewLoop()
	a.log.Info("agent started", "node", cfg.NodeName, "vip", a.VIPAddr(), "session_addr", ep.Addr(), "http", a.HTTPAddr(), "version", Version)
	return a, nil
}

// The responder is what BindVIP starts and stops.
var _ probeServer = (*Responder)(nil)

// vipHolder takes and lets go of the balancer address: BindVIP, NetlinkVIP
// or ScriptVIP, by vip_mode.
type vipHolder interface {
	Acquire(term uint64) error
	Release() error
}

// VIP timings for netlink mode: the kernel lifetime of the address and how
// often it is renewed and announced.
const (
	vipLifetime = 10 * time.Second
	vipAnnounce = 2 * time.Second
	vipScript   = 30 * time.Second
)

// takeVIP takes the balancer address and starts answering probes on it. A
// single node leads itself, so it takes the address at once, in term 1. In
// bind mode the address is already routed to this host and binding it is
// the whole job; in netlink and script modes the probe socket is bound
// (with IP_FREEBIND) for the agent's life and the address itself moves.
func (a *Agent) takeVIP(logger hclog.Logger) error {
	p := a.cfg.Parsed
	switch a.cfg.VIPMode {
	case "bind":
		a.vip = NewBindVIP(p.VIP, a.resp)
	case "netlink", "script":
		conn, err := ListenFreebind(p.VIP)
		if err != nil {
			return fmt.Errorf("bind balancer address %s: %w", p.VIP, err)
		}
		a.vipConn = conn
		if a.cfg.VIPMode == "script" {
			a.vip = NewScriptVIP(a.cfg.VIPAcquireScript, a.cfg.VIPReleaseScript, p.VIP.Addr().String(), a.cfg.NodeName, vipScript)
		} else {
			v, err := NewNetlinkVIP(a.cfg.Interface, p.VIP.Addr(), vipLifetime, vipAnnounce, logger.Named("vip"))
			if err != nil {
				conn.Close()
				return err
			}
			a.vip = v
		}
		a.resp.Serve(conn)
	default:
		return fmt.Errorf("vip_mode %q is not supported", a.cfg.VIPMode)
	}
	term, _ := a.serving()
	if err := a.vip.Acquire(term); err != nil {
		a.resp.Close()
		if a.vipConn != nil {
			a.vipConn.Close()
		}
		return err
	}
	return nil
}

// releaseVIP lets the balancer address go and stops answering probes.
func (a *Agent) releaseVIP() error {
	err := a.vip.Release()
	a.resp.Close()
	if a.vipConn != nil {
		err = errors.Join(err, a.vipConn.Close())
	}
	return err
}

// Close stops the agent and everything it started. It is idempotent and
// returns the first error met.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		close(a.stop)
		var errs []error
		if a.httpSrv != nil {
			errs = append(errs, a.httpSrv.Close())
		}
		errs = append(errs, a.releaseVIP(), a.ep.Close())
		a.wg.Wait()
		a.closeErr = errors.Join(errs...)
		a.log.Info("agent stopped")
	})
	return a.closeErr
}

// viewLoop republishes the load view and exports metrics until Close.
func (a *Agent) viewLoop() {
	defer a.wg.Done()
	t := time.NewTicker(viewInterval)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.publishView()
			if i%4 == 0 {
				a.exportMetrics()
			}
		}
	}
}

// publishView builds a view from the view source and hands it to the
// responder.
func (a *Agent) publishView() {
	a.view.Store(assign.NewView(a.source.Nodes(time.Now())))
}

// exportMetrics copies the packet paths' counters and the node's gauges into
// go-metrics.
func (a *Agent) exportMetrics() {
	t := a.tel
	sessions, accepted := a.ep.Load()
	t.gauge("sessions", float64(sessions))
	t.gauge("capacity", float64(a.cfg.Capacity))
	t.gauge("draining", boolFloat(a.ep.Draining()))
	_, serving := a.serving()
	t.gauge("serving", boolFloat(serving && a.resp.Serving()))
	t.counter("sessions_accepted", accepted)
	t.counter("sessions_expired", a.ep.table.expired.Load())

	rs := a.resp.Stats()
	t.counter("probes_answered", rs.Answered)
	for reason, n := range rs.Drops {
		t.counter("probes_dropped", n, metrics.Label{Name: "reason", Value: reason})
	}
	es := a.ep.Stats()
	t.counter("keepalives_answered", es.Keepalives)
	t.counter("stun_binding_answered", es.Stock)
	t.counter("tickets_refused", es.Refused)
	for reason, n := range es.Drops {
		t.counter("endpoint_dropped", n, metrics.Label{Name: "reason", Value: reason})
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// SessionAddr returns the session endpoint's advertised address.
func (a *Agent) SessionAddr() netip.AddrPort { return a.ep.Addr() }

// VIPAddr returns the balancer address being served, or the zero value when
// the node is not answering probes.
func (a *Agent) VIPAddr() netip.AddrPort { return a.resp.Addr() }

// HTTPAddr returns the HTTP API's address, or "" when it is disabled.
func (a *Agent) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// SetDraining drains (or undrains) this node: it gets no new sessions and
// its keepalive answers ask clients to move.
func (a *Agent) SetDraining(on bool) {
	a.ep.SetDraining(on)
	a.publishView()
	a.log.Info("drain", "draining", on)
}

// Status is the agent's state as GET /v1/status reports it.
type Status struct {
	Node          string  `json:"node"`
	Role          string  `json:"role"`
	Term          uint64  `json:"term"`
	Serving       bool    `json:"serving"`
	VIP           string  `json:"vip"`
	SessionAddr   string  `json:"session_addr"`
	Sessions      int     `json:"sessions"`
	Accepted      uint64  `json:"accepted"`
	Capacity      int     `json:"capacity"`
	Draining      bool    `json:"draining"`
	Uptime        string  `json:"uptime"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Version       string  `json:"version"`
}

// Status returns the agent's current state.
func (a *Agent) Status() Status {
	term, leads := a.serving()
	sessions, accepted := a.ep.Load()
	up := time.Since(a.started)
	role := "follower"
	if leads {
		role = "leader"
	}
	return Status{
		Node:          a.cfg.NodeName,
		Role:          role,
		Term:          term,
		Serving:       leads && a.resp.Serving(),
		VIP:           a.cfg.VIP,
		SessionAddr:   a.ep.Addr().String(),
		Sessions:      sessions,
		Accepted:      accepted,
		Capacity:      a.cfg.Capacity,
		Draining:      a.ep.Draining(),
		Uptime:        up.Round(time.Second).String(),
		UptimeSeconds: up.Seconds(),
		Version:       Version,
	}
}

// Stats is what the agent's packet paths counted.
type Stats struct {
	Responder ResponderStats
	Endpoint  EndpointStats
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	return Stats{Responder: a.resp.Stats(), Endpoint: a.ep.Stats()}
}
