//go:build linux

package node

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize bounds how many datagrams one recvmmsg takes and one sendmmsg
// sends.
const batchSize = 64

// mmsghdr is struct mmsghdr: a msghdr and the byte count the kernel fills
// in. Go pads it to the C layout on every word size.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// sockaddr holds a struct sockaddr_in or sockaddr_in6.
type sockaddr [unix.SizeofSockaddrInet6]byte

// batchIO reads and writes batches of datagrams on one UDP socket with
// recvmmsg and sendmmsg, through the runtime's poller: a read waits until at
// least one datagram is queued and returns whatever is queued then, never
// waiting for more. Everything is allocated once, so neither direction
// allocates. It is used by one goroutine.
type batchIO struct {
	rc    syscall.RawConn
	inet6 bool // the socket is AF_INET6: destinations are written as IPv6

	rx      []mmsghdr
	rxIov   []unix.Iovec
	rxNames []sockaddr
	rxBufs  [][]byte

	tx      []mmsghdr
	txIov   []unix.Iovec
	txNames []sockaddr
	txBufs  [][]byte // each with capacity maxDatagram; the answers go here

	// The state of the call in progress, and the bound closures RawConn
	// calls (bound once, so a call does not allocate).
	n, sent, queued, failed int
	errno                   syscall.Errno
	recvFn, sendFn          func(fd uintptr) bool
}

// newBatchIO prepares batch I/O on conn, for batches of up to size
// datagrams.
func newBatchIO(conn *net.UDPConn, size int) (*batchIO, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var family int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		family, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	b := &batchIO{
		rc:      rc,
		inet6:   family == unix.AF_INET6,
		rx:      make([]mmsghdr, size),
		rxIov:   make([]unix.Iovec, size),
		rxNames: make([]sockaddr, size),
		rxBufs:  make([][]byte, size),
		tx:      make([]mmsghdr, size),
		txIov:   make([]unix.Iovec, size),
		txNames: make([]sockaddr, size),
		txBufs:  make([][]byte, size),
	}
	rxMem := make([]byte, size*maxDatagram)
	txMem := make([]byte, size*maxDatagram)
	for i := range size {
		b.rxBufs[i] = rxMem[i*maxDatagram : (i+1)*maxDatagram : (i+1)*maxDatagram]
		b.txBufs[i] = txMem[i*maxDatagram : i*maxDatagram : (i+1)*maxDatagram]
		b.rxIov[i].Base = &b.rxBufs[i][0]
		b.rx[i].hdr.Iov = &b.rxIov[i]
		b.rx[i].hdr.SetIovlen(1)
		b.rx[i].hdr.Name = &b.rxNames[i][0]
		b.tx[i].hdr.Iov = &b.txIov[i]
		b.tx[i].hdr.SetIovlen(1)
		b.tx[i].hdr.Name = &b.txNames[i][0]
	}
	b.recvFn, b.sendFn = b.recvmmsg, b.sendmmsg
	return b, nil
}

// recv waits for datagrams and reads up to a batch of them; datagram i is
// then b.datagram(i) from b.source(i).
func (b *batchIO) recv() (int, error) {
	b.n, b.errno = 0, 0
	if err := b.rc.Read(b.recvFn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, b.errno
	}
	return b.n, nil
}

// recvmmsg is the RawConn read function: false asks the poller to wait.
func (b *batchIO) recvmmsg(fd uintptr) bool {
	for i := range b.rx {
		b.rx[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.rx[i].hdr.Flags = 0
		b.rxIov[i].SetLen(maxDatagram)
	}
	for {
		n, _, e := rawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rx[0])), uintptr(len(b.rx)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			b.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		b.errno = e
		return true
	}
}

// datagram returns the payload of datagram i of the last recv.
func (b *batchIO) datagram(i int) []byte { return b.rxBufs[i][:b.rx[i].n] }

// source returns the sender of datagram i of the last recv, IPv4-mapped
// addresses unmapped; the zero value if the kernel gave none we know.
func (b *batchIO) source(i int) netip.AddrPort {
	sa := &b.rxNames[i]
	port := uint16(sa[2])<<8 | uint16(sa[3])
	switch *(*uint16)(unsafe.Pointer(&sa[0])) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])).Unmap(), port)
	}
	return netip.AddrPort{}
}

// answerBuf returns the empty buffer for answer k of the next send.
func (b *batchIO) answerBuf(k int) []byte { return b.txBufs[k][:0] }

// queue sets answer k of the next send: the bytes in out (which must be
// b.answerBuf(k) grown, or fit in it) to to. It reports false for an empty
// or oversized answer, or a destination the socket cannot reach (an IPv6
// one on an IPv4 socket).
func (b *batchIO) queue(k int, out []byte, to netip.AddrPort) bool {
	if len(out) == 0 || len(out) > maxDatagram {
		return false
	}
	if &out[0] != &b.txBufs[k][:1][0] {
		copy(b.txBufs[k][:len(out)], out)
	}
	b.txIov[k].Base = &b.txBufs[k][:1][0]
	b.txIov[k].SetLen(len(out))
	sa := &b.txNames[k]
	*sa = sockaddr{}
	port := to.Port()
	ip := to.Addr()
	if b.inet6 {
		*(*uint16)(unsafe.Pointer(&sa[0])) = unix.AF_INET6
		sa[2], sa[3] = byte(port>>8), byte(port)
		a16 := ip.As16()
		copy(sa[8:24], a16[:])
		b.tx[k].hdr.Namelen = unix.SizeofSockaddrInet6
		return true
	}
	if !ip.Unmap().Is4() {
		return false
	}
	*(*uint16)(unsafe.Pointer(&sa[0])) = unix.AF_INET
	sa[2], sa[3] = byte(port>>8), byte(port)
	a4 := ip.Unmap().As4()
	copy(sa[4:8], a4[:])
	b.tx[k].hdr.Namelen = unix.SizeofSockaddrInet4
	return true
}

// sendRange sends the queued answers from..to-1, waiting for room in the
// socket if need be. It returns how many were sent and how many the kernel
// refused.
func (b *batchIO) sendRange(from, to int) (sent, failed int, err error) {
	if to <= from {
		return 0, 0, nil
	}
	b.queued, b.sent, b.failed, b.errno = to, from, 0, 0
	err = b.rc.Write(b.sendFn)
	return b.sent - from, b.failed, err
}

// sendmmsg is the RawConn write function. sendmmsg reports an error only
// for the first datagram it tries, so that one is skipped and the rest
// sent again.
func (b *batchIO) sendmmsg(fd uintptr) bool {
	for b.sent+b.failed < b.queued {
		at := b.sent + b.failed
		n, _, e := rawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.tx[at])), uintptr(b.queued-at), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			b.sent += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			b.failed++
		}
	}
	return true
}

// serveBatch is serve with recvmmsg and sendmmsg: it answers each batch of
// probes the socket holds with one batch of answers, until stop is closed
// or conn is. After a full batch it yields (see rawSyscall6).
func (p *prober) serveBatch(conn *net.UDPConn, stop <-chan struct{}) {
	b, err := newBatchIO(conn, batchSize)
	if err != nil {
		p.r.log.Warn("answering one probe at a time", "error", err)
		p.serve(conn, stop)
		return
	}
	for {
		n, err := b.recv()
		if err != nil {
			if p.readFailed(err, stop) {
				return
			}
			continue
		}
		k, flushed := 0, 0
		now := p.r.cfg.Now()
		for i := range n {
			if !p.answerSlot(b, i, k, now) {
				continue
			}
			k++
			if (k-flushed)%flushEvery == 0 && i < n-1 && p.r.cfg.Now().Sub(now) >= flushAfter {
				if !p.flush(b, flushed, k) {
					return
				}
				flushed = k
			}
		}
		if !p.flush(b, flushed, k) {
			return
		}
		if n == len(b.rx) {
			p.yield()
		}
	}
}

// answerSlot decides the answer to datagram i of b's last read, read at
// now, and queues it in send slot k. It reports false, having counted the
// drop, when there is none.
func (p *prober) answerSlot(b *batchIO, i, k int, now time.Time) bool {
	from := b.source(i)
	if !from.IsValid() {
		p.drops.add(dropNotSTUN)
		return false
	}
	ans, to, why := p.respond(b.answerBuf(k), b.datagram(i), from, now)
	if why == dropNone && !b.queue(k, ans, to) {
		why = dropWriteError
	}
	if why != dropNone {
		p.drops.add(why)
		return false
	}
	return true
}

// A batch whose decisions take long sends what it has answered before it
// decides the rest: every flushEvery answers it looks at the clock, and
// once flushAfter has passed since the batch was read, the answers so far
// go out in one sendmmsg, so that the first clients do not wait for the
// last. With a few servers in the view a whole batch of 64 is decided in
// about 30 µs and leaves in one sendmmsg, as the echo's does (an early
// flush is a system call, and on loopback a wake-up of the receiver, for a
// handful of answers); a large view, whose picks cost microseconds, is
// flushed as it goes.
const (
	flushEvery = 16
	flushAfter = 50 * time.Microsecond
)

// flush sends answers from..to-1 and counts them; it reports false when
// the socket is closed.
func (p *prober) flush(b *batchIO, from, to int) bool {
	sent, failed, err := b.sendRange(from, to)
	p.answered.Add(uint64(sent))
	for range failed + (to - from - sent - failed) {
		p.drops.add(dropWriteError)
	}
	return err == nil || !errors.Is(err, net.ErrClosed)
}
