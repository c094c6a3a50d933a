package node

import (
	"errors"
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/wire"
)

// verifier checks the servers that clients report lost (USHER-LOST-SERVER)
// before the leader stops assigning to them: a client's word alone never
// takes a server out of service, since the client may be wrong or lying.
//
// It checks only farm members: a report naming any other address is
// counted and dropped on the probe path, so a probe cannot make the leader
// send anything to an address of its choosing. The probe path hands it
// reports without blocking or allocating. For each member not already being
// checked, as long as the token bucket allows (verifyRate a second, at most
// verifyBurst at once, rechecks included), it sends a stock STUN Binding
// request, which every session endpoint answers, and waits up to the
// timeout (with one retransmission halfway). A member that stays silent is
// excluded: the view marks it suspect, so it gets no new sessions. Excluded
// members are checked again every recheck interval and come back as soon
// as they answer (a restarted agent at the same address, say); one that
// leaves the farm leaves the excluded set, which so never holds more than
// the members.
type verifier struct {
	timeout time.Duration
	recheck time.Duration
	changed func() // asks for a new view after the excluded set changed
	log     hclog.Logger
	now     func() time.Time
	probe   func(netip.AddrPort) bool // reports whether a server answers

	reports  chan netip.AddrPort
	resized  chan struct{} // the members changed: prune the excluded set
	members  atomic.Pointer[map[netip.AddrPort]struct{}]
	excluded atomic.Pointer[map[netip.AddrPort]struct{}]

	reported, dropped, confirmed, refuted atomic.Uint64
	nonMember, limited                    atomic.Uint64

	stop chan struct{}
	wg   sync.WaitGroup
}

// maxChecks bounds the checks in flight at once.
const maxChecks = 16

// verifyRate and verifyBurst are the verifier's token bucket: the checks it
// starts a second, and at most at once. A few checks a second find a dead
// member within a second or two while a flood of reports naming members
// makes the leader send them no more than that.
const (
	verifyRate  = 4
	verifyBurst = 8
)

func newVerifier(timeout, recheck time.Duration, changed func(), log hclog.Logger) *verifier {
	v := &verifier{
		timeout: timeout,
		recheck: recheck,
		changed: changed,
		log:     log,
		now:     time.Now,
		reports: make(chan netip.AddrPort, 64),
		resized: make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	v.probe = v.check
	empty := map[netip.AddrPort]struct{}{}
	v.members.Store(&empty)
	v.excluded.Store(&empty)
	return v
}

// start runs the verifier's loop; newVerifier's caller may replace now and
// probe before.
func (v *verifier) start() *verifier {
	v.wg.Add(1)
	go v.loop()
	return v
}

// setMembers replaces the set of addresses a report may name: the farm
// members' session and service addresses. The verifier keeps members; the
// caller must not change it afterwards.
func (v *verifier) setMembers(members map[netip.AddrPort]struct{}) {
	v.members.Store(&members)
	select {
	case v.resized <- struct{}{}:
	default:
	}
}

// isMember reports whether server is a member's address.
func (v *verifier) isMember(server netip.AddrPort) bool {
	_, ok := (*v.members.Load())[server]
	return ok
}

// report tells the verifier a client lost server. It never blocks nor
// allocates: a report naming no member is counted and ignored, and when the
// queue is full the report is dropped (the same server is reported by every
// client it had, so another report follows).
func (v *verifier) report(server netip.AddrPort) {
	v.reported.Add(1)
	if !v.isMember(server) {
		v.nonMember.Add(1)
		return
	}
	select {
	case v.reports <- server:
	default:
		v.dropped.Add(1)
	}
}

// isExcluded reports whether server failed its check and has not answered
// since.
func (v *verifier) isExcluded(server netip.AddrPort) bool {
	_, ok := (*v.excluded.Load())[server]
	return ok
}

// close stops the verifier and waits for its checks to end.
func (v *verifier) close() {
	close(v.stop)
	v.wg.Wait()
}

type checkResult struct {
	server netip.AddrPort
	alive  bool
}

// tokenBucket allows rate events a second, at most burst at once. Its
// owner passes the time in.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// take reports whether an event may happen at now, and spends a token if
// so.
func (b *tokenBucket) take(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// loop owns the set of checks in flight, the token bucket and the excluded
// set.
func (v *verifier) loop() {
	defer v.wg.Done()
	inFlight := map[netip.AddrPort]bool{}
	results := make(chan checkResult, maxChecks)
	bucket := tokenBucket{rate: verifyRate, burst: verifyBurst, tokens: verifyBurst}
	tick := time.NewTicker(v.recheck)
	defer tick.Stop()
	start := func(server netip.AddrPort) {
		if inFlight[server] || len(inFlight) >= maxChecks {
			return
		}
		if !bucket.take(v.now()) {
			v.limited.Add(1)
			return
		}
		inFlight[server] = true
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			results <- checkResult{server, v.probe(server)}
		}()
	}
	for {
		select {
		case <-v.stop:
			return
		case server := <-v.reports:
			if !v.isExcluded(server) {
				start(server)
			}
		case <-v.resized:
			v.prune()
		case <-tick.C:
			for server := range *v.excluded.Load() {
				start(server)
			}
		case r := <-results:
			delete(inFlight, r.server)
			v.record(r)
		}
	}
}

// prune drops from the excluded set every server that is no longer a
// member.
func (v *verifier) prune() {
	old := *v.excluded.Load()
	if len(old) == 0 {
		return
	}
	next := make(map[netip.AddrPort]struct{}, len(old))
	for server := range old {
		if v.isMember(server) {
			next[server] = struct{}{}
		}
	}
	if len(next) == len(old) {
		return
	}
	v.excluded.Store(&next)
	v.changed()
}

// record applies a check's result to the excluded set. The set holds
// members only, so copying it for each change costs at most the farm's
// size, and changes come at most at the bucket's rate.
func (v *verifier) record(r checkResult) {
	old := *v.excluded.Load()
	_, was := old[r.server]
	switch {
	case !r.alive && !was && v.isMember(r.server):
		v.confirmed.Add(1)
		v.log.Warn("server reported lost does not answer: excluded", "server", r.server)
	case r.alive && was:
		v.log.Info("excluded server answers again", "server", r.server)
	case r.alive:
		v.refuted.Add(1)
		v.log.Info("server reported lost answers: kept in service", "server", r.server)
		return
	default:
		return
	}
	next := maps.Clone(old)
	if r.alive {
		delete(next, r.server)
	} else {
		next[r.server] = struct{}{}
	}
	v.excluded.Store(&next)
	v.changed()
}

// check reports whether server's session endpoint answers a Binding
// request within the timeout.
func (v *verifier) check(server netip.AddrPort) bool {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		v.log.Debug("check", "server", server, "error", err)
		return false
	}
	defer conn.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	deadline := time.Now().Add(v.timeout)
	buf := make([]byte, 1500)
	var dec wire.Decoder
	var resp wire.Response
	for try := 0; try < 2; try++ {
		if _, err := conn.Write(req.Raw); err != nil {
			// ICMP port unreachable from an earlier try: nobody is there.
			return false
		}
		wait := time.Now().Add(v.timeout / 2)
		if try == 1 {
			wait = deadline
		}
		if err := conn.SetReadDeadline(wait); err != nil {
			return false
		}
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return false
			}
			if dec.DecodeResponse(buf[:n], &resp) == nil && resp.TxID == req.TransactionID && resp.Success {
				return true
			}
		}
		select {
		case <-v.stop:
			return true // shutting down: exclude nobody
		default:
		}
	}
	return false
}

// memberAddrs returns the session and service addresses of the members in
// a view: the addresses a report of a lost server may name.
func memberAddrs(nodes []assign.Node, named map[string][]assign.Node) map[netip.AddrPort]struct{} {
	set := make(map[netip.AddrPort]struct{}, len(nodes))
	add := func(ns []assign.Node) {
		for _, n := range ns {
			for _, a := range []netip.AddrPort{n.Addr, n.Addr6} {
				if a.IsValid() {
					set[a] = struct{}{}
				}
			}
		}
	}
	add(nodes)
	for _, ns := range named {
		add(ns)
	}
	return set
}
