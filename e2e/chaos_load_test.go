//go:build linux

package e2e

import (
	"crypto/rand"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usherlb/usher/wire"
)

// loadWorkers is how many sockets the capacity measurement and the load
// generator use.
const loadWorkers = 16

// probePacket returns one encoded probe with a fresh transaction and
// session.
func probePacket(enc *wire.Encoder, buf []byte) ([]byte, [12]byte) {
	p := wire.Probe{PadTo: wire.ProbeSize}
	rand.Read(p.TxID[:])
	rand.Read(p.Session[:])
	out, _ := enc.AppendProbe(buf[:0], &p)
	return out, p.TxID
}

// loadSockets opens n UDP sockets on the client host.
func loadSockets(c *chaosCluster, n int) []*net.UDPConn {
	c.t.Helper()
	cl := c.topo.Client()
	var conns []*net.UDPConn
	for range n {
		var conn *net.UDPConn
		if err := cl.Do(func() (err error) {
			conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: cl.Addr.AsSlice()})
			return err
		}); err != nil {
			c.t.Fatalf("load socket: %v", err)
		}
		conns = append(conns, conn)
	}
	return conns
}

// probeCapacity measures how many probes per second the VIP answers when
// loadWorkers clients each keep one probe outstanding for d: a closed-loop
// estimate of the probe path's capacity on this machine, load generator
// included.
func probeCapacity(c *chaosCluster, d time.Duration) float64 {
	vip := netip.AddrPortFrom(c.topo.VIP(), vipPort)
	conns := loadSockets(c, loadWorkers)
	var answered atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			var enc wire.Encoder
			var pkt []byte
			rbuf := make([]byte, 1500)
			for time.Now().Before(end) {
				pkt, _ = probePacket(&enc, pkt)
				if _, err := conn.WriteToUDPAddrPort(pkt, vip); err != nil {
					continue
				}
				_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if _, _, err := conn.ReadFromUDPAddrPort(rbuf); err == nil {
					answered.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(answered.Load()) / d.Seconds()
}

// loadGen sends probes to the VIP at a fixed rate from loadWorkers sockets
// and counts the answers, until stopped.
type loadGen struct {
	sent, answered atomic.Int64
	stop           chan struct{}
	wg             sync.WaitGroup
	conns          []*net.UDPConn
}

// startLoad starts sending rate probes per second.
func startLoad(c *chaosCluster, rate float64) *loadGen {
	vip := netip.AddrPortFrom(c.topo.VIP(), vipPort)
	g := &loadGen{stop: make(chan struct{}), conns: loadSockets(c, loadWorkers)}
	per := rate / float64(len(g.conns))
	for _, conn := range g.conns {
		g.wg.Add(2)
		go func() {
			defer g.wg.Done()
			rbuf := make([]byte, 1500)
			for {
				if _, _, err := conn.ReadFromUDPAddrPort(rbuf); err != nil {
					select {
					case <-g.stop:
						return
					default:
						continue
					}
				}
				g.answered.Add(1)
			}
		}()
		go func() {
			defer g.wg.Done()
			var enc wire.Encoder
			var pkt []byte
			// Send in 5 ms batches: timers cannot pace single packets
			// at thousands per second.
			const tick = 5 * time.Millisecond
			t := time.NewTicker(tick)
			defer t.Stop()
			start := time.Now()
			var done int64
			for {
				select {
				case <-g.stop:
					return
				case <-t.C:
				}
				due := int64(per * time.Since(start).Seconds())
				for ; done < due; done++ {
					pkt, _ = probePacket(&enc, pkt)
					if _, err := conn.WriteToUDPAddrPort(pkt, vip); err == nil {
						g.sent.Add(1)
					}
				}
			}
		}()
	}
	c.t.Cleanup(g.close)
	return g
}

// close stops the generator; it is idempotent.
func (g *loadGen) close() {
	select {
	case <-g.stop:
		return
	default:
	}
	close(g.stop)
	for _, conn := range g.conns {
		conn.Close()
	}
	g.wg.Wait()
}
