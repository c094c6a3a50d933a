//go:build linux

package node

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawBurst bounds how many probes serveRaw answers in one RawConn callback,
// so that the serving goroutine regularly leaves it and a deadline set by
// Stop is seen even while probes keep coming.
const rawBurst = 64

// rawClockEvery is how many probes of a burst share one clock reading. A
// burst reads what is already queued, a few microseconds a probe, so the
// clock is never more than a fraction of a millisecond behind; the
// decision needs it to the millisecond at most (pending-entry expiry,
// report staleness, ticket expiry in seconds).
const rawClockEvery = 16

// rawIO is serveRaw's state: one receive and one send slot of a batchIO,
// and what the callback in progress did.
type rawIO struct {
	p *prober
	b *batchIO

	answered int                   // probes answered in this call of burst
	full     bool                  // the call of burst stopped at rawBurst probes
	blocked  bool                  // the answer in the send slot waits for room
	errno    syscall.Errno         // a read failure to report
	readFn   func(fd uintptr) bool // s.burst, bound once so that a Read does not allocate
}

// serveRaw is serve on Linux, and what the responder runs there unless
// Batch is set: like serve, it makes one recvfrom and one sendto per probe,
// but it answers every probe the socket holds inside one RawConn read
// callback, so the runtime's per-call poller bookkeeping and the clock
// reading are paid once per wake-up (the clock again every rawClockEvery
// probes) rather than once per probe. An answer the socket has no room
// for waits, as in serve, before the next probe is read.
//
// The system calls are raw (see rawSyscall6).
func (p *prober) serveRaw(conn *net.UDPConn, stop <-chan struct{}) {
	b, err := newBatchIO(conn, 1)
	if err != nil {
		p.r.log.Warn("answering through the net package", "error", err)
		p.serve(conn, stop)
		return
	}
	s := &rawIO{p: p, b: b}
	s.readFn = s.burst
	for {
		s.full, s.blocked, s.errno = false, false, 0
		err := b.rc.Read(s.readFn)
		switch {
		case err != nil:
			if p.readFailed(err, stop) {
				return
			}
		case s.errno != 0:
			if p.readFailed(s.errno, stop) {
				return
			}
		case s.blocked:
			if !p.flush(b, 0, 1) {
				return
			}
		case s.full:
			p.yield()
		}
	}
}

// burst is the RawConn read callback: it answers queued probes until the
// socket is empty (false: the poller waits for the next), rawBurst are
// answered, an answer must wait for room, or a read fails (true: back to
// serveRaw). The probes it answered are counted when it returns, since
// with false the callback may not be left for a long time.
func (s *rawIO) burst(fd uintptr) bool {
	more := s.answer(fd)
	s.p.answered.Add(uint64(s.answered))
	s.answered = 0
	return more
}

// answer does burst's work and returns its result.
func (s *rawIO) answer(fd uintptr) bool {
	p, b := s.p, s.b
	now := p.r.cfg.Now()
	for i := 0; i < rawBurst; i++ {
		if i > 0 && i%rawClockEvery == 0 {
			now = p.r.cfg.Now()
		}
		namelen := uint32(unix.SizeofSockaddrInet6)
		n, _, e := rawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b.rxBufs[0][0])), uintptr(len(b.rxBufs[0])),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&b.rxNames[0][0])), uintptr(unsafe.Pointer(&namelen)))
		switch e {
		case 0:
		case unix.EINTR:
			i--
			continue
		case unix.EAGAIN:
			return false
		default:
			s.errno = e
			return true
		}
		from := b.source(0)
		if !from.IsValid() {
			p.drops.add(dropNotSTUN)
			continue
		}
		ans, to, why := p.respond(b.answerBuf(0), b.rxBufs[0][:n], from, now)
		if why == dropNone && !b.queue(0, ans, to) {
			why = dropWriteError
		}
		if why != dropNone {
			p.drops.add(why)
			continue
		}
		switch b.sendto(fd) {
		case 0:
			s.answered++
		case unix.EAGAIN:
			s.blocked = true
			return true
		default:
			p.drops.add(dropWriteError)
		}
	}
	s.full = true
	return true
}

// sendto sends the answer queued in slot 0 with one sendto, retrying on
// EINTR, and returns the errno.
func (b *batchIO) sendto(fd uintptr) syscall.Errno {
	for {
		_, _, e := rawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(b.txIov[0].Base)), uintptr(b.txIov[0].Len),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&b.txNames[0][0])), uintptr(b.tx[0].hdr.Namelen))
		if e != unix.EINTR {
			return e
		}
	}
}
