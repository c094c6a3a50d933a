//go:build linux

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/wire"
)

// The attacker's tools: each runs from a host of the farm that holds none
// of the farm's credentials (or, for the insider, only its gossip key),
// with sockets opened inside that host's namespace (Host.Do, dialFrom),
// and counts what it sent until its context ends.

// raftPort is every agent's Raft port (the one after gossip's).
const raftPort = gossipPort + 1

// nsStream is a raft.StreamLayer on plain TCP inside a host's namespace:
// what a peer without a certificate can speak to the Raft port.
type nsStream struct {
	net.Listener
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	dials atomic.Int64 // connections that reached the port
}

func (s *nsStream) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := s.dial(ctx, "tcp", string(a))
	if err == nil {
		s.dials.Add(1)
	}
	return conn, err
}

// rogueRaft is a Raft peer without a certificate on host h, speaking
// hashicorp/raft's own wire format through its NetworkTransport (as
// cluster/hostile_test.go does in process).
type rogueRaft struct {
	trans  *raft.NetworkTransport
	stream *nsStream
	addr   raft.ServerAddress
}

func newRogueRaft(t testingT, h *Host) *rogueRaft {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(h.Addr.String(), strconv.Itoa(raftPort)))
		return err
	}); err != nil {
		t.Fatalf("rogue raft listener: %v", err)
	}
	s := &nsStream{Listener: ln, dial: dialFrom(h)}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  s,
		Timeout: time.Second,
		Logger:  hclog.NewNullLogger(),
	})
	t.Cleanup(func() { trans.Close() })
	return &rogueRaft{trans: trans, stream: s, addr: raft.ServerAddress(ln.Addr().String())}
}

// header is the RPC header the rogue sends, naming itself.
func (r *rogueRaft) header() raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("rogue"), Addr: []byte(r.addr)}
}

// vote sends target a RequestVote of term claiming the longest log there
// is, flagged as a leadership transfer so a follower with a leader hears it.
// It names no candidate: raft checks that a named candidate is in its
// configuration before it looks at the term, an anonymous one it does not.
func (r *rogueRaft) vote(target string, term uint64) error {
	var resp raft.RequestVoteResponse
	return r.trans.RequestVote("", raft.ServerAddress(target), &raft.RequestVoteRequest{
		RPCHeader:          raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax},
		Term:               term,
		LastLogIndex:       math.MaxUint64,
		LastLogTerm:        term,
		LeadershipTransfer: true,
	}, &resp)
}

// appendEntries sends target an AppendEntries of term naming the rogue
// leader, carrying one command entry.
func (r *rogueRaft) appendEntries(target string, term uint64) error {
	var resp raft.AppendEntriesResponse
	return r.trans.AppendEntries("rogue", raft.ServerAddress(target), &raft.AppendEntriesRequest{
		RPCHeader:         r.header(),
		Term:              term,
		PrevLogEntry:      0,
		PrevLogTerm:       0,
		Entries:           []*raft.Log{{Index: 1, Term: term, Type: raft.LogCommand, Data: []byte("rogue")}},
		LeaderCommitIndex: 1,
	}, &resp)
}

// testingT is the part of testing.TB the tools need.
type testingT interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// every calls fn every interval until ctx ends, and returns how many times
// it called it.
func every(ctx context.Context, interval time.Duration, fn func(i int)) int64 {
	t := time.NewTicker(interval)
	defer t.Stop()
	var n int64
	for i := 0; ; i++ {
		fn(i)
		n++
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
	}
}

// connFloodPause is the pause of each flood connection between closing
// and opening again.
const connFloodPause = 250 * time.Millisecond

// connFlood keeps up to open TCP connections to each target from host h,
// half of them silent and half sending garbage that is no TLS handshake,
// reopening each as soon as the far end closes it, until ctx ends. It
// returns how many connections it opened.
func connFlood(ctx context.Context, h *Host, targets []string, open int) int64 {
	dial := dialFrom(h)
	var opened atomic.Int64
	var wg sync.WaitGroup
	for _, to := range targets {
		for i := range open {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					// Paced: the attacker shares the farm's two cores
					// here, unlike on a real network.
					time.Sleep(connFloodPause)
					dctx, cancel := context.WithTimeout(ctx, time.Second)
					conn, err := dial(dctx, "tcp", to)
					cancel()
					if err != nil {
						continue
					}
					opened.Add(1)
					if i%2 == 1 {
						_, _ = conn.Write([]byte("\x00\x01GET / HTTP/1.0\r\n\r\n"))
					}
					stop := context.AfterFunc(ctx, func() { conn.Close() })
					_, _ = io.Copy(io.Discard, conn) // until the agent closes it
					stop()
					conn.Close()
				}
			}()
		}
	}
	wg.Wait()
	return opened.Load()
}

// nsTransport is memberlist's NetTransport with its sockets in a host's
// namespace: streams are dialled from there too.
type nsTransport struct {
	*memberlist.NetTransport
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (n *nsTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return n.dial(ctx, "tcp", addr)
}

func (n *nsTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return n.DialTimeout(a.Addr, timeout)
}

// newGossiper starts a memberlist instance named name on host h with the
// farm's label and, when key is not empty, the farm's gossip key (base64).
func newGossiper(t testingT, h *Host, name, key string) *memberlist.Memberlist {
	t.Helper()
	var nt *memberlist.NetTransport
	if err := h.Do(func() (err error) {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{h.Addr.String()}, BindPort: gossipPort,
			Logger: log.New(io.Discard, "", 0),
		})
		return err
	}); err != nil {
		t.Fatalf("gossiper transport: %v", err)
	}
	conf := memberlist.DefaultLANConfig()
	conf.Name = name
	conf.Label = e2eFarm
	conf.Transport = &nsTransport{NetTransport: nt, dial: dialFrom(h)}
	conf.LogOutput = io.Discard
	if key != "" {
		k, err := base64.StdEncoding.DecodeString(key)
		if err != nil {
			t.Fatalf("gossip key: %v", err)
		}
		conf.SecretKey = k
	}
	ml, err := memberlist.Create(conf)
	if err != nil {
		t.Fatalf("gossiper: %v", err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	return ml
}

// forgedReport is a report message (cluster/reportmsg.go) in the name of
// node, naming session as its session endpoint with room for every
// session there is, and a sequence number newer than any real one.
func forgedReport(node string, session netip.AddrPort, seq uint64) []byte {
	enc, err := cluster.EncodeReport(cluster.Report{
		Service: session, RaftAddr: session.Addr().String() + ":" + strconv.Itoa(raftPort),
		Capacity: math.MaxUint32, Seq: seq, Voter: true, Bootstrapped: true,
	})
	if err != nil {
		panic(err)
	}
	msg := []byte{1, byte(len(node))} // msgReport, name length
	msg = append(msg, node...)
	return append(msg, enc...)
}

// forgedState is a state message (cluster/statemsg.go) for node, newer
// than any the leader sent: it drains the node, caps its capacity at 1,
// and replaces its ticket key, in the name of leader and a huge term.
func forgedState(node, leader string, voters []string, index uint64) []byte {
	key := make([]byte, 32)
	rand.Read(key)
	msg := []byte{2, byte(len(node))} // msgState, name length
	msg = append(msg, node...)
	msg = binary.BigEndian.AppendUint64(msg, index)
	msg = append(msg, byte(len(key)))
	msg = append(msg, key...)
	msg = append(msg, 1|2) // drained, capacity set
	msg = binary.BigEndian.AppendUint32(msg, 1)
	msg = append(msg, byte(len(voters)))
	for _, v := range voters {
		msg = append(msg, byte(len(v)))
		msg = append(msg, v...)
	}
	msg = append(msg, byte(len(leader)))
	msg = append(msg, leader...)
	return binary.BigEndian.AppendUint64(msg, index)
}

// apiProbe is one API request an attacker tries and the statuses that
// mean it was refused.
type apiProbe struct {
	method, path string
	token        bool   // send the farm's token
	host         string // Host header to send; "" for the agent's own
}

// apiAttacks are the requests tried: writes and the session table without
// a token, and with the token but a foreign Host header (a page in a
// local browser whose DNS name was rebound to the agent).
var apiAttacks = []apiProbe{
	{method: http.MethodPut, path: "/v1/drain?node=%s"},
	{method: http.MethodDelete, path: "/v1/drain?node=%s"},
	{method: http.MethodPut, path: "/v1/leave"},
	{method: http.MethodGet, path: "/v1/sessions"},
	{method: http.MethodPut, path: "/v1/drain?node=%s", token: true, host: "usher.attacker.example"},
	{method: http.MethodPut, path: "/v1/leave", token: true, host: "usher.attacker.example"},
	{method: http.MethodGet, path: "/v1/sessions", token: true, host: "usher.attacker.example:7480"},
}

// apiRequest sends one attack request to the agent whose API is at base
// (scheme://host:port) from client and returns its status code.
func apiRequest(client *http.Client, base, node string, p apiProbe) (int, error) {
	path := p.path
	if p.method != http.MethodGet && p.path != "/v1/leave" {
		path = fmt.Sprintf(p.path, node)
	}
	req, err := http.NewRequest(p.method, base+path, nil)
	if err != nil {
		return 0, err
	}
	if p.token {
		req.Header.Set("X-Usher-Token", apiToken)
	}
	if p.host != "" {
		req.Host = p.host
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Linux packet socket constants.
const (
	ethPAll        = 0x0003
	packetOutgoing = 4
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// handoffTap captures, on one bridge port, the handoffs the leader sends
// to that port's server (an on-path attacker on the farm's switch) and
// replays each captured frame, verbatim (so from the balancer address),
// times times at once.
type handoffTap struct {
	fd      int
	ifindex int
	vip     netip.Addr
}

// openHandoffTap opens a packet socket on bridge port port inside the
// bridge namespace ns.
func openHandoffTap(ns *Host, port string, vip netip.Addr) (*handoffTap, error) {
	tap := &handoffTap{fd: -1, vip: vip}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(port)
		if err != nil {
			return err
		}
		tap.ifindex = ifi.Index
		fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(ethPAll)))
		if err != nil {
			return err
		}
		tap.fd = fd
		tv := syscall.Timeval{Usec: 100_000}
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: ifi.Index})
	})
	if err != nil && tap.fd >= 0 {
		syscall.Close(tap.fd)
	}
	return tap, err
}

// handoff returns whether frame is an IPv4 UDP datagram from the balancer
// address to a session port carrying a handoff.
func (tap *handoffTap) handoff(frame []byte) bool {
	const eth = 14
	if len(frame) < eth+20+8 || frame[12] != 0x08 || frame[13] != 0x00 {
		return false
	}
	ip := frame[eth:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ip[9] != syscall.IPPROTO_UDP || len(ip) < ihl+8 {
		return false
	}
	if netip.AddrFrom4([4]byte(ip[12:16])) != tap.vip {
		return false
	}
	udp := ip[ihl:]
	if binary.BigEndian.Uint16(udp[2:4]) != sessionPort {
		return false
	}
	return wire.IsHandoff(udp[8:])
}

// run captures and replays until ctx ends; it returns the handoffs
// captured and the replays sent.
func (tap *handoffTap) run(ctx context.Context, times int) (captured, replayed int64) {
	defer syscall.Close(tap.fd)
	seen := make(map[string]bool)
	buf := make([]byte, 2048)
	to := &syscall.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: tap.ifindex, Halen: 6}
	for ctx.Err() == nil {
		n, from, err := syscall.Recvfrom(tap.fd, buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				continue
			}
			return captured, replayed
		}
		ll, ok := from.(*syscall.SockaddrLinklayer)
		frame := buf[:n]
		// Outgoing: towards the server; our own replays come back
		// here too, and are skipped as already seen.
		if !ok || ll.Pkttype != packetOutgoing || !tap.handoff(frame) || seen[string(frame)] {
			continue
		}
		seen[string(frame)] = true
		captured++
		// The copy taken on the veth may carry a checksum left for the
		// hardware to fill in; replay it without one (0, allowed for
		// UDP over IPv4), the datagram itself unchanged.
		frame = slices.Clone(frame)
		ihl := int(frame[14]&0x0f) * 4
		frame[14+ihl+6], frame[14+ihl+7] = 0, 0
		seen[string(frame)] = true
		copy(to.Addr[:], frame[0:6])
		for range times {
			if syscall.Sendto(tap.fd, frame, 0, to) == nil {
				replayed++
			}
		}
	}
	return captured, replayed
}
