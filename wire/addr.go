package wire

import (
	"net"
	"net/netip"

	"github.com/pion/stun/v3"
)

// addXORAddress appends attribute t holding ap in XOR-MAPPED-ADDRESS encoding.
func addXORAddress(m *stun.Message, t stun.AttrType, ap netip.AddrPort) error {
	var buf [net.IPv6len]byte
	a := stun.XORMappedAddress{IP: ipOf(&buf, ap.Addr()), Port: int(ap.Port())}
	return a.AddToAs(m, t)
}

// xorAddress decodes one XOR-MAPPED-ADDRESS encoded value, as found in the
// raw attribute value v of a message with transaction ID tx.
func xorAddress(v []byte, tx *[stun.TransactionIDSize]byte) (netip.AddrPort, bool) {
	if len(v) < 4 {
		return netip.AddrPort{}, false
	}
	port := uint16(v[2])<<8 | uint16(v[3])
	port ^= 0x2112
	switch {
	case v[1] == 0x01 && len(v) == 8:
		var ip [4]byte
		for i := range ip {
			ip[i] = v[4+i] ^ magic[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom4(ip), port), true
	case v[1] == 0x02 && len(v) == 20:
		var ip [16]byte
		for i := range ip {
			k := magic[i%4]
			if i >= 4 {
				k = tx[i-4]
			}
			ip[i] = v[4+i] ^ k
		}
		return netip.AddrPortFrom(netip.AddrFrom16(ip), port), true
	}
	return netip.AddrPort{}, false
}

// magic is the STUN magic cookie, the XOR key of an address's first bytes.
var magic = [4]byte{0x21, 0x12, 0xa4, 0x42}

// mappedAddress decodes a MAPPED-ADDRESS encoded value.
func mappedAddress(v []byte) (netip.AddrPort, bool) {
	if len(v) < 4 {
		return netip.AddrPort{}, false
	}
	port := uint16(v[2])<<8 | uint16(v[3])
	switch {
	case v[1] == 0x01 && len(v) == 8:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(v[4:8])), port), true
	case v[1] == 0x02 && len(v) == 20:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(v[4:20])), port), true
	}
	return netip.AddrPort{}, false
}

// ipOf returns a as a net.IP backed by buf: 4 bytes for IPv4 (and IPv4-mapped
// IPv6), 16 for IPv6.
func ipOf(buf *[net.IPv6len]byte, a netip.Addr) net.IP {
	a = a.Unmap()
	if a.Is4() {
		v4 := a.As4()
		copy(buf[:], v4[:])
		return buf[:4]
	}
	*buf = a.As16()
	return buf[:]
}

// addrSize is the encoded size of an address attribute, header included.
func addrSize(ap netip.AddrPort) int {
	if ap.Addr().Unmap().Is4() {
		return 4 + 8
	}
	return 4 + 20
}
