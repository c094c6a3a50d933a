package node

import (
	"flag"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/usherlb/usher/wire"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

// keepalive encodes a keepalive for session s padded to padTo bytes.
func keepalive(t testing.TB, s wire.SessionID, ticket []byte, padTo int) []byte {
	t.Helper()
	var enc wire.Encoder
	k := wire.Keepalive{Session: s, Ticket: ticket, PadTo: padTo}
	fillTx(&k.TxID)
	b, err := enc.AppendKeepalive(nil, &k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// probe encodes an Usher probe padded to padTo bytes.
func probe(t testing.TB, p wire.Probe) []byte {
	t.Helper()
	var enc wire.Encoder
	fillTx(&p.TxID)
	b, err := enc.AppendProbe(nil, &p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fillTx(tx *[12]byte) {
	for i := range tx {
		tx[i] = byte(rand.Uint32())
	}
}

// decode decodes an answer.
func decode(t testing.TB, b []byte) wire.Response {
	t.Helper()
	var d wire.Decoder
	var r wire.Response
	if err := d.DecodeResponse(b, &r); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return r
}

var (
	clientA = netip.MustParseAddrPort("192.0.2.1:5000")
	clientB = netip.MustParseAddrPort("192.0.2.2:6000")
	server1 = netip.MustParseAddrPort("198.51.100.1:3479")
	server2 = netip.MustParseAddrPort("198.51.100.2:3479")
	server3 = netip.MustParseAddrPort("198.51.100.3:3479")
)

// answer is answerAt with the responder's clock read now, as the unbatched
// serving loop does for each datagram.
func (p *prober) answer(dst, pkt []byte, from netip.AddrPort) ([]byte, dropReason) {
	return p.answerAt(dst, pkt, from, p.r.cfg.Now())
}

// listenUDP opens a UDP socket on addr, closed at the end of the test.
func listenUDP(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends the request pkt from c to to and returns the first answer
// to arrive that carries pkt's transaction ID, failing the test if none
// comes within 5 s.
func roundTrip(t testing.TB, c *net.UDPConn, to netip.AddrPort, pkt []byte) wire.Response {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(pkt, to); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, maxDatagram)
	var d wire.Decoder
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer from %v: %v", to, err)
		}
		var r wire.Response
		if d.DecodeResponse(buf[:n], &r) == nil && r.TxID == [12]byte(pkt[8:20]) {
			return r
		}
	}
}

// fileAndFlags returns the configuration the file text src and then the
// command-line args make, as usher agent reads them, and the flag set.
func fileAndFlags(t *testing.T, src string, args []string) (*Config, *flag.FlagSet) {
	t.Helper()
	c, err := ParseConfig([]byte(src), "usher.hcl")
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &c, fs
}
