//go:build linux

package udpio

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr: a msghdr and the byte count the kernel fills
// in. Go pads it to the C layout on every word size.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// mmsgConn is the MMsg back-end: it reads and writes batches of datagrams
// with recvmmsg and sendmmsg, through the runtime's poller: a read waits
// until at least one datagram is queued and returns whatever is queued
// then, never waiting for more. Its headers are allocated once and point
// at the caller's buffers, so neither direction allocates.
type mmsgConn struct {
	sock

	rx      []mmsghdr
	rxIov   []unix.Iovec
	rxNames []sockaddr

	tx      []mmsghdr
	txIov   []unix.Iovec
	txNames []sockaddr

	// The state of the call in progress, and the bound closures RawConn
	// calls (bound once, so a call does not allocate).
	want, n, sent, failed, queued int
	errno                         syscall.Errno
	recvFn, sendFn                func(fd uintptr) bool
}

// newMMsgConn prepares the MMsg back-end on conn.
func newMMsgConn(conn *net.UDPConn) (*mmsgConn, error) {
	s, err := newSock(conn)
	if err != nil {
		return nil, err
	}
	s.always = true // see sock.pace
	c := &mmsgConn{
		sock:    s,
		rx:      make([]mmsghdr, MaxBatch),
		rxIov:   make([]unix.Iovec, MaxBatch),
		rxNames: make([]sockaddr, MaxBatch),
		tx:      make([]mmsghdr, MaxBatch),
		txIov:   make([]unix.Iovec, MaxBatch),
		txNames: make([]sockaddr, MaxBatch),
	}
	for i := range MaxBatch {
		c.rx[i].hdr.Iov = &c.rxIov[i]
		c.rx[i].hdr.SetIovlen(1)
		c.rx[i].hdr.Name = &c.rxNames[i][0]
		c.tx[i].hdr.Iov = &c.txIov[i]
		c.tx[i].hdr.SetIovlen(1)
		c.tx[i].hdr.Name = &c.txNames[i][0]
	}
	c.recvFn, c.sendFn = c.recvmmsg, c.sendmmsg
	return c, nil
}

// ReadBatch reads up to MaxBatch datagrams with one recvmmsg.
func (c *mmsgConn) ReadBatch(msgs []Message) (int, error) {
	c.pace()
	c.want = min(len(msgs), MaxBatch)
	for i := range c.want {
		buf := msgs[i].Buf[:cap(msgs[i].Buf)]
		c.rxIov[i].Base = &buf[0]
		c.rxIov[i].SetLen(len(buf))
		c.rx[i].hdr.Namelen = unix.SizeofSockaddrInet6
		c.rx[i].hdr.Flags = 0
	}
	c.n, c.errno = 0, 0
	if err := c.rc.Read(c.recvFn); err != nil {
		c.read(0, true)
		return 0, err
	}
	if c.errno != 0 {
		c.read(0, true)
		return 0, c.errno
	}
	for i := range c.n {
		msgs[i].Buf = msgs[i].Buf[:c.rx[i].n]
		msgs[i].Addr = c.rxNames[i].addrPort()
	}
	c.read(c.n, c.n < c.want)
	return c.n, nil
}

// recvmmsg is the RawConn read function: false asks the poller to wait.
func (c *mmsgConn) recvmmsg(fd uintptr) bool {
	if c.want == 0 {
		return true
	}
	for {
		n, _, e := rawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rx[0])), uintptr(c.want), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			c.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			c.read(0, true) // the loop is about to park
			return false
		}
		c.errno = e
		return true
	}
}

// WriteBatch sends the datagrams with one sendmmsg per MaxBatch of them
// (more when the kernel refuses one).
func (c *mmsgConn) WriteBatch(msgs []Message) (int, error) {
	sent := 0
	for len(msgs) > 0 {
		k, i := 0, 0
		for ; i < len(msgs) && k < MaxBatch; i++ {
			namelen, ok := c.txNames[k].put(msgs[i].Addr, c.inet6)
			if !ok {
				continue
			}
			c.txIov[k].Base = nil
			if b := msgs[i].Buf; len(b) > 0 {
				c.txIov[k].Base = &b[0]
			}
			c.txIov[k].SetLen(len(msgs[i].Buf))
			c.tx[k].hdr.Namelen = namelen
			k++
		}
		msgs = msgs[i:]
		c.queued, c.sent, c.failed = k, 0, 0
		err := c.rc.Write(c.sendFn)
		sent += c.sent
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// sendmmsg is the RawConn write function. sendmmsg reports an error only
// for the first datagram it tries, so that one is skipped and the rest
// sent again.
func (c *mmsgConn) sendmmsg(fd uintptr) bool {
	for c.sent+c.failed < c.queued {
		at := c.sent + c.failed
		n, _, e := rawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.tx[at])), uintptr(c.queued-at), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			c.sent += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			c.failed++
		}
	}
	return true
}
