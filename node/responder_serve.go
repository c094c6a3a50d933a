package node

import (
	"errors"
	"net"
	"time"

	"github.com/usherlb/usher/internal/udpio"
)

// openConn is the Responder's default open: the udpio back-end its
// configuration asks for (MMsg with Batch, else Raw; both are Portable
// outside Linux), or the Portable one where that cannot be had.
func (r *Responder) openConn(conn *net.UDPConn) udpio.Conn {
	mode := udpio.Raw
	if r.cfg.Batch {
		mode = udpio.MMsg
	}
	c, err := udpio.Open(conn, mode)
	if err != nil {
		r.log.Warn("answering through the net package", "mode", mode, "error", err)
		c, _ = udpio.Open(conn, udpio.Portable)
	}
	return c
}

// serve is the goroutine that answers probes on c until stop is closed or
// the socket is. Whatever the back-end, it reads what the socket holds (up
// to a batch), decides every datagram with respond, which is the whole
// per-probe decision, and sends the answers in one batch: early, in part,
// when deciding takes long (see flushAfter). in and out are the prober's,
// so a steady loop allocates nothing.
func (p *prober) serve(c udpio.Conn, stop <-chan struct{}) {
	if p.in == nil {
		p.in, p.out = udpio.NewMessages(udpio.MaxBatch), udpio.NewMessages(udpio.MaxBatch)
	}
	for {
		n, err := c.ReadBatch(p.in)
		if err != nil {
			if p.readFailed(err, stop) {
				return
			}
			continue
		}
		if !p.answerBatch(c, p.in[:n]) {
			return
		}
	}
}

// A batch whose decisions take long sends what it has answered before it
// decides the rest: every flushEvery answers it looks at the clock, and
// once flushAfter has passed since the batch was read, the answers so far
// go out in one write, so that the first clients do not wait for the
// last. With a few servers in the view a whole batch of 64 is decided in
// about 30 µs and leaves in one sendmmsg, as the echo's does (an early
// flush is a system call, and on loopback a wake-up of the receiver, for a
// handful of answers); a large view, whose picks cost microseconds, is
// flushed as it goes.
const (
	flushEvery = 16
	flushAfter = 50 * time.Microsecond
)

// answerBatch decides the datagrams in, read together, and sends their
// answers. One clock reading serves the whole batch (see prober.clock). It
// reports false when the socket is closed.
func (p *prober) answerBatch(c udpio.Conn, in []udpio.Message) bool {
	now := p.r.cfg.Now()
	k, flushed := 0, 0
	for i := range in {
		if !p.answerOne(&in[i], &p.out[k], now) {
			continue
		}
		k++
		if (k-flushed)%flushEvery == 0 && i < len(in)-1 && p.r.cfg.Now().Sub(now) >= flushAfter {
			if !p.flush(c, p.out[flushed:k]) {
				return false
			}
			flushed = k
		}
	}
	return p.flush(c, p.out[flushed:k])
}

// answerOne decides the answer to the datagram in, read at now, into out.
// It reports false, having counted the drop, when there is none.
func (p *prober) answerOne(in, out *udpio.Message, now time.Time) bool {
	if !in.Addr.IsValid() {
		p.drops.add(dropNotSTUN)
		return false
	}
	ans, to, why := p.respond(out.Buf[:0], in.Buf, in.Addr, now)
	if why != dropNone {
		p.drops.add(why)
		return false
	}
	out.Buf, out.Addr = ans, to
	return true
}

// flush sends the answers in out and counts them by kind (see countSent),
// each one the socket did not send as a write_error; it reports false when
// the socket is closed.
func (p *prober) flush(c udpio.Conn, out []udpio.Message) bool {
	if len(out) == 0 {
		return true
	}
	sent, err := c.WriteBatch(out)
	p.countSent(out, sent)
	for range len(out) - sent {
		p.drops.add(dropWriteError)
	}
	return err == nil || !errors.Is(err, net.ErrClosed)
}

// readFailed handles a failed read of the serving loop and reports whether
// the loop should end: when stop is closed or the socket is.
func (p *prober) readFailed(err error, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
	}
	if errors.Is(err, net.ErrClosed) {
		return true
	}
	p.r.log.Debug("read failed", "error", err)
	return false
}
