// Package wire is Usher's protocol on the wire: the probe a client sends to the
// balancer address, the redirect it gets back, and the keepalives it exchanges
// with its assigned server.
//
// Every message is a STUN message (RFC 8489), so stock STUN and TURN clients
// can talk to Usher: a TURN Allocate sent to the balancer address gets a 300
// Try Alternate naming the assigned server, and a stock Binding request either
// that or, as from any STUN server, a Binding success naming its source
// (AppendKeepaliveAnswer). Usher's own
// fields travel in comprehension-optional attributes in the 0xC0A0-0xC0A8
// range (see the Attr constants and docs/protocol.md). Messages are parsed,
// and the client's requests built, with github.com/pion/stun/v3; the answers,
// which the balancer and the servers send once per probe and per keepalive,
// are written by hand for speed (see put.go) and tested byte for byte against
// the same answers built with pion/stun.
//
// The package is pure: it imports nothing else of Usher's, touches no socket
// and never reads a clock. Times it needs (a ticket's expiry, the current
// time to check one) are passed in by the caller. Decoder and Encoder reuse
// their buffers and write into the caller's, so the probe path decodes and
// answers without allocating; neither is safe for concurrent use, so each
// goroutine owns its own.
//
// The size rule (invariant 2 of the design) lives here too: Limit says how
// large an answer to a given request may be, and the Append functions drop
// optional attributes until the answer fits, or fail with ErrTooLarge.
package wire
