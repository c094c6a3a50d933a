package udpio

import (
	"errors"
	"net"
	"net/netip"
)

// MaxDatagram is the size of the read buffers the agent gives a Conn.
// Anything longer arrives truncated.
const MaxDatagram = 2048

// MaxBatch bounds how many datagrams one call of a Conn reads or one
// sendmmsg sends.
const MaxBatch = 64

// Message is one datagram of a batch.
type Message struct {
	// Buf holds the datagram. ReadBatch reads into Buf[:cap(Buf)], which
	// must not be empty, and leaves Buf the datagram's length; WriteBatch
	// sends Buf as it is.
	Buf []byte
	// Addr is the datagram's source after ReadBatch, IPv4-mapped
	// addresses unmapped (the zero value if the system gave an address of
	// a family this package does not know), and its destination for
	// WriteBatch.
	Addr netip.AddrPort
}

// Conn reads and writes batches of datagrams on one UDP socket. It is used
// by one goroutine at a time; the socket stays its owner's, and closing it
// or setting a read deadline in the past ends a ReadBatch in progress.
type Conn interface {
	// ReadBatch waits until the socket holds a datagram, then reads as
	// many as it holds, up to len(msgs) and the back-end's own bound,
	// without waiting for more, and returns how many it read.
	ReadBatch(msgs []Message) (int, error)
	// WriteBatch sends each message's Buf to its Addr, waiting for room in
	// the socket if need be, and returns how many were sent. A datagram
	// the system refuses, or whose destination the socket cannot reach (an
	// IPv6 one on an IPv4 socket), is skipped and the rest still go. An
	// error means the socket failed, and the rest were not tried.
	WriteBatch(msgs []Message) (int, error)
}

// Mode is a back-end of Conn.
type Mode uint8

const (
	// Portable reads and writes one datagram per call through the net
	// package.
	Portable Mode = iota
	// Raw reads (recvfrom) up to a group of datagrams per wake-up and
	// writes (sendto) each answer with its own call, as raw system calls
	// (see rawSyscall6). Linux only.
	Raw
	// MMsg reads and writes up to MaxBatch datagrams per system call
	// (recvmmsg and sendmmsg), as raw system calls. Linux only.
	MMsg
)

// String returns the mode's name, for logs.
func (m Mode) String() string {
	switch m {
	case Portable:
		return "portable"
	case Raw:
		return "raw"
	case MMsg:
		return "mmsg"
	}
	return "unknown"
}

// NewMessages returns n messages whose buffers hold MaxDatagram bytes each,
// in one allocation.
func NewMessages(n int) []Message {
	msgs := make([]Message, n)
	mem := make([]byte, n*MaxDatagram)
	for i := range msgs {
		msgs[i].Buf = mem[i*MaxDatagram : i*MaxDatagram : (i+1)*MaxDatagram]
	}
	return msgs
}

// netConn is the Portable back-end.
type netConn struct{ c *net.UDPConn }

// ReadBatch reads one datagram.
func (c netConn) ReadBatch(msgs []Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	m := &msgs[0]
	n, from, err := c.c.ReadFromUDPAddrPort(m.Buf[:cap(m.Buf)])
	if err != nil {
		return 0, err
	}
	m.Buf, m.Addr = m.Buf[:n], unmap(from)
	return 1, nil
}

// WriteBatch writes the datagrams one at a time.
func (c netConn) WriteBatch(msgs []Message) (int, error) {
	sent := 0
	for i := range msgs {
		if _, err := c.c.WriteToUDPAddrPort(msgs[i].Buf, msgs[i].Addr); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return sent, err
			}
			continue
		}
		sent++
	}
	return sent, nil
}

// unmap turns an IPv4-mapped IPv6 address into plain IPv4, so the same
// peer has one spelling everywhere.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
