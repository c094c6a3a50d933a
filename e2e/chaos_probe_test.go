//go:build linux

package e2e

import (
	"crypto/rand"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/usherlb/usher/wire"
)

// answer is one probe answered at the VIP, timed on Monotonic.
type answer struct {
	sent, recv time.Duration
	term       uint64
	server     netip.AddrPort
	size, req  int
	redirect   bool
}

// prober sends a fresh probe (new transaction and session) to the VIP from
// the client host every interval and records every answer.
type prober struct {
	conn  *net.UDPConn
	vip   netip.AddrPort
	every time.Duration

	mu      sync.Mutex
	pending map[[12]byte]time.Duration
	answers []answer
	sent    int
	reqSize int

	stop chan struct{}
	wg   sync.WaitGroup
}

// startProber opens the prober's socket on the client host and starts
// sending.
func startProber(c *chaosCluster, every time.Duration) *prober {
	c.t.Helper()
	cl := c.topo.Client()
	p := &prober{
		vip: netip.AddrPortFrom(c.topo.VIP(), vipPort), every: every,
		pending: make(map[[12]byte]time.Duration), stop: make(chan struct{}),
	}
	if err := cl.Do(func() (err error) {
		p.conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: cl.Addr.AsSlice()})
		return err
	}); err != nil {
		c.t.Fatalf("prober socket: %v", err)
	}
	p.wg.Add(2)
	go p.send()
	go p.read()
	c.t.Cleanup(p.close)
	return p
}

// close stops the prober; it is idempotent.
func (p *prober) close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.conn.Close()
	p.wg.Wait()
}

func (p *prober) send() {
	defer p.wg.Done()
	var enc wire.Encoder
	var buf []byte
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		pr := wire.Probe{PadTo: wire.ProbeSize}
		rand.Read(pr.TxID[:])
		rand.Read(pr.Session[:])
		var err error
		buf, err = enc.AppendProbe(buf[:0], &pr)
		if err == nil {
			now := Monotonic()
			p.mu.Lock()
			p.pending[pr.TxID] = now
			p.sent++
			p.reqSize = len(buf)
			if p.sent%500 == 0 {
				for id, at := range p.pending {
					if now-at > 5*time.Second {
						delete(p.pending, id)
					}
				}
			}
			p.mu.Unlock()
			// A send error (no route, link down) is a lost probe.
			_, _ = p.conn.WriteToUDPAddrPort(buf, p.vip)
		}
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

func (p *prober) read() {
	defer p.wg.Done()
	buf := make([]byte, 2048)
	var dec wire.Decoder
	var r wire.Response
	for {
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		now := Monotonic()
		if err != nil {
			select {
			case <-p.stop:
				return
			default:
				continue // an ICMP error surfaced on the socket
			}
		}
		if dec.DecodeResponse(buf[:n], &r) != nil {
			continue
		}
		p.mu.Lock()
		sent, ok := p.pending[r.TxID]
		delete(p.pending, r.TxID)
		if ok {
			p.answers = append(p.answers, answer{
				sent: sent, recv: now, term: r.Term, server: r.Server,
				size: n, req: p.reqSize, redirect: !r.Success && r.Code == 300,
			})
		}
		p.mu.Unlock()
	}
}

// snapshot returns a copy of the answers so far, in arrival order.
func (p *prober) snapshot() []answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]answer(nil), p.answers...)
}

// firstAfter returns the arrival of the first answer to a probe sent at or
// after t0, waiting up to timeout for it.
func (p *prober) firstAfter(t0, timeout time.Duration) (answer, bool) {
	deadline := time.Now().Add(timeout)
	seen := 0
	for {
		p.mu.Lock()
		for _, a := range p.answers[seen:] {
			if a.sent >= t0 {
				p.mu.Unlock()
				return a, true
			}
		}
		seen = len(p.answers)
		p.mu.Unlock()
		if time.Now().After(deadline) {
			return answer{}, false
		}
		time.Sleep(2 * time.Millisecond)
	}
}
