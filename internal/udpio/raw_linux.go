//go:build linux

package udpio

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawGroup is how many datagrams the Raw back-end reads in one call, at
// most. A group is what is already queued, read in a few microseconds a
// datagram, so a caller that reads the clock once per group (as the probe
// responder does) is never more than a fraction of a millisecond behind;
// and a caller that decides the whole group before it writes the answers
// runs the decisions, and the kernel's receive and send paths, each
// several times in a row with warm caches rather than taking turns with
// each other. In 16 paired saturation runs (TestBenchPairs, 2026-11-27)
// that took the responder from 1.08x to 1.03x of the plain echo's CPU per
// answer; a group's first answer leaves after at most rawGroup reads, some
// tens of microseconds.
const rawGroup = 16

// rawConn is the Raw back-end: one recvfrom or sendto per datagram, as
// many as the socket holds (up to a group) inside one RawConn callback, so
// that the runtime's per-call poller bookkeeping is paid once per group
// rather than once per datagram.
type rawConn struct {
	sock

	// The state of the call in progress, and the bound closures RawConn
	// calls (bound once, so a call does not allocate).
	msgs           []Message
	n, sent, done  int
	drained        bool
	errno          syscall.Errno
	name           sockaddr
	namelen        uint32
	recvFn, sendFn func(fd uintptr) bool
}

// newRawConn prepares the Raw back-end on conn.
func newRawConn(conn *net.UDPConn) (*rawConn, error) {
	s, err := newSock(conn)
	if err != nil {
		return nil, err
	}
	c := &rawConn{sock: s}
	c.recvFn, c.sendFn = c.recvfrom, c.sendto
	return c, nil
}

// ReadBatch reads up to rawGroup datagrams. A read failure after some
// datagrams were read is left for the next call, so that those are
// answered first.
func (c *rawConn) ReadBatch(msgs []Message) (int, error) {
	c.pace()
	c.msgs = msgs[:min(len(msgs), rawGroup)]
	c.n, c.drained, c.errno = 0, false, 0
	err := c.rc.Read(c.recvFn)
	n := c.n
	c.msgs = nil
	c.read(n, c.drained)
	switch {
	case n > 0:
		return n, nil
	case err != nil:
		return 0, err
	case c.errno != 0:
		return 0, c.errno
	}
	return 0, nil
}

// recvfrom is the RawConn read function: false asks the poller to wait.
func (c *rawConn) recvfrom(fd uintptr) bool {
	for c.n < len(c.msgs) {
		m := &c.msgs[c.n]
		buf := m.Buf[:cap(m.Buf)]
		c.namelen = unix.SizeofSockaddrInet6
		r, _, e := rawSyscall6(unix.SYS_RECVFROM, fd, bufPtr(buf), uintptr(len(buf)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&c.name[0])), uintptr(unsafe.Pointer(&c.namelen)))
		switch e {
		case 0:
			m.Buf, m.Addr = buf[:r], c.name.addrPort()
			c.n++
		case unix.EINTR:
		case unix.EAGAIN:
			c.drained = true
			if c.n == 0 {
				c.read(0, true) // the loop is about to park
			}
			return c.n > 0
		default:
			c.errno = e
			return true
		}
	}
	return true
}

// WriteBatch sends the datagrams with one sendto each.
func (c *rawConn) WriteBatch(msgs []Message) (int, error) {
	c.msgs, c.sent, c.done = msgs, 0, 0
	err := c.rc.Write(c.sendFn)
	sent := c.sent
	c.msgs = nil
	return sent, err
}

// sendto is the RawConn write function: false asks the poller to wait for
// room in the socket.
func (c *rawConn) sendto(fd uintptr) bool {
	for c.done < len(c.msgs) {
		m := &c.msgs[c.done]
		namelen, ok := c.name.put(m.Addr, c.inet6)
		if !ok {
			c.done++
			continue
		}
		_, _, e := rawSyscall6(unix.SYS_SENDTO, fd, bufPtr(m.Buf), uintptr(len(m.Buf)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&c.name[0])), uintptr(namelen))
		switch e {
		case 0:
			c.sent++
			c.done++
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			c.done++
		}
	}
	return true
}
