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

	"github.com/usherlb/usher/wire"
)

// verifier checks the servers that clients report lost (USHER-LOST-SERVER)
// before the leader stops assigning to them: a client's word alone never
// takes a server out of service, since the client may be wrong or lying.
//
// The probe path hands it reports without blocking. For each server not
// already being checked it sends a stock STUN Binding request, which every
// session endpoint answers, and waits up to the timeout (with one
// retransmission halfway). A server that stays silent is excluded: the view
// marks it suspect, so it gets no new sessions. Excluded servers are checked
// again every recheck interval and come back as soon as they answer (a
// restarted agent at the same address, say).
type verifier struct {
	timeout time.Duration
	recheck time.Duration
	changed func() // asks for a new view after the excluded set changed
	log     hclog.Logger

	reports  chan netip.AddrPort
	excluded atomic.Pointer[map[netip.AddrPort]struct{}]

	reported, dropped, confirmed, refuted atomic.Uint64

	stop chan struct{}
	wg   sync.WaitGroup
}

// maxChecks bounds the checks in flight at once.
const maxChecks = 16

func newVerifier(timeout, recheck time.Duration, changed func(), log hclog.Logger) *verifier {
	v := &verifier{
		timeout: timeout,
		recheck: recheck,
		changed: changed,
		log:     log,
		reports: make(chan netip.AddrPort, 64),
		stop:    make(chan struct{}),
	}
	empty := map[netip.AddrPort]struct{}{}
	v.excluded.Store(&empty)
	v.wg.Add(1)
	go v.loop()
	return v
}

// report tells the verifier a client lost server. It never blocks: when the
// queue is full the report is dropped (the same server is reported by every
// client it had, so another report follows).
func (v *verifier) report(server netip.AddrPort) {
	v.reported.Add(1)
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

// loop owns the set of checks in flight and the excluded set.
func (v *verifier) loop() {
	defer v.wg.Done()
	inFlight := map[netip.AddrPort]bool{}
	results := make(chan checkResult, maxChecks)
	tick := time.NewTicker(v.recheck)
	defer tick.Stop()
	start := func(server netip.AddrPort) {
		if inFlight[server] || len(inFlight) >= maxChecks {
			return
		}
		inFlight[server] = true
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			results <- checkResult{server, v.check(server)}
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

// record applies a check's result to the excluded set.
func (v *verifier) record(r checkResult) {
	old := *v.excluded.Load()
	_, was := old[r.server]
	switch {
	case !r.alive && !was:
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
