//go:build linux

package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/wire"
)

// spoofBlock is where every spoofed source address comes from: the upper
// half of 198.18.0.0/15, which no farm uses (farms take 198.18.x.0/24).
var spoofBlock = netip.MustParsePrefix("198.19.0.0/16")

// spoofedSource returns the i-th of n spoofed sources: one source is
// 198.19.255.1; more are spread four to a /24 over 198.19.0.0 to
// 198.19.249.0, so a limiter keyed by /24 sees 250 prefixes, not one.
func spoofedSource(i, n int) netip.AddrPort {
	port := uint16(20000 + i%40000)
	if n == 1 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 255, 1}), port)
	}
	i %= 1000
	a := netip.AddrFrom4([4]byte{198, 19, byte(i / 4), byte(1 + (i%4)*64)})
	return netip.AddrPortFrom(a, port)
}

// rawSender sends IPv4 UDP datagrams with headers of its own making
// (IPPROTO_RAW implies IP_HDRINCL) from inside one host's namespace, so
// any source address can be written in.
type rawSender struct {
	fd  int
	buf []byte
}

// newRawSender opens the raw socket in the calling thread's namespace.
func newRawSender() (*rawSender, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4<<20); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return &rawSender{fd: fd, buf: make([]byte, 0, 1500)}, nil
}

// close closes the socket.
func (r *rawSender) close() { syscall.Close(r.fd) }

// send writes one datagram from src to dst carrying payload. Both
// addresses must be IPv4 and src inside spoofBlock: the generator never
// writes any other source.
func (r *rawSender) send(src, dst netip.AddrPort, payload []byte) error {
	if !spoofBlock.Contains(src.Addr()) {
		return fmt.Errorf("source %v outside %v", src, spoofBlock)
	}
	r.buf = appendUDP4(r.buf[:0], src, dst, payload)
	return syscall.Sendto(r.fd, r.buf, 0, &syscall.SockaddrInet4{Addr: dst.Addr().As4()})
}

// appendUDP4 appends an IPv4 header (the kernel fills in its checksum)
// and a UDP header with its checksum, then payload.
func appendUDP4(b []byte, src, dst netip.AddrPort, payload []byte) []byte {
	s, d := src.Addr().As4(), dst.Addr().As4()
	ulen := 8 + len(payload)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(20+ulen))
	b = append(b, 0, 0, 0x40, 0, 64, syscall.IPPROTO_UDP, 0, 0) // id, DF, TTL, protocol, checksum
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	u := len(b)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(ulen))
	b = append(b, 0, 0)
	b = append(b, payload...)
	// The checksum over the pseudo-header (addresses, protocol, length)
	// and the UDP header and payload.
	sum := uint32(syscall.IPPROTO_UDP) + uint32(ulen)
	for _, w := range [][]byte{s[:], d[:], b[u:]} {
		for i := 0; i+1 < len(w); i += 2 {
			sum += uint32(w[i])<<8 | uint32(w[i+1])
		}
		if len(w)%2 == 1 {
			sum += uint32(w[len(w)-1]) << 8
		}
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[u+6:], c)
	return b
}

// floodPlan is what one flood sends: from how many spoofed sources, to
// which targets in turn, requests of which kinds in turn, how fast.
type floodPlan struct {
	sources int
	targets []netip.AddrPort
	kinds   []*probeKind
	rate    float64 // datagrams per second, all targets together
}

// run sends the plan's datagrams from r, paced in 1 ms batches, until ctx
// ends, and returns how many it sent. A generator that cannot keep up
// sends what it can: the figures record the rate achieved.
func (p floodPlan) run(ctx context.Context, r *rawSender) int64 {
	var enc wire.Encoder
	var pkt []byte
	var tx [stun.TransactionIDSize]byte
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	start := time.Now()
	var sent, i int64
	for {
		select {
		case <-ctx.Done():
			return sent
		case <-t.C:
		}
		due := int64(p.rate * time.Since(start).Seconds())
		for ; i < due && ctx.Err() == nil; i++ {
			binary.BigEndian.PutUint64(tx[4:], uint64(i))
			k := p.kinds[int(i)%len(p.kinds)]
			pkt = k.build(&enc, pkt[:0], tx)
			src := spoofedSource(int(i)%p.sources, p.sources)
			if r.send(src, p.targets[int(i)%len(p.targets)], pkt) == nil {
				sent++
			}
		}
	}
}

// lostServerHint is an Usher probe, padded as a client's, whose
// USHER-LOST-SERVER names an address that is no member of the farm (one
// of spoofBlock, varying with the transaction).
var lostServerHint = &probeKind{name: "lost-server-hint", build: func(enc *wire.Encoder, buf []byte, tx [stun.TransactionIDSize]byte) []byte {
	p := wire.Probe{TxID: tx, PadTo: wire.ProbeSize}
	copy(p.Session[:], tx[:])
	p.Session[0] ^= 0x5a
	n := binary.BigEndian.Uint64(tx[4:])
	p.LostServer = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(n >> 8), byte(n)}), sessionPort)
	out, _ := enc.AppendProbe(buf, &p)
	return out
}}

// ticketlessKeepalive is an Usher keepalive without a ticket in a session
// no server knows, varying with the transaction.
var ticketlessKeepalive = &probeKind{name: "keepalive-ticketless", build: func(enc *wire.Encoder, buf []byte, tx [stun.TransactionIDSize]byte) []byte {
	var s wire.SessionID
	copy(s[:], tx[:])
	out, _ := enc.AppendKeepalive(buf, &wire.Keepalive{TxID: tx, Session: s})
	return out
}}
