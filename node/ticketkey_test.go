package node

import (
	"bytes"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/wire"
)

// TestConfiguredTicketKeyHonoured runs one agent with a ticket_key and
// checks that the farm's key becomes it, so that a ticket a service makes
// itself with that key (wire.NewTicketer) begins a session, while one made
// with another key is refused.
func TestConfiguredTicketKeyHonoured(t *testing.T) {
	key := bytes.Repeat([]byte{0x3c}, 32)
	c := testConfig() // require_ticket = true
	c.TicketKey = hex.EncodeToString(key)
	a := startAgent(t, c)
	waitFor(t, func() bool {
		farm := a.cl.Load().State().TicketKey
		return len(farm) > 0 && bytes.Equal(*a.ep.keys.next.Load(), farm)
	})
	if farm := a.cl.Load().State().TicketKey; !bytes.Equal(farm, key) {
		t.Fatalf("the farm's ticket key is not the configured ticket_key")
	}

	cl := listenUDP(t, "127.0.0.1:0")
	from := cl.LocalAddr().(*net.UDPAddr).AddrPort()
	expiry := uint32(time.Now().Add(time.Hour).Unix())
	for _, tt := range []struct {
		name string
		key  []byte
		ok   bool
	}{
		{"another key", bytes.Repeat([]byte{0x3d}, 32), false},
		{"the configured key", key, true},
	} {
		s := wire.SessionID{0x7c, byte(len(tt.name))}
		ticket := wire.NewTicketer(tt.key).Append(nil, s, from, a.SessionAddr(), expiry)
		r := roundTrip(t, cl, a.SessionAddr(), keepalive(t, s, ticket, wire.KeepaliveSize))
		switch {
		case tt.ok && (!r.Success || r.Mapped != from):
			t.Errorf("%s: answer %+v, want success", tt.name, r)
		case !tt.ok && (r.Success || r.Code != stun.CodeUnauthorized):
			t.Errorf("%s: answer %+v, want 401", tt.name, r)
		}
	}
}
