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

// rawGroup is how many probes serveRaw reads before it answers them, at
// most; they share one clock reading. A group is what is already queued,
// read in a few microseconds a probe, so the clock is never more than a
// fraction of a millisecond behind; the decision needs it to the
// millisecond at most (pending-entry expiry, report staleness, ticket
// expiry in seconds).
const rawGroup = 16

// rawIO is serveRaw's state: a group's worth of receive and send slots
// of a batchIO, and what the callback in progress did.
type rawIO struct {
	p *prober
	b *batchIO

	answered int                   // probes answered in this call of burst
	full     bool                  // the call of burst stopped at rawBurst probes
	blocked  bool                  // the answers in send slots pendFrom..pendTo-1 wait for room
	pendFrom int                   // the first answer the socket refused
	pendTo   int                   // one past the group's last answer
	errno    syscall.Errno         // a read failure to report
	readFn   func(fd uintptr) bool // s.burst, bound once so that a Read does not allocate
}

// serveRaw is serve on Linux, and what the responder runs there unless
// Batch is set: like serve, it makes one recvfrom and one sendto per probe,
// but it answers every probe the socket holds inside one RawConn read
// callback, so the runtime's per-call poller bookkeeping is paid once per
// wake-up rather than once per probe, and it takes the queued probes in
// groups (see answer). Answers the socket has no room for wait, as in
// serve, before the next probe is read.
//
// The system calls are raw (see rawSyscall6).
func (p *prober) serveRaw(conn *net.UDPConn, stop <-chan struct{}) {
	b, err := newBatchIO(conn, rawGroup)
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
		case s.blocked: // answers to probes already read go out before a read failure is handled
			if !p.flush(b, s.pendFrom, s.pendTo) {
				return
			}
		case s.errno != 0:
			if p.readFailed(s.errno, stop) {
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

// answer does burst's work and returns its result. It reads a group of
// up to rawGroup probes (one recvfrom each), decides them all, then sends
// their answers (one sendto each), so that the decisions, and the kernel's
// receive and send paths, each run several times in a row with warm
// caches rather than taking turns with each other. In 16 paired
// saturation runs (TestBenchPairs, 2026-11-27) that took the responder
// from 1.08x to 1.03x of the plain echo's CPU per answer; a group's first
// answer leaves after at most rawGroup reads, some tens of microseconds.
func (s *rawIO) answer(fd uintptr) bool {
	p, b := s.p, s.b
	for done := 0; done < rawBurst; {
		n, more := 0, true
		for n < len(b.rx) {
			namelen := uint32(unix.SizeofSockaddrInet6)
			r, _, e := rawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b.rxBufs[n][0])), uintptr(len(b.rxBufs[n])),
				unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&b.rxNames[n][0])), uintptr(unsafe.Pointer(&namelen)))
			if e == unix.EINTR {
				continue
			}
			if e == unix.EAGAIN {
				more = false
				break
			}
			if e != 0 {
				s.errno = e
				break
			}
			b.rx[n].n = uint32(r)
			n++
		}
		now := p.r.cfg.Now()
		k := 0
		for i := range n {
			if p.answerSlot(b, i, k, now) {
				k++
			}
		}
		for i := range k {
			switch b.sendto(fd, i) {
			case 0:
				s.answered++
			case unix.EAGAIN:
				s.blocked, s.pendFrom, s.pendTo = true, i, k
				return true
			default:
				p.drops.add(dropWriteError)
			}
		}
		if s.errno != 0 {
			return true
		}
		if !more {
			return false
		}
		done += n
	}
	s.full = true
	return true
}

// sendto sends the answer queued in slot k with one sendto, retrying on
// EINTR, and returns the errno.
func (b *batchIO) sendto(fd uintptr, k int) syscall.Errno {
	for {
		_, _, e := rawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(b.txIov[k].Base)), uintptr(b.txIov[k].Len),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&b.txNames[k][0])), uintptr(b.tx[k].hdr.Namelen))
		if e != unix.EINTR {
			return e
		}
	}
}
