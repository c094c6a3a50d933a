package node

import (
	"sync/atomic"

	"github.com/usherlb/usher/wire"
)

// ticketKeys holds the key a packet path issues or checks tickets with. Any
// goroutine may set a new key (the agent does when Raft agrees on the farm's
// key); the one goroutine that owns the packet path picks it up at its next
// packet, building a new Ticketer only when the key changed.
type ticketKeys struct {
	next atomic.Pointer[[]byte]

	// Owned by the packet path's goroutine.
	cur *[]byte
	tk  *wire.Ticketer
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
	if p := t.next.Load(); p != t.cur {
		t.cur, t.tk = p, wire.NewTicketer(*p)
	}
	return t.tk
}
