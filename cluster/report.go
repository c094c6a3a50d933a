package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Report is one node's load report. It travels as the node's memberlist
// metadata, so every member learns every other member's load by gossip and
// load never goes through raft.
type Report struct {
	// Service is the node's session endpoint, where clients are redirected.
	// An IPv6 zone is not carried: it has no meaning on another host.
	Service netip.AddrPort
	// RaftAddr is the host:port of this node's raft transport. The cluster
	// fills it in from its configuration; callers of SetReport may leave it empty.
	RaftAddr string
	// Sessions is the number of sessions the node currently carries.
	Sessions uint32
	// Capacity is the number of sessions the node is willing to carry.
	Capacity uint32
	// Accepted is a monotonic count of sessions the node has accepted.
	Accepted uint64
	// Draining is the node's own declaration that it takes no new sessions.
	// The FSM's drain set (State.Drained) is the authoritative operator drain.
	Draining bool
	// Voter says the node is willing to be a raft voter. The cluster fills it
	// in from Config.Voter.
	Voter bool
	// API is the host:port of the node's HTTP API (at most 64 bytes; empty
	// when it has none), so any agent can forward an operator's request to
	// the leader.
	API string
	// Seq increases with every publish; the cluster assigns it.
	Seq uint64
	// Bootstrapped says the node already has raft state (it bootstrapped or
	// was added to a cluster); a node seeing such a member never bootstraps
	// a second cluster. The cluster fills it in.
	Bootstrapped bool
	// Timing is a fingerprint of the node's raft timing (Timing.Fingerprint).
	// The fencing argument needs every voter to run the same timing, so a
	// member whose fingerprint differs is never bootstrapped with nor added
	// to raft. The cluster fills it in.
	Timing uint32
	// Leaving is set in the last report a node publishes before it leaves
	// gracefully, so the others record it as Left rather than Dead. The
	// cluster fills it in.
	Leaving bool
	// Services are the named services the node offers besides its session
	// endpoint (at most MaxServices, names unique), each with its own
	// addresses and load (see ServiceReport).
	Services []ServiceReport
}

// The first byte of every encoded Report: version 1 has no services, and is
// still what a report without them encodes to, so that a farm can be
// upgraded one agent at a time; version 2 appends them.
const (
	reportVersion         = 1
	reportVersionServices = 2
)

// MaxReportSize is the largest encoding EncodeReport produces (it refuses a
// report that would be larger: see ReportSize). It leaves room for a
// signature within memberlist's 512-byte node metadata limit.
const MaxReportSize = 1 + 1 + 1 + 16 + 2 + 1 + maxRaftAddrLen + 4 + 4 + 8 + 8 + 1 + maxAPIAddrLen + 4

// maxAPIAddrLen bounds Report.API.
const maxAPIAddrLen = 64

// maxRaftAddrLen bounds Report.RaftAddr (one length byte on the wire).
const maxRaftAddrLen = 255

const (
	flagDraining     = 1 << 0
	flagVoter        = 1 << 1
	flagBootstrapped = 1 << 2
	flagLeaving      = 1 << 3
	knownFlags       = flagDraining | flagVoter | flagBootstrapped | flagLeaving
)

const (
	familyNone = 0
	familyIPv4 = 4
	familyIPv6 = 6
)

// ErrBadReport is wrapped by every error DecodeReport returns.
var ErrBadReport = errors.New("bad report")

// EncodeReport returns the compact binary encoding of r:
//
//	version(1) flags(1) family(1) addr(0|4|16) port(2 if family != 0)
//	raftAddrLen(1) raftAddr(n) sessions(4) capacity(4) accepted(8) seq(8)
//	timing(4) apiLen(1) api(n)
//
// integers big-endian. It fails only if RaftAddr is longer than 255 bytes.
func EncodeReport(r Report) ([]byte, error) {
	if len(r.API) > maxAPIAddrLen {
		return nil, fmt.Errorf("api address is %d bytes, the limit is %d", len(r.API), maxAPIAddrLen)
	}
	if len(r.RaftAddr) > maxRaftAddrLen {
		return nil, fmt.Errorf("raft address is %d bytes, the limit is %d", len(r.RaftAddr), maxRaftAddrLen)
	}
	if err := checkServices(r.Services); err != nil {
		return nil, err
	}
	b := make([]byte, 0, MaxReportSize)
	if len(r.Services) == 0 {
		b = append(b, reportVersion)
	} else {
		b = append(b, reportVersionServices)
	}
	var flags byte
	if r.Draining {
		flags |= flagDraining
	}
	if r.Voter {
		flags |= flagVoter
	}
	if r.Bootstrapped {
		flags |= flagBootstrapped
	}
	if r.Leaving {
		flags |= flagLeaving
	}
	b = append(b, flags)
	b = appendAddr(b, r.Service)
	b = append(b, byte(len(r.RaftAddr)))
	b = append(b, r.RaftAddr...)
	b = binary.BigEndian.AppendUint32(b, r.Sessions)
	b = binary.BigEndian.AppendUint32(b, r.Capacity)
	b = binary.BigEndian.AppendUint64(b, r.Accepted)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint32(b, r.Timing)
	b = append(b, byte(len(r.API)))
	b = append(b, r.API...)
	if len(r.Services) > 0 {
		b = appendServices(b, r.Services)
	}
	if len(b) > MaxReportSize {
		return nil, fmt.Errorf("report of %d bytes, the limit is %d: shorten the service names or the raft and api addresses, or offer fewer services", len(b), MaxReportSize)
	}
	return b, nil
}

// appendAddr appends the encoding of a: family(1), then for a valid a its
// address (4 or 16 bytes, an IPv4-mapped one as IPv4, no zone) and port(2).
func appendAddr(b []byte, ap netip.AddrPort) []byte {
	addr := ap.Addr().Unmap().WithZone("")
	switch {
	case !ap.IsValid():
		return append(b, familyNone)
	case addr.Is4():
		a := addr.As4()
		b = append(b, familyIPv4)
		b = append(b, a[:]...)
	default:
		a := addr.As16()
		b = append(b, familyIPv6)
		b = append(b, a[:]...)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

// addr reads an address encoded by appendAddr.
func (d *decoder) addr() netip.AddrPort {
	switch fam := d.byte(); {
	case d.err != nil, fam == familyNone:
		return netip.AddrPort{}
	case fam == familyIPv4:
		addr := netip.AddrFrom4([4]byte(d.bytes(4)))
		return netip.AddrPortFrom(addr, d.uint16())
	case fam == familyIPv6:
		addr := netip.AddrFrom16([16]byte(d.bytes(16)))
		if addr.Is4In6() {
			d.fail(fmt.Errorf("%w: IPv4-mapped address in the IPv6 family", ErrBadReport))
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(addr, d.uint16())
	default:
		d.fail(fmt.Errorf("%w: address family %d", ErrBadReport, fam))
		return netip.AddrPort{}
	}
}

// DecodeReport parses an encoding made by EncodeReport. It rejects an unknown
// version, unknown flag bits, an unknown address family, a raft address that
// is not host:port, truncated input and trailing bytes.
func DecodeReport(b []byte) (Report, error) {
	r, rest, err := decodeReport(b)
	if err == nil && len(rest) != 0 {
		return Report{}, fmt.Errorf("%w: %d trailing bytes", ErrBadReport, len(rest))
	}
	return r, err
}

// decodeReport parses an encoded Report at the start of b and returns the
// bytes that follow it (a signature trailer, see sign.go).
func decodeReport(b []byte) (r Report, rest []byte, err error) {
	d := decoder{b: b}
	v := d.byte()
	if d.err == nil && v != reportVersion && v != reportVersionServices {
		return r, nil, fmt.Errorf("%w: version %d, want %d or %d", ErrBadReport, v, reportVersion, reportVersionServices)
	}
	flags := d.byte()
	if d.err == nil && flags&^knownFlags != 0 {
		return r, nil, fmt.Errorf("%w: unknown flags %#x", ErrBadReport, flags)
	}
	r.Draining = flags&flagDraining != 0
	r.Voter = flags&flagVoter != 0
	r.Bootstrapped = flags&flagBootstrapped != 0
	r.Leaving = flags&flagLeaving != 0
	if r.Service = d.addr(); d.err != nil {
		return Report{}, nil, d.err
	}
	n := int(d.byte())
	raftAddr := d.bytes(n)
	r.Sessions = d.uint32()
	r.Capacity = d.uint32()
	r.Accepted = d.uint64()
	r.Seq = d.uint64()
	r.Timing = d.uint32()
	na := int(d.byte())
	if d.err == nil && na > maxAPIAddrLen {
		return Report{}, nil, fmt.Errorf("%w: api address of %d bytes", ErrBadReport, na)
	}
	api := d.bytes(na)
	if d.err != nil {
		return Report{}, nil, d.err
	}
	if na > 0 {
		r.API = string(api)
		if _, _, err := net.SplitHostPort(r.API); err != nil {
			return Report{}, nil, fmt.Errorf("%w: api address %q: %w", ErrBadReport, r.API, err)
		}
	}
	if n > 0 {
		r.RaftAddr = string(raftAddr)
		if _, _, err := net.SplitHostPort(r.RaftAddr); err != nil {
			return Report{}, nil, fmt.Errorf("%w: raft address %q: %w", ErrBadReport, r.RaftAddr, err)
		}
	}
	if v == reportVersionServices {
		if r.Services, err = d.services(); err != nil {
			return Report{}, nil, err
		}
	}
	if used := len(b) - len(d.b); used > MaxReportSize {
		return Report{}, nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadReport, used, MaxReportSize)
	}
	return r, d.b, nil
}

// decoder reads big-endian fields; after the first short read every read
// returns zero values and err stays set.
type decoder struct {
	b   []byte
	err error
}

// zero is returned by short reads so fixed-size conversions never panic.
var zero [16]byte

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return zero[:min(n, len(zero))]
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%w: truncated", ErrBadReport)
		d.b = nil
		return zero[:min(n, len(zero))]
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// fail records err as the decoder's error unless it already has one, and
// stops further reads.
func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err, d.b = err, nil
	}
}

func (d *decoder) byte() byte     { return d.bytes(1)[0] }
func (d *decoder) uint16() uint16 { return binary.BigEndian.Uint16(d.bytes(2)) }
func (d *decoder) uint32() uint32 { return binary.BigEndian.Uint32(d.bytes(4)) }
func (d *decoder) uint64() uint64 { return binary.BigEndian.Uint64(d.bytes(8)) }
