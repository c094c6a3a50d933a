package node

import (
	"sync/atomic"

	"github.com/usherlb/usher/wire"
)

// ticketKeys holds the farm key a packet path issues or checks tickets, and
// seals or opens handoffs, with. Any
// goroutine may set a new key (the agent does when Raft agrees on the farm's
// key); the one goroutine that owns the packet path picks it up at its next
// packet, building a new Ticketer only when the key changed.
type ticketKeys struct {
	next atomic.Pointer[[]byte]

	// Owned by the packet path's goroutine.
	cur *[]byte
	tk  *wire.Ticketer
	sl  *wire.Sealer
}

func newTicketKeys(key []byte) *ticketKeys {
	t := &ticketKeys{}
	t.set(key)
	return t
}

// set replaces the key. It is safe from any goroutine.
func (t *ticketKeys) set(key []byte) {
	k := append([]byte(nil), key...)
	t.next.Store(&k)
}

// ticketer returns a Ticketer for the newest key. Only the owning goroutine
// may call it.
func (t *ticketKeys) ticketer() *wire.Ticketer {
	t.refresh()
	return t.tk
}

// sealer returns a handoff Sealer for the newest key. Only the owning
// goroutine may call it.
func (t *ticketKeys) sealer() *wire.Sealer {
	t.refresh()
	return t.sl
}

func (t *ticketKeys) refresh() {
	if p := t.next.Load(); p != t.cur {
		t.cur, t.tk, t.sl = p, wire.NewTicketer(*p), wire.NewSealer(wire.HandoffKey(*p))
	}
}
