//go:build !linux

package node

import "net"

// serveBatch answers one probe at a time where recvmmsg and sendmmsg are
// missing: Batch is a Linux optimisation.
func (p *prober) serveBatch(conn *net.UDPConn, stop <-chan struct{}) {
	p.serve(conn, stop)
}

// serveRaw is serve outside Linux, where the raw loop is not written:
// the net package's reads and writes.
func (p *prober) serveRaw(conn *net.UDPConn, stop <-chan struct{}) {
	p.serve(conn, stop)
}
