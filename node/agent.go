package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	metrics "github.com/hashicorp/go-metrics"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/internal/pki"
	"github.com/usherlb/usher/internal/udpio"
	"github.com/usherlb/usher/node/vip"
)

// Version is the agent's version, reported by the API and `usher version`.
// Release builds set it with
// -ldflags "-X github.com/usherlb/usher/node.Version=v1.2.3".
var Version = "dev"

// viewInterval is how often the agent republishes its load report and
// rebuilds the load view.
const viewInterval = 250 * time.Millisecond

// viewGap is the shortest time between two view rebuilds caused by
// membership updates (see viewLoop).
const viewGap = 20 * time.Millisecond

// Agent is the Usher agent on one machine: the session endpoint on the
// node's real address, the probe responder on the balancer address, the
// cluster membership and leadership that decide who answers probes, the
// load view that feeds the responder, metrics, and the HTTP API.
type Agent struct {
	cfg     Runtime
	root    hclog.Logger // the logger the agent was given: Reload sets its level
	log     hclog.Logger
	started time.Time

	// capacity is the node's capacity as last configured: cfg's at
	// start, then Reload's.
	capacity atomic.Int64
	// reloadMu serializes reloads and guards configSource.
	reloadMu     sync.Mutex
	configSource ConfigSource

	cl                       atomic.Pointer[cluster.Cluster]
	source                   *farmView
	view                     atomic.Pointer[assign.View]
	serviceViews             atomic.Pointer[ServiceViews]
	services                 []*serviceRun // the service blocks, in the file's order
	verify                   *verifier
	vipAcquired, vipReleased atomic.Uint64
	vipEvents                *vip.EventLog
	keyed                    atomic.Bool // a report was published with the farm's ticket key known
	isClosed                 atomic.Bool
	wake                     chan struct{} // asks the view loop for a new view now
	ready                    chan struct{} // closed by watchReady, see Ready

	ep     *Endpoint
	resp   *Responder
	vip    *vip.Holder // taken and let go by the cluster's VIP owner only
	tel    *telemetry
	tmpDir string     // a data directory of our own, removed by Close
	tls    *pki.Store // Raft's TLS material, nil without the tls block

	httpLn  net.Listener
	httpSrv *http.Server

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New builds cfg (see Config.Build) and starts an agent: it binds the
// session endpoint, prepares the probe responder and the VIP holder, joins
// the cluster (a single node is a cluster of one), then starts the HTTP
// API. The node answers probes only while it leads the cluster and its
// lease holds. A nil logger discards logs. Close stops it.
func New(cfg Config, logger hclog.Logger) (*Agent, error) {
	rt, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	return newAgent(rt, logger)
}

// NewFromRuntime is New for a configuration already built: the command
// line builds it once, to set up logging, and the agent runs on that
// build (its secret files are read once).
func NewFromRuntime(rt Runtime, logger hclog.Logger) (*Agent, error) {
	return newAgent(rt, logger)
}

// testHookOnVIP, if not nil, is told of every change of the hold on the
// balancer address of each agent started while it is set, before the
// agent's own onVIP: newAgent reads it once. Only test files set it (tests
// record serving intervals with it).
var testHookOnVIP func(acquired bool, term uint64, at time.Duration)

// newAgent starts an agent on rt.
func newAgent(rt Runtime, logger hclog.Logger) (_ *Agent, err error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	a := &Agent{
		cfg:     rt,
		root:    logger,
		log:     logger.Named("agent"),
		started: time.Now(),
		stop:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		ready:   make(chan struct{}),
	}
	a.capacity.Store(int64(rt.Capacity))
	// Until Close takes over, a failure undoes what was started.
	var undo undoStack
	defer func() {
		if err != nil {
			undo.run()
		}
	}()

	key := rt.Parsed.TicketKey
	if key == nil {
		// Replaced by the farm's key as soon as Raft has one (a
		// configured key becomes the farm's when this node leads).
		key = make([]byte, 32)
		rand.Read(key)
	}
	if err := a.openEndpoint(logger, key, &undo); err != nil {
		return nil, err
	}
	if err := a.openResponder(logger, key, &undo); err != nil {
		return nil, err
	}
	if err := a.startServices(logger, &undo); err != nil {
		return nil, err
	}
	if err := a.joinCluster(logger, &undo); err != nil {
		return nil, err
	}
	a.start(logger)
	return a, nil
}

// undoStack holds what newAgent has started, to be undone in reverse order
// if a later step fails.
type undoStack []func()

// push adds f, to run before everything pushed earlier.
func (u *undoStack) push(f func()) { *u = append(*u, f) }

// run undoes everything pushed, the last first.
func (u undoStack) run() {
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}

// openEndpoint starts the agent's telemetry, opens the vip_events log and
// binds the session endpoint, which answers with the ticket key key until
// the farm's replaces it.
func (a *Agent) openEndpoint(logger hclog.Logger, key []byte, undo *undoStack) (err error) {
	cfg := a.cfg
	p := cfg.Parsed
	if a.tel, err = newTelemetry(a.exportMetrics); err != nil {
		return err
	}
	if cfg.VIPEvents != "" {
		if a.vipEvents, err = vip.OpenEventLog(cfg.VIPEvents, cfg.NodeName); err != nil {
			return err
		}
		undo.push(func() { a.vipEvents.Close() })
	}

	_, sessionLimit := cfg.sourceLimits()
	ecfg := EndpointConfig{
		Addr:               p.AdvertiseSessionAddr,
		SessionTTL:         p.SessionTTL,
		RequireTicket:      cfg.RequireTicket,
		TicketKey:          key,
		StockAmplification: cfg.StockAmplification,
		Handoffs:           cfg.RespondFrom == "server",
		HandoffFrom:        p.VIP.Addr(),
		SourceLimit:        sessionLimit,
		LimitKey:           limitKey(),
		RefusalRate:        cfg.SessionRefusalRate,
		Batch:              cfg.ProbeBatch,
		Logger:             logger.Named("endpoint"),
	}
	ecfg.MaxSessions, ecfg.MaxSessionsPerSource = cfg.sessionCap(), cfg.sourceCap()
	ep, err := ListenEndpoint(p.SessionAddr, ecfg)
	if err != nil {
		return err
	}
	a.ep = ep
	undo.push(func() { ep.Close() })
	if ep.Addr().Addr().IsUnspecified() {
		return errors.New("advertise_session_addr must be set when session_addr is an unspecified address")
	}
	return nil
}

// openResponder builds the verifier of lost servers, the probe responder
// and the VIP holder, and opens the HTTP API's listener.
func (a *Agent) openResponder(logger hclog.Logger, key []byte, undo *undoStack) error {
	cfg := a.cfg
	p := cfg.Parsed
	a.verify = newVerifier(p.VerifyTimeout, verifyRecheck, a.wakeView, logger.Named("verify")).start()
	undo.push(a.verify.close)

	tcp, tcpPort, _ := cfg.balancerTCP()
	tlsCert, err := balancerCertificate(&cfg, logger)
	if err != nil {
		return err
	}
	balancerLimit, _ := cfg.sourceLimits()
	a.resp = NewResponder(ResponderConfig{
		Assign: assign.Config{
			Policy:     p.Policy,
			StaleAfter: staleReports * p.Timing.PublishInterval,
			PendingTTL: pendingTTL(p.KeepaliveInterval, p.Timing.PublishInterval),
			Spread:     cfg.PolicySpread,
		},
		Serving:              a.serving,
		View:                 &a.view,
		ServiceViews:         &a.serviceViews,
		StockService:         cfg.VIPService,
		TicketKey:            key,
		TicketTTL:            p.TicketTTL,
		KeepaliveInterval:    p.KeepaliveInterval,
		DeadAfter:            p.DeadAfter,
		RetryAfter:           p.OverloadRetryAfter,
		StockAmplification:   cfg.StockAmplification,
		Backups:              cfg.Backups,
		RedirectStockBinding: cfg.StockBinding == "redirect",
		TURNAuth:             p.TURNAuth,
		Handoff:              cfg.RespondFrom == "server",
		Sockets:              probeSockets(cfg.ProbeSockets),
		Batch:                cfg.ProbeBatch,
		ReadBuffer:           cfg.ProbeReadBuffer,
		SourceLimit:          balancerLimit,
		TCP:                  tcp,
		TCPPort:              tcpPort,
		TLSPort:              uint16(cfg.BalancerTLS), //nolint:gosec // G115: validated as a port
		TLSCertificate:       tlsCert,
		LostServer:           a.verify.report,
		Logger:               logger.Named("responder"),
	})
	undo.push(func() { a.resp.Close() })
	if err := a.prepareVIP(logger); err != nil {
		return err
	}
	undo.push(func() { a.vip.Close() })

	if cfg.HTTP != "" {
		ln, err := net.Listen("tcp", cfg.HTTP)
		if err != nil {
			return fmt.Errorf("http api: %w", err)
		}
		a.httpLn = ln
		undo.push(func() { ln.Close() })
	}
	return nil
}

// joinCluster starts the node's membership in the cluster (a single node
// is a cluster of one), its Raft state in data_dir or, without one, in a
// directory of its own, and publishes its first load report.
func (a *Agent) joinCluster(logger hclog.Logger, undo *undoStack) (err error) {
	cfg := a.cfg
	p := cfg.Parsed
	dataDir := cfg.DataDir
	if dataDir == "" {
		// A single node keeps its Raft state for its own life only: with
		// one voter there is no vote to forget.
		if dataDir, err = os.MkdirTemp("", "usher-"+cfg.NodeName+"-"); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		a.tmpDir = dataDir
		undo.push(func() { os.RemoveAll(a.tmpDir) })
	}
	cc := cluster.Config{
		NodeName:        cfg.NodeName,
		BindAddr:        p.Bind,
		AdvertiseAddr:   p.Advertise,
		RaftBindAddr:    p.RaftBind,
		Join:            cfg.Join,
		Label:           cfg.Label,
		EncryptKey:      p.EncryptKey,
		TicketKey:       p.TicketKey,
		DataDir:         dataDir,
		BootstrapExpect: cfg.BootstrapExpect,
		Voter:           cfg.Voter,
		Timing:          p.Timing,
		Logger:          logger,
		VIP:             a.vip,
		OnVIP:           a.vipHandler(),
	}
	a.logSecurity()
	if p.TLS != nil {
		a.tls = pki.NewStore(p.TLS)
		cc.TLS = a.tls
	}
	cl, err := cluster.New(cc)
	if err != nil {
		return err
	}
	a.cl.Store(cl)
	a.source = &farmView{c: cl, excluded: a.verify.isExcluded}
	a.publish()
	return nil
}

// start serves the HTTP API, starts the view loop and logs that the agent
// runs; nothing of it can fail.
func (a *Agent) start(logger hclog.Logger) {
	cfg := a.cfg
	p := cfg.Parsed
	if a.httpLn != nil {
		acc := newAPIAccess(p, addrPortOf(a.httpLn.Addr()), cfg.APIHosts, ownAddrs(p))
		a.serveAPI(logger.Named("api"), acc)
	}
	a.wg.Add(2)
	go a.viewLoop()
	go a.watchReady()
	cl := a.cl.Load()
	a.log.Info("agent started", "node", cfg.NodeName, "vip", p.VIP, "vip_mode", cfg.VIPMode,
		"session_addr", a.ep.Addr(), "gossip", cl.GossipAddr(), "raft", cl.RaftAddr(),
		"http", a.HTTPAddr(), "http_tls", p.APITLS, "profile", cfg.Profile, "version", Version)
}

// serveAPI starts the HTTP API on the agent's listener: HTTPS with the
// tls block's certificate when api_tls says so (see apitls.go), else plain
// HTTP. The server's own complaints (failed TLS handshakes, which any
// stranger can cause) are logged at debug level.
func (a *Agent) serveAPI(log hclog.Logger, acc *apiAccess) {
	a.httpSrv = &http.Server{
		Handler:           a.handler(log, acc),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	serve := func() error { return a.httpSrv.Serve(a.httpLn) }
	if a.cfg.Parsed.APITLS {
		a.httpSrv.TLSConfig = apiServerTLS(a.tls)
		serve = func() error { return a.httpSrv.ServeTLS(a.httpLn, "", "") }
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http api stopped", "error", err)
		}
	}()
}

// addrPortOf returns a listener address as an AddrPort (zero if it is not
// TCP or UDP).
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// ownAddrs lists the agent's configured addresses that are specific (for
// the API's Host check).
func ownAddrs(p Parsed) []netip.Addr {
	var out []netip.Addr
	for _, ap := range []netip.AddrPort{p.Bind, p.Advertise, p.RaftBind, p.SessionAddr, p.AdvertiseSessionAddr} {
		if ap.IsValid() && !ap.Addr().IsUnspecified() {
			out = append(out, ap.Addr())
		}
	}
	return out
}

// probeSockets is the number of probe sockets for the probe_sockets key.
func probeSockets(n int) int {
	if n == 0 {
		return runtime.NumCPU()
	}
	return n
}

// verifyRecheck is how often the leader checks again a server it excluded.
const verifyRecheck = 2 * time.Second

// wakeView asks the view loop for a new view without waiting for its tick.
func (a *Agent) wakeView() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// staleReports is how many publish intervals old a load report may be
// before the leader stops assigning to its node.
const staleReports = 3

// serving is the responder's ServingFunc: whether this node answers probes
// now, and in which term. It reads only atomics.
func (a *Agent) serving() (uint64, bool) {
	cl := a.cl.Load()
	if cl == nil {
		return 0, false
	}
	return cl.Serving()
}

// vipHandler returns the cluster's OnVIP: onVIP, after testHookOnVIP if a
// test set it.
func (a *Agent) vipHandler() func(acquired bool, term uint64, at time.Duration) {
	hook := testHookOnVIP
	if hook == nil {
		return a.onVIP
	}
	return func(acquired bool, term uint64, at time.Duration) {
		hook(acquired, term, at)
		a.onVIP(acquired, term, at)
	}
}

// onVIP logs each change of this node's hold on the balancer address.
func (a *Agent) onVIP(acquired bool, term uint64, at time.Duration) {
	if a.vipEvents != nil {
		a.vipEvents.Record(acquired, term, at)
	}
	if acquired {
		a.vipAcquired.Add(1)
		a.log.Info("holding the balancer address", "vip", a.cfg.VIP, "term", term, "mono_ns", int64(at))
	} else {
		a.vipReleased.Add(1)
		a.log.Info("let go of the balancer address", "vip", a.cfg.VIP, "term", term, "mono_ns", int64(at))
	}
}

// prepareVIP builds the holder of the balancer address for vip_mode. The
// cluster's VIP owner alone makes it take the address (and start the
// responder on it) when this node leads, and let it go; the agent only
// closes it, after the cluster has shut down.
func (a *Agent) prepareVIP(logger hclog.Logger) (err error) {
	a.vip, err = vip.New(vip.Config{
		Mode:          a.cfg.VIPMode,
		Addr:          a.cfg.Parsed.VIP,
		Server:        a.resp,
		Listen:        udpio.ListenFreebind,
		Interface:     a.cfg.Interface,
		AcquireScript: a.cfg.VIPAcquireScript,
		ReleaseScript: a.cfg.VIPReleaseScript,
		Node:          a.cfg.NodeName,
		Logger:        logger.Named("vip"),
	})
	return err
}

// Close stops the agent and everything it started: it leaves the cluster
// (or, without leave_on_terminate, stops without leaving; either way it
// lets the balancer address go first if it held it), stops answering, and
// closes every socket. It is idempotent and returns the first error met.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.isClosed.Store(true)
		close(a.stop)
		var errs []error
		if a.httpSrv != nil {
			errs = append(errs, a.httpSrv.Close())
		}
		// Shutdown returns once the cluster's VIP owner has let the
		// address go; only then is the holder's socket closed.
		stop := a.cl.Load().Shutdown
		if !a.cfg.LeaveOnTerminate {
			stop = a.cl.Load().Stop
		}
		errs = append(errs, stop(), a.resp.Close(), a.vip.Close())
		errs = append(errs, a.ep.Close())
		a.verify.close()
		a.closeServices()
		a.wg.Wait()
		if a.tmpDir != "" {
			errs = append(errs, os.RemoveAll(a.tmpDir))
		}
		if a.vipEvents != nil {
			errs = append(errs, a.vipEvents.Close())
		}
		a.closeErr = errors.Join(errs...)
		a.log.Info("agent stopped")
	})
	return a.closeErr
}

// closed reports whether Close has begun.
func (a *Agent) closed() bool { return a.isClosed.Load() }

// Leave leaves the cluster gracefully (handing leadership on if this node
// leads) but keeps the agent's sockets until Close.
func (a *Agent) Leave() error {
	return a.cl.Load().Leave(leaveTimeout)
}

// Failed returns a channel that is closed when the agent's cluster layer
// has stopped for good (see cluster.Cluster.Failed); Err says why. The
// owner should Close the agent and exit with that error.
func (a *Agent) Failed() <-chan struct{} { return a.cl.Load().Failed() }

// Err returns why Failed was closed, or nil while it is open.
func (a *Agent) Err() error { return a.cl.Load().Err() }

// leaveTimeout bounds a graceful leave.
const leaveTimeout = 5 * time.Second

// viewLoop, every publish interval and whenever membership changes,
// publishes this node's load report, follows the farm's agreed state and
// rebuilds the load view; it exports metrics every second.
//
// A voter hears every member's report every publish interval, each one an
// update, so updates closer than viewGap to the last rebuild wait for the
// gap to pass and are served by one rebuild.
func (a *Agent) viewLoop() {
	defer a.wg.Done()
	cl := a.cl.Load()
	t := time.NewTicker(viewInterval)
	defer t.Stop()
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	armed := false
	var last time.Time
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		case <-a.wake:
		case <-gap.C:
			armed = false
		case <-cl.Updates():
			if wait := viewGap - time.Since(last); wait > 0 {
				if !armed {
					gap.Reset(wait)
					armed = true
				}
				continue
			}
		}
		last = time.Now()
		a.publish()
	}
}

// testHookQuiet reports whether a must stop publishing load reports, as a
// node whose reports stopped reaching the farm would. Tests replace it.
var testHookQuiet = func(*Agent) bool { return false }

// publish reports this node's load to the cluster, applies the agreed
// state (the ticket key, this node's drain) and publishes a fresh view.
func (a *Agent) publish() {
	cl := a.cl.Load()
	st := cl.State()
	if len(st.TicketKey) > 0 {
		a.resp.SetTicketKey(st.TicketKey)
		a.ep.SetTicketKey(st.TicketKey)
	}
	a.ep.SetDraining(st.Drained[a.cfg.NodeName])
	if !testHookQuiet(a) {
		sessions, accepted := a.ep.Load()
		cl.SetReport(cluster.Report{
			Service:  a.ep.Addr(),
			Sessions: uint32(sessions),
			Capacity: uint32(a.capacity.Load()),
			Accepted: accepted,
			API:      a.HTTPAddr(),
			// Until it holds the farm's ticket key (a node that just
			// started, or a restarted voter that Raft has not caught up
			// yet) the node can neither check the tickets of the
			// sessions sent to it nor open the leader's handoffs: it
			// declares itself draining, so no session is sent its way.
			Draining: len(st.TicketKey) == 0,
			Services: a.serviceReports(st.Drained[a.cfg.NodeName]),
		})
	}
	if !a.keyed.Load() && len(st.TicketKey) > 0 {
		// The cluster publishes reports on its own goroutine: the view
		// offers this node once its member entry carries a keyed report.
		for _, m := range cl.Members() {
			if m.Name == a.cfg.NodeName && m.Report.Service.IsValid() && !m.Report.Draining {
				a.keyed.Store(true)
			}
		}
	}
	nodes, named := a.source.views()
	a.verify.setMembers(memberAddrs(nodes, named))
	a.view.Store(assign.NewView(nodes))
	a.serviceViews.Store(newServiceViews(named))
}

// exportMetrics reports the packet paths' counters and the node's gauges to
// one scrape t; the agent's registry runs it at each scrape. Labelled
// series are named in full (every drop reason, every node of the view,
// every configured service), so each exists before it first moves.
func (a *Agent) exportMetrics(t *metricScrape) {
	sessions, accepted := a.ep.Load()
	t.gauge("sessions", float64(sessions))
	t.gauge("capacity", float64(a.capacity.Load()))
	t.gauge("draining", boolFloat(a.ep.Draining()))
	for _, sr := range a.serviceReports(false) {
		t.serviceGauge("service_sessions", sr.Name, float64(sr.Sessions))
		t.serviceGauge("service_capacity", sr.Name, float64(sr.Capacity))
		t.serviceGauge("service_accepting", sr.Name, boolFloat(sr.Accepting()))
	}
	_, serving := a.serving()
	t.gauge("serving", boolFloat(serving && a.resp.Serving()))
	t.counter("sessions_accepted", accepted)
	t.counter("sessions_expired", a.ep.table.expired.Load())

	rs := a.resp.Stats()
	t.counter("probes_answered", rs.Answered)
	t.counter("balancer_stun_binding_answered", rs.StockBindings)
	t.counter("probes_overloaded", rs.Overloaded)
	t.counter("probes_unknown_attribute", rs.UnknownAttribute)
	for _, reason := range dropLabels() {
		t.counter("probes_dropped", rs.Drops[reason], metrics.Label{Name: "reason", Value: reason})
	}
	assigned := a.resp.Assigned()
	var viewNodes []string
	for _, n := range a.view.Load().Nodes() {
		viewNodes = append(viewNodes, n.ID)
	}
	for _, node := range assignmentNodes(viewNodes, assigned) {
		t.counter("assignments", assigned[node], metrics.Label{Name: "node", Value: node})
	}
	t.counter("lost_server_reports", a.verify.reported.Load())
	t.counter("lost_server_confirmed", a.verify.confirmed.Load())
	t.counter("lost_server_refuted", a.verify.refuted.Load())
	t.counter("lost_server_ignored", a.verify.nonMember.Load(), metrics.Label{Name: "reason", Value: "not_member"})
	t.counter("lost_server_ignored", a.verify.limited.Load(), metrics.Label{Name: "reason", Value: "rate"})
	t.counter("lost_server_ignored", a.verify.dropped.Load(), metrics.Label{Name: "reason", Value: "queue_full"})

	cs := a.cl.Load().Stats()
	t.counter("leadership_changes", cs.LeadershipChanges)
	t.counter("raft_refused", cs.RaftRefused)
	t.counter("raft_store_writes", cs.StoreWrites)
	t.counter("lease_renewals", cs.LeaseRenewals)
	t.counter("lease_lapses", cs.LeaseLapses)
	t.gauge("vip_holder", boolFloat(cs.VIPHolder))
	t.counter("vip_acquired", a.vipAcquired.Load())
	t.counter("vip_released", a.vipReleased.Load())
	t.gauge("view_staleness_seconds", cs.OldestReportAge.Seconds())
	t.gauge("voters", float64(len(cs.Voters)))

	es := a.ep.Stats()
	t.counter("handoffs_relayed", es.Relayed)
	t.counter("keepalives_answered", es.Keepalives)
	t.counter("stun_binding_answered", es.Stock)
	t.counter("tickets_refused", es.Refused)
	t.counter("endpoint_unknown_attribute", es.Unknown)
	t.counter("sessions_refused", es.SourceCapped, metrics.Label{Name: "reason", Value: "source_cap"})
	t.counter("sessions_refused", es.Full, metrics.Label{Name: "reason", Value: "max_sessions"})
	for _, reason := range dropLabels() {
		t.counter("endpoint_dropped", es.Drops[reason], metrics.Label{Name: "reason", Value: reason})
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

// APIURL returns the HTTP API's base URL, https://host:port when it
// serves HTTPS, or "" when it is disabled.
func (a *Agent) APIURL() string {
	if a.httpLn == nil {
		return ""
	}
	if a.cfg.Parsed.APITLS {
		return "https://" + a.HTTPAddr()
	}
	return "http://" + a.HTTPAddr()
}

// HTTPAddr returns the HTTP API's address, or "" when it is disabled.
func (a *Agent) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// DrainNode drains (or undrains) any node of the farm through Raft. On a
// node that does not lead it fails with an error wrapping
// cluster.ErrNotLeader (see LeaderAPI).
func (a *Agent) DrainNode(node string, on bool) error {
	if err := a.cl.Load().SetDrain(node, on); err != nil {
		return err
	}
	a.wakeView()
	return nil
}

// LeaderAPI returns where to forward a request for the leader: the
// leader's node name and its HTTP API address, or "" and "" if no leader
// or no trustworthy address is known.
//
// Only authenticated state picks the target. The leader's name and raft
// address come from raft (over mutual TLS with the tls block, where the
// dialing side checks the certificate names the server at that address);
// the API address comes from the leader's gossiped load report, which
// anyone who can send a gossip packet may forge. So the address is used
// only on the host raft knows as the leader's (an API bound to an
// unspecified address is reached there, on its port). With the API over
// TLS the forward also requires the certificate of the leader node, so a
// forged port on the leader's own host gets a failed handshake, never a
// request or its token; over plain HTTP the leader's host is trusted as a
// whole (docs/security.md).
func (a *Agent) LeaderAPI() (node, addr string) {
	cl := a.cl.Load()
	leader, _ := cl.Leader()
	raftHost, _, err := net.SplitHostPort(cl.LeaderRaftAddr())
	if leader == "" || err != nil {
		return "", ""
	}
	for _, m := range cl.Members() {
		if m.Name != leader || m.Status != cluster.Alive {
			continue
		}
		host, port, err := net.SplitHostPort(m.Report.API)
		if err != nil {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
			host = raftHost
		}
		if sameHost(host, raftHost) {
			return leader, net.JoinHostPort(raftHost, port)
		}
	}
	return "", ""
}

// sameHost reports whether two host strings name the same IP address.
func sameHost(a, b string) bool {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	return err1 == nil && err2 == nil && x.Unmap() == y.Unmap()
}

// The roles a node reports in Status.Role.
const (
	RoleLeader   = "leader"    // it leads raft (whether or not it serves yet)
	RoleFollower = "follower"  // a raft voter that does not lead
	RoleNonVoter = "non-voter" // not a raft voter: a standby or outside raft
)

// Status is the agent's state as GET /v1/status reports it.
type Status struct {
	Node      string `json:"node"`
	Role      string `json:"role"` // RoleLeader, RoleFollower or RoleNonVoter
	Leader    string `json:"leader"`
	Term      uint64 `json:"term"`
	Serving   bool   `json:"serving"`
	VIP       string `json:"vip"`
	VIPMode   string `json:"vip_mode"`
	VIPHolder string `json:"vip_holder"`
	// OldestReportMs is the age of the oldest load report among live
	// members, in milliseconds. Only voters hear every member's report;
	// on any other node it grows to about 30 s between refreshes of the
	// gossiped metadata (see cluster.Stats.OldestReportAge).
	OldestReportMs    float64  `json:"oldest_report_age_ms"`
	Members           int      `json:"members"`
	Voters            []string `json:"voters"`
	LeadershipChanges uint64   `json:"leadership_changes"`
	// LeaseLapses counts the times this node's leader lease ran out while
	// it led (it answered nothing until the next renewal);
	// RaftStoreWrites counts its writes to the Raft log and stable store.
	LeaseLapses     uint64  `json:"lease_lapses"`
	RaftStoreWrites uint64  `json:"raft_store_writes"`
	SessionAddr     string  `json:"session_addr"`
	Sessions        int     `json:"sessions"`
	Accepted        uint64  `json:"accepted"`
	Capacity        int     `json:"capacity"`
	Draining        bool    `json:"draining"`
	Profile         string  `json:"profile"`
	Uptime          string  `json:"uptime"`
	UptimeSeconds   float64 `json:"uptime_seconds"`
	Version         string  `json:"version"`
}

// Status returns the agent's current state.
func (a *Agent) Status() Status {
	cl := a.cl.Load()
	st := cl.Stats()
	term, serving := a.serving()
	if !serving {
		term = st.Term
	}
	sessions, accepted := a.ep.Load()
	up := time.Since(a.started)
	role := RoleFollower
	switch {
	case st.Leader == a.cfg.NodeName:
		role = RoleLeader
	case !slices.Contains(st.Voters, a.cfg.NodeName):
		role = RoleNonVoter
	}
	holder := ""
	switch {
	case serving:
		holder = a.cfg.NodeName
	case st.Leader != "" && st.Leader != a.cfg.NodeName:
		holder = st.Leader
	}
	members := 0
	for _, m := range cl.Members() {
		if m.Status == cluster.Alive {
			members++
		}
	}
	return Status{
		Node:              a.cfg.NodeName,
		Role:              role,
		Leader:            st.Leader,
		Term:              term,
		Serving:           serving && a.resp.Serving(),
		VIP:               a.cfg.VIP,
		VIPMode:           a.cfg.VIPMode,
		VIPHolder:         holder,
		OldestReportMs:    float64(st.OldestReportAge) / float64(time.Millisecond),
		Members:           members,
		Voters:            st.Voters,
		LeadershipChanges: st.LeadershipChanges,
		LeaseLapses:       st.LeaseLapses,
		RaftStoreWrites:   st.StoreWrites,
		SessionAddr:       a.ep.Addr().String(),
		Sessions:          sessions,
		Accepted:          accepted,
		Capacity:          int(a.capacity.Load()),
		Draining:          a.ep.Draining(),
		Profile:           a.cfg.Profile,
		Uptime:            up.Round(time.Second).String(),
		UptimeSeconds:     up.Seconds(),
		Version:           Version,
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

// WaitServing waits until this node answers probes on the balancer address
// (it leads, holds the address and its lease is current) and has published
// a report with the farm's ticket key known (before, it declares itself
// draining), or ctx ends.
func (a *Agent) WaitServing(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if _, ok := a.serving(); ok && a.resp.Serving() && a.keyed.Load() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s is not serving: %w", a.cfg.NodeName, ctx.Err())
		case <-t.C:
		}
	}
}

// Term returns the leadership term this node serves in, or 0 when it does
// not serve.
func (a *Agent) Term() uint64 {
	term, ok := a.serving()
	if !ok {
		return 0
	}
	return term
}
