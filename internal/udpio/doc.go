// Package udpio reads and writes batches of UDP datagrams on one socket,
// for the agent's packet paths (the probe responder and the session
// endpoint), and sets the socket options they need.
//
// A [Conn] reads whatever a socket holds, up to a batch, with each
// datagram's source, and writes a batch of datagrams, each to its own
// destination. [Open] puts one of three back-ends ([Mode]) on a socket:
//
//   - [Portable]: one datagram per call through the net package; it works
//     everywhere (udpio.go).
//   - [Raw] (Linux): one recvfrom or sendto per datagram, a group of them
//     per wake-up of the runtime's poller, as raw system calls (raw_linux.go,
//     rawsys_linux.go).
//   - [MMsg] (Linux): recvmmsg and sendmmsg, up to [MaxBatch] datagrams per
//     call (mmsg_linux.go).
//
// Elsewhere than Linux, Raw and MMsg are Portable (open_other.go). The
// back-ends do not allocate once open, so a serving loop over them need not
// either. The socket options are the receive buffer (readbuf_*.go),
// SO_REUSEPORT siblings of a bound socket (reuseport_*.go) and IP_FREEBIND
// (freebind_*.go).
//
// The model is tailscale's net/batching: the system calls in a small
// package of their own, behind an interface a loop can be written against
// once.
package udpio
