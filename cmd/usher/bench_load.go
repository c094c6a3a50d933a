//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/usherlb/usher/wire"
)

// The load generator: client sockets on 127.0.0.1 that send 256-byte Usher
// probes (each a new session) to one server, with batched socket calls so
// that the generator costs as little of the shared CPU as it can. Every
// server sees the same generator; only the server changes between runs.
const (
	loadSockets = 8   // client sockets: the kernel spreads them over SO_REUSEPORT sockets
	loadWindow  = 32  // probes in flight per socket at saturation
	loadBatch   = 64  // datagrams per recvmmsg/sendmmsg
	loadPool    = 512 // distinct pre-encoded probes per socket at saturation
)

// paceTick is how often the paced sender wakes to send what is due. Each
// tick's probes arrive together and queue behind each other at the
// server, the same for every server measured. Shorter ticks do not help
// on a shared 2-core machine: time.Sleep wakes about a millisecond late
// anyway, and nanosleep's extra wake-ups cost the server more CPU than the
// bursts cost it latency.
const paceTick = time.Millisecond

// checkLoopback refuses any target outside 127.0.0.0/8: the generator
// floods what it is pointed at.
func checkLoopback(to netip.AddrPort) error {
	if !to.Addr().Unmap().Is4() || !netip.MustParsePrefix("127.0.0.0/8").Contains(to.Addr().Unmap()) {
		return fmt.Errorf("load generator: %v is not in 127.0.0.0/8", to)
	}
	return nil
}

// loadConn is one client socket with its batch buffers.
type loadConn struct {
	conn *net.UDPConn
	pc   *ipv4.PacketConn
	to   *net.UDPAddr
	rx   []ipv4.Message
	tx   []ipv4.Message
}

func newLoadConn(to netip.AddrPort) (*loadConn, error) {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil, err
	}
	conn.SetReadBuffer(4 << 20)
	conn.SetWriteBuffer(4 << 20)
	c := &loadConn{conn: conn, pc: ipv4.NewPacketConn(conn), to: net.UDPAddrFromAddrPort(to),
		rx: make([]ipv4.Message, loadBatch), tx: make([]ipv4.Message, loadBatch)}
	for i := range c.rx {
		c.rx[i].Buffers = [][]byte{make([]byte, 2048)}
		c.tx[i].Buffers = [][]byte{nil}
		c.tx[i].Addr = c.to
	}
	return c, nil
}

// send sends pkts (at most loadBatch) in one batch, as far as the kernel
// takes them; it returns how many went.
func (c *loadConn) send(pkts [][]byte) int {
	for i, p := range pkts {
		c.tx[i].Buffers[0] = p
	}
	sent := 0
	for sent < len(pkts) {
		n, err := c.pc.WriteBatch(c.tx[sent:len(pkts)], 0)
		if err != nil {
			return sent
		}
		sent += n
	}
	return sent
}

// encodeProbe encodes a 256-byte probe for a random session whose
// transaction ID carries stamp (a send time) and seq.
func encodeProbe(enc *wire.Encoder, dst []byte, rng *rand.Rand, stamp int64, seq uint32) []byte {
	p := wire.Probe{PadTo: wire.ProbeSize}
	binary.BigEndian.PutUint64(p.TxID[:8], uint64(stamp))
	binary.BigEndian.PutUint32(p.TxID[8:], seq)
	binary.BigEndian.PutUint64(p.Session[:], rng.Uint64())
	out, err := enc.AppendProbe(dst[:0], &p)
	if err != nil {
		panic(err) // a fixed, valid probe
	}
	return out
}

// satResult is one saturation run.
type satResult struct {
	rate float64       // answers per second
	cpu  time.Duration // server CPU per answer
}

// saturate keeps loadWindow probes in flight on each of loadSockets
// sockets for d (after a warm-up) and returns the answer rate and the
// server's CPU time per answer. A probe unanswered for 20 ms counts as
// lost and is replaced.
func saturate(srv *benchServer, d time.Duration) (satResult, error) {
	if err := checkLoopback(srv.addr); err != nil {
		return satResult{}, err
	}
	var answered atomic.Uint64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, loadSockets)
	for i := range loadSockets {
		c, err := newLoadConn(srv.addr)
		if err != nil {
			return satResult{}, err
		}
		defer c.conn.Close()
		wg.Go(func() {
			var enc wire.Encoder
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			pool := make([][]byte, loadPool)
			for j := range pool {
				pool[j] = encodeProbe(&enc, make([]byte, 0, 300), rng, 0, uint32(j))
			}
			next, inflight := 0, 0
			refill := func() {
				for inflight < loadWindow {
					k := min(loadWindow-inflight, loadBatch)
					batch := make([][]byte, 0, k)
					for range k {
						batch = append(batch, pool[next%loadPool])
						next++
					}
					inflight += c.send(batch)
					if len(batch) > 0 && inflight < loadWindow {
						break // the kernel took fewer: try again after a read
					}
				}
			}
			refill()
			for !stop.Load() {
				c.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				n, err := c.pc.ReadBatch(c.rx, 0)
				if err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) {
						inflight = 0
						refill()
						continue
					}
					if !stop.Load() {
						errs <- err
					}
					return
				}
				inflight -= n
				answered.Add(uint64(n))
				refill()
			}
		})
	}
	time.Sleep(d / 4) // warm-up
	a0, c0, t0 := answered.Load(), srv.cpu(), time.Now()
	time.Sleep(d)
	a1, c1, t1 := answered.Load(), srv.cpu(), time.Now()
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		return satResult{}, err
	default:
	}
	n := a1 - a0
	if n == 0 {
		return satResult{}, fmt.Errorf("server %s answered nothing", srv.name)
	}
	return satResult{rate: float64(n) / t1.Sub(t0).Seconds(), cpu: (c1 - c0) / time.Duration(n)}, nil
}

// latResult is one paced run.
type latResult struct {
	p50, p99 time.Duration
	lost     float64 // fraction of probes unanswered
	rate     float64 // offered probes per second
}

// pacedPool is how many pre-encoded probes each paced socket cycles
// through; a probe's slot is its transaction ID, and its send time is kept
// by slot, so no answer may take longer than a cycle (seconds).
const pacedPool = 1 << 14

// paced sends probes at rate per second over loadSockets/2 sockets: one
// sender wakes every paceTick and sends what is due, round robin over the
// sockets, so probes arrive spread out and the generator stays cheap. It
// runs for d after a warm-up and returns the round-trip percentiles of the
// probes sent in that window, from their send times (kept by transaction
// ID, which every server under test returns).
func paced(srv *benchServer, rate float64, d time.Duration) (latResult, error) {
	if err := checkLoopback(srv.addr); err != nil {
		return latResult{}, err
	}
	const socks = loadSockets / 2
	warm := d / 4
	total := warm + d
	type pacedConn struct {
		*loadConn
		pool   [][]byte
		sentAt []atomic.Int64 // by slot: ns since start, +1 (0: not sent)
	}
	conns := make([]*pacedConn, socks)
	var enc wire.Encoder
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range conns {
		c, err := newLoadConn(srv.addr)
		if err != nil {
			return latResult{}, err
		}
		defer c.conn.Close()
		pc := &pacedConn{loadConn: c, pool: make([][]byte, pacedPool), sentAt: make([]atomic.Int64, pacedPool)}
		for j := range pc.pool {
			pc.pool[j] = encodeProbe(&enc, make([]byte, 0, wire.ProbeSize), rng, 0, uint32(j))
		}
		conns[i] = pc
	}
	start := time.Now()
	var mu sync.Mutex
	var lats []time.Duration
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			local := make([]time.Duration, 0, int(rate*d.Seconds()/socks*1.1)+16)
			c.conn.SetReadDeadline(start.Add(total + 200*time.Millisecond))
			for {
				n, err := c.pc.ReadBatch(c.rx, 0)
				now := time.Since(start)
				if err != nil {
					break
				}
				for _, m := range c.rx[:n] {
					b := m.Buffers[0][:m.N]
					if len(b) < 20 {
						continue
					}
					slot := binary.BigEndian.Uint32(b[16:20]) % pacedPool
					sent := time.Duration(c.sentAt[slot].Swap(0) - 1)
					if sent >= warm && sent < total {
						local = append(local, now-sent)
					}
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	// The sender.
	var inWindow uint64
	batch := make([][]byte, 0, loadBatch)
	next := make([]int, socks)
	var sent uint64
	idx := 0
	for {
		el := time.Since(start)
		if el >= total {
			break
		}
		due := uint64(rate*el.Seconds()) - sent
		for due > 0 {
			c := conns[idx]
			k := min(int(due), loadBatch)
			now := int64(time.Since(start)) + 1
			batch = batch[:0]
			for range k {
				slot := next[idx] % pacedPool
				next[idx]++
				c.sentAt[slot].Store(now)
				batch = append(batch, c.pool[slot])
			}
			c.send(batch)
			idx = (idx + 1) % socks
			sent += uint64(k)
			due -= uint64(k)
			if time.Duration(now-1) >= warm {
				inWindow += uint64(k)
			}
		}
		time.Sleep(paceTick)
	}
	wg.Wait()
	if len(lats) == 0 {
		return latResult{}, fmt.Errorf("server %s answered nothing", srv.name)
	}
	slices.Sort(lats)
	res := latResult{
		p50:  lats[len(lats)/2],
		p99:  lats[len(lats)*99/100],
		rate: rate,
	}
	if inWindow > 0 {
		res.lost = max(0, 1-float64(len(lats))/float64(inWindow))
	}
	return res, nil
}
