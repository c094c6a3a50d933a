package node

import (
	"net"
	"net/netip"

	"github.com/usherlb/usher/internal/udpio"
)

// serveThrough makes r read and write every socket it serves with the
// udpio back-end m, whatever its configuration asks for.
func (r *Responder) serveThrough(m udpio.Mode) {
	r.open = func(conn *net.UDPConn) udpio.Conn {
		c, err := udpio.Open(conn, m)
		if err != nil {
			panic(err)
		}
		return c
	}
}

// serveConn makes r serve every socket through c, a test's own back-end.
func (r *Responder) serveConn(c udpio.Conn) {
	r.open = func(*net.UDPConn) udpio.Conn { return c }
}

// addr returns the address t listens on, or the zero value.
func (t *tcpServer) addr() netip.AddrPort {
	t.connMu.Lock()
	defer t.connMu.Unlock()
	if t.ln == nil {
		return netip.AddrPort{}
	}
	return unmapAddrPort(t.ln.Addr().(*net.TCPAddr).AddrPort())
}
