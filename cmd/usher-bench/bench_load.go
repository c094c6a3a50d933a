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

	// loadLossAfter is how long a probe may go unanswered at saturation
	// before it counts as lost and is replaced.
	loadLossAfter = 20 * time.Millisecond
	// pacedSockets is how many sockets of its own each server of a paced
	// run gets.
	pacedSockets = loadSockets / 2
)

// warmup is the warm-up before a measurement of d, for each server
// measured: saturate and paced runs both discard it.
func warmup(d time.Duration) time.Duration { return d / 4 }

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
	if err := setBuffers(conn, 4<<20); err != nil {
		return nil, errors.Join(err, conn.Close())
	}
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
// server's CPU time per answer. A probe unanswered for loadLossAfter
// counts as lost and is replaced.
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
			rng := rand.New(rand.NewPCG(uint64(i), 7)) //nolint:gosec // G404: varied test traffic, reproducible
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
				err := c.conn.SetReadDeadline(time.Now().Add(loadLossAfter))
				n := 0
				if err == nil {
					n, err = c.pc.ReadBatch(c.rx, 0)
				}
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
	time.Sleep(warmup(d))
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

// latResult is one server's share of a paced run.
type latResult struct {
	p50, p99 time.Duration
	lost     float64 // fraction of probes unanswered
	rate     float64 // offered probes per second, while it is the server's turn
	answered int     // probes sent after the warm-up and answered
}

// pacedPool is how many pre-encoded probes each paced socket cycles
// through; a probe's slot is its transaction ID, and its send time is kept
// by slot, so no answer may take longer than a cycle (seconds).
const pacedPool = 1 << 14

// pacedSlice is how long the paced sender stays with one server before it
// turns to the next. Servers measured against each other take turns many
// times a second, so a stretch of the shared machine's stalls (a neighbour
// busy for a second, a burst of host interrupts) falls on all of them
// alike rather than on whichever had the run at the time.
const pacedSlice = 100 * time.Millisecond

// paced sends probes at rate per second to the servers in turn, a
// pacedSlice each, the first server first, until each has had d after a
// warm-up. One sender wakes every paceTick and sends what is due to the
// server whose turn it is, round robin over pacedSockets sockets of that
// server's own, so probes arrive spread out and the generator stays cheap.
// It returns, per server, the round-trip percentiles of the probes sent to
// it after the warm-up, from their send times (kept by transaction ID,
// which every server under test returns).
func paced(srvs []*benchServer, rate float64, d time.Duration) ([]latResult, error) {
	for _, s := range srvs {
		if err := checkLoopback(s.addr); err != nil {
			return nil, err
		}
	}
	conns, err := dialPaced(srvs)
	defer func() {
		for _, cs := range conns {
			for _, c := range cs {
				c.conn.Close()
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	n := time.Duration(len(srvs))
	run := pacedRun{conns: conns, rate: rate, warm: n * warmup(d), start: time.Now()}
	run.total = run.warm + n*d
	lats := make([][]time.Duration, len(srvs))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, cs := range conns {
		for _, c := range cs {
			wg.Go(func() {
				local := run.receive(c, int(rate*d.Seconds()/pacedSockets*1.1)+16)
				mu.Lock()
				lats[c.srv] = append(lats[c.srv], local...)
				mu.Unlock()
			})
		}
	}
	inWindow := run.send()
	wg.Wait()
	return pacedResults(srvs, lats, inWindow, rate)
}

// pacedConn is one socket of the paced generator.
type pacedConn struct {
	*loadConn
	srv    int
	pool   [][]byte
	sentAt []atomic.Int64 // by slot: ns since start, +1 (0: not sent)
}

// dialPaced opens pacedSockets sockets to each server, each with its pool
// of pre-encoded probes. The sockets it opened are returned even with an
// error, for the caller to close.
func dialPaced(srvs []*benchServer) ([][]*pacedConn, error) {
	conns := make([][]*pacedConn, len(srvs))
	var enc wire.Encoder
	rng := rand.New(rand.NewPCG(3, 5)) //nolint:gosec // G404: varied test traffic, reproducible
	for s, srv := range srvs {
		for range pacedSockets {
			c, err := newLoadConn(srv.addr)
			if err != nil {
				return conns, err
			}
			pc := &pacedConn{loadConn: c, srv: s, pool: make([][]byte, pacedPool), sentAt: make([]atomic.Int64, pacedPool)}
			for j := range pc.pool {
				pc.pool[j] = encodeProbe(&enc, make([]byte, 0, wire.ProbeSize), rng, 0, uint32(j))
			}
			conns[s] = append(conns[s], pc)
		}
	}
	return conns, nil
}

// pacedRun is one paced measurement: the sockets by server, the rate and
// the span, in time since start, of the warm-up and of the whole run.
type pacedRun struct {
	conns       [][]*pacedConn
	rate        float64
	start       time.Time
	warm, total time.Duration
}

// receive reads c's answers until the run is over and returns the latency
// of each answered probe that was sent after the warm-up.
func (r *pacedRun) receive(c *pacedConn, capacity int) []time.Duration {
	local := make([]time.Duration, 0, capacity)
	if err := c.conn.SetReadDeadline(r.start.Add(r.total + 200*time.Millisecond)); err != nil {
		return local // a closed socket: nothing to read
	}
	for {
		n, err := c.pc.ReadBatch(c.rx, 0)
		now := time.Since(r.start)
		if err != nil {
			return local
		}
		for _, m := range c.rx[:n] {
			b := m.Buffers[0][:m.N]
			if len(b) < 20 {
				continue
			}
			slot := binary.BigEndian.Uint32(b[16:20]) % pacedPool
			sent := time.Duration(c.sentAt[slot].Swap(0) - 1)
			if sent >= r.warm && sent < r.total {
				local = append(local, now-sent)
			}
		}
	}
}

// send sends the probes due at the run's rate, every paceTick, to the
// server whose turn it is (a pacedSlice each), round robin over its
// sockets, until the run is over; it returns how many probes each server
// was sent after the warm-up.
func (r *pacedRun) send() []uint64 {
	srvs := len(r.conns)
	inWindow := make([]uint64, srvs)
	batch := make([][]byte, 0, loadBatch)
	next := make([][]int, srvs)
	idx := make([]int, srvs)
	for s := range next {
		next[s] = make([]int, pacedSockets)
	}
	var sent uint64
	for {
		el := time.Since(r.start)
		if el >= r.total {
			return inWindow
		}
		s := int(el/pacedSlice) % srvs
		due := uint64(r.rate*el.Seconds()) - sent
		for due > 0 {
			i := idx[s]
			c := r.conns[s][i]
			k := min(int(due), loadBatch)
			now := int64(time.Since(r.start)) + 1
			batch = batch[:0]
			for range k {
				slot := next[s][i] % pacedPool
				next[s][i]++
				c.sentAt[slot].Store(now)
				batch = append(batch, c.pool[slot])
			}
			c.send(batch)
			idx[s] = (i + 1) % pacedSockets
			sent += uint64(k)
			due -= uint64(k)
			if time.Duration(now-1) >= r.warm {
				inWindow[s] += uint64(k)
			}
		}
		time.Sleep(paceTick)
	}
}

// pacedResults turns each server's latencies and probes sent into its
// figures.
func pacedResults(srvs []*benchServer, lats [][]time.Duration, inWindow []uint64, rate float64) ([]latResult, error) {
	res := make([]latResult, len(srvs))
	for s, l := range lats {
		if len(l) == 0 {
			return nil, fmt.Errorf("server %s answered nothing", srvs[s].name)
		}
		slices.Sort(l)
		res[s] = latResult{p50: l[len(l)/2], p99: l[len(l)*99/100], rate: rate, answered: len(l)}
		if inWindow[s] > 0 {
			res[s].lost = max(0, 1-float64(len(l))/float64(inWindow[s]))
		}
	}
	return res, nil
}

// setBuffers sizes conn's kernel receive and send buffers to size bytes
// (the kernel caps them at its limits).
func setBuffers(conn *net.UDPConn, size int) error {
	if err := conn.SetReadBuffer(size); err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	if err := conn.SetWriteBuffer(size); err != nil {
		return fmt.Errorf("send buffer: %w", err)
	}
	return nil
}
