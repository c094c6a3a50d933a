package wire

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"
)

func TestZZGen(t *testing.T) {
	var e Encoder
	tk := goldenTicket()
	show := func(name string, b []byte, err error) {
		fmt.Printf("== %s (%d bytes) err=%v\n%s", name, len(b), err, dump(b))
	}
	b, err := e.AppendProbe(nil, &Probe{TxID: goldenTx, Session: goldenSession})
	show("probe min", b, err)
	b, err = e.AppendProbe(nil, &Probe{TxID: goldenTx, Session: goldenSession, Service: "voice", LostServer: lost4, ClientAddress: client6})
	show("probe full", b, err)
	b, err = e.AppendProbe(nil, &Probe{TxID: goldenTx, Session: goldenSession, Service: "voice", PadTo: 96})
	show("probe padded", b, err)
	b, err = e.AppendKeepalive(nil, &Keepalive{TxID: goldenTx, Session: goldenSession, Ticket: tk, PadTo: KeepaliveSize})
	show("keepalive", b, err)
	full := &Redirect{Server: server4, Ticket: tk, Interval: goldenInterval, DeadAfter: goldenDeadAfter, Term: goldenTerm, Backups: []netip.AddrPort{backup4a, backup4b}}
	req := &Request{TxID: goldenTx, Method: stun.MethodBinding, Session: goldenSession, HasSession: true, Fingerprint: true, Size: 256}
	b, err = e.AppendRedirect(nil, req, full, 256)
	show("redirect full", b, err)
	b, err = e.AppendRedirect(nil, req, full, 72)
	show("redirect trimmed 72", b, err)
	full6 := &Redirect{Server: server6, Ticket: tk, Interval: goldenInterval, DeadAfter: goldenDeadAfter, Term: goldenTerm, Backups: []netip.AddrPort{backup6}}
	b, err = e.AppendRedirect(nil, req, full6, 256)
	show("redirect full6", b, err)
	stock := &Request{TxID: goldenTx, Method: stun.MethodBinding, Size: 20}
	b, err = e.AppendRedirect(nil, stock, full, 60)
	show("stock v4 nofp", b, err)
	stockfp := &Request{TxID: goldenTx, Method: stun.MethodBinding, Size: 28, Fingerprint: true}
	b, err = e.AppendRedirect(nil, stockfp, full, 84)
	show("stock v4 fp", b, err)
	b, err = e.AppendRedirect(nil, stockfp, full6, 84)
	show("stock v6 fp", b, err)
	alloc := &Request{TxID: goldenTx, Method: stun.MethodAllocate, Size: 36}
	b, err = e.AppendRedirect(nil, alloc, full, 108)
	show("allocate", b, err)
	ka := &Request{TxID: goldenTx, Method: stun.MethodBinding, HasSession: true, Fingerprint: true, Size: 64}
	b, err = e.AppendKeepaliveAnswer(nil, ka, &KeepaliveAnswer{Mapped: client4}, 64)
	show("ka v4", b, err)
	b, err = e.AppendKeepaliveAnswer(nil, ka, &KeepaliveAnswer{Mapped: client6, Drain: true}, 64)
	show("ka v6 drain", b, err)
	b, err = e.AppendErrorAnswer(nil, ka, stun.CodeUnauthorized, 64)
	show("401", b, err)
	fmt.Printf("ticket %x\n", tk)
}
