package wire

import (
	"net/netip"

	"github.com/pion/stun/v3"
)

// Probe is what a client puts in a probe to the balancer address.
type Probe struct {
	// TxID is the transaction ID; a retransmission reuses it.
	TxID [stun.TransactionIDSize]byte
	// Session is the client's session identifier (USHER-SESSION).
	Session SessionID
	// Service names the service (USHER-SERVICE); empty for the default.
	Service string
	// LostServer names the server the client just lost (USHER-LOST-SERVER);
	// zero for none.
	LostServer netip.AddrPort
	// ClientAddress is the client's own idea of its address
	// (USHER-CLIENT-ADDRESS); zero for none.
	ClientAddress netip.AddrPort
	// PadTo pads the probe with PADDING to at least this many bytes, so the
	// answer may be as large; ProbeSize is the usual value.
	PadTo int
}

// Keepalive is what a client sends its assigned server.
type Keepalive struct {
	// TxID is the transaction ID, fresh for every keepalive.
	TxID [stun.TransactionIDSize]byte
	// Session is the client's session identifier (USHER-SESSION).
	Session SessionID
	// Ticket is the ticket issued with the assignment (USHER-TICKET).
	Ticket []byte
	// PadTo pads the keepalive to at least this many bytes; KeepaliveSize
	// is the usual value.
	PadTo int
}

// AppendProbe appends the encoded probe p, a Binding request ending in a
// FINGERPRINT, to dst.
func (e *Encoder) AppendProbe(dst []byte, p *Probe) ([]byte, error) {
	if len(p.Service) > MaxServiceLen {
		return dst, ErrAttribute
	}
	m := e.start(dst, stun.BindingRequest, p.TxID)
	m.Add(AttrSession, p.Session[:])
	if p.Service != "" {
		var buf [MaxServiceLen]byte
		m.Add(AttrService, buf[:copy(buf[:], p.Service)])
	}
	if p.LostServer.IsValid() {
		if err := addXORAddress(m, AttrLostServer, p.LostServer); err != nil {
			return dst, err
		}
	}
	if p.ClientAddress.IsValid() {
		if err := addXORAddress(m, AttrClientAddress, p.ClientAddress); err != nil {
			return dst, err
		}
	}
	pad(m, p.PadTo)
	return e.finish(dst, true)
}

// AppendKeepalive appends the encoded keepalive k, a Binding request ending
// in a FINGERPRINT, to dst.
func (e *Encoder) AppendKeepalive(dst []byte, k *Keepalive) ([]byte, error) {
	if len(k.Ticket) > MaxTicketLen {
		return dst, ErrAttribute
	}
	m := e.start(dst, stun.BindingRequest, k.TxID)
	m.Add(AttrSession, k.Session[:])
	if len(k.Ticket) > 0 {
		m.Add(AttrTicket, k.Ticket)
	}
	pad(m, k.PadTo)
	return e.finish(dst, true)
}

// pad adds a PADDING attribute so that m, once its FINGERPRINT is added,
// is at least size bytes long. size is first rounded up to the STUN
// alignment of four bytes: a message can only grow in steps of four, so a
// request asked for 61 bytes is 64 rather than 60.
func pad(m *stun.Message, size int) {
	const attrHeader = 4
	size = padded(size)
	n := size - (HeaderSize + int(m.Length) + sizeFingerprint + attrHeader)
	if n < 0 {
		return
	}
	var zeros [512]byte
	if n > len(zeros) {
		n = len(zeros)
	}
	m.Add(stun.AttrPadding, zeros[:padded(n)])
}

// start resets the encoder's message to write into dst's spare capacity.
func (e *Encoder) start(dst []byte, t stun.MessageType, tx [stun.TransactionIDSize]byte) *stun.Message {
	m := &e.m
	m.Raw = dst[len(dst):]
	m.Attributes = m.Attributes[:0]
	m.Length = 0
	m.Type = t
	m.TransactionID = tx
	m.WriteHeader()
	return m
}

// finish adds the fingerprint if asked and returns dst extended by the
// message.
func (e *Encoder) finish(dst []byte, fingerprint bool) ([]byte, error) {
	m := &e.m
	if fingerprint {
		if err := stun.Fingerprint.AddTo(m); err != nil {
			return dst, err
		}
	}
	// m.Raw was built in dst's spare capacity, so when it fit this append
	// copies nothing anywhere new and allocates nothing.
	return append(dst, m.Raw...), nil
}
