package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pion/stun/v3"
)

// goldenAllocateDomain is goldenAllocate with the alternate's domain name,
// as the balancer answers an Allocate that came over TLS.
const goldenAllocateDomain = `
	0113 002c 2112a442 75736865722d676f6c64656e  # Allocate error response, length 44
	0009 0004 0000 0300                          # ERROR-CODE 300
	8023 0008 0001 0d97 c000020a                 # ALTERNATE-SERVER 192.0.2.10:3479
	8003 0011 7475726e312e6578616d706c652e636f6d 000000
	                                             # ALTERNATE-DOMAIN "turn1.example.com" + 3 bytes alignment
`

const goldenDomain = "turn1.example.com"

// TestAlternateDomainGolden checks the encoding of ALTERNATE-DOMAIN
// against hand-written bytes and pion/stun's reading of them.
func TestAlternateDomainGolden(t *testing.T) {
	want := unhex(t, goldenAllocateDomain)
	var e Encoder
	r := goldenRedirect4()
	r.Domain = goldenDomain
	got, err := e.AppendRedirect(nil, &goldenAllocReq, r, Limit(&goldenAllocReq, 3))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got\n%swant\n%s", dump(got), dump(want))
	}
	m := decodeStun(t, want)
	v, err := m.Get(stun.AttrAlternateDomain)
	if err != nil || string(v) != goldenDomain {
		t.Fatalf("pion reads ALTERNATE-DOMAIN %q, %v", v, err)
	}
}

// TestAlternateDomainRoundTrip decodes what AppendRedirect wrote with a
// domain, for stock requests and Usher probes.
func TestAlternateDomainRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name   string
		req    Request
		domain string
	}{
		{"allocate", goldenAllocReq, goldenDomain},
		{"allocate 4-byte aligned", goldenAllocReq, "abcd.example"},
		{"probe", goldenProbeReq, "x.example.net"},
		{"longest", Request{TxID: goldenTx, Method: stun.MethodAllocate, Size: 200}, strings.Repeat("d", MaxDomainLen)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var (
				e    Encoder
				d    Decoder
				resp Response
			)
			r := Redirect{Server: server6, Domain: tt.domain, Term: 9}
			b, err := e.AppendRedirect(nil, &tt.req, &r, 1500)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.DecodeResponse(b, &resp); err != nil {
				t.Fatalf("decode: %v\n%s", err, dump(b))
			}
			if resp.Server != server6 || string(resp.Domain) != tt.domain || resp.Code != stun.CodeTryAlternate {
				t.Fatalf("decoded server %v domain %q code %v", resp.Server, resp.Domain, resp.Code)
			}
		})
	}
	var (
		e    Encoder
		d    Decoder
		resp Response
	)
	b, _ := e.AppendRedirect(nil, &goldenAllocReq, &Redirect{Server: server4}, 1500)
	if err := d.DecodeResponse(b, &resp); err != nil || resp.Domain != nil {
		t.Fatalf("no domain: decoded %q, %v", resp.Domain, err)
	}
}

// TestAlternateDomainSizeRule: a domain is part of the minimal redirect,
// so a redirect it does not fit is refused, never sent without it or with
// a truncated name; a domain longer than MaxDomainLen is refused anyway.
func TestAlternateDomainSizeRule(t *testing.T) {
	var e Encoder
	r := Redirect{Server: server4, Domain: goldenDomain}
	exact := HeaderSize + sizeErrorCode + addrSize(server4) + 4 + padded(len(goldenDomain))
	if _, err := e.AppendRedirect(nil, &goldenAllocReq, &r, exact); err != nil {
		t.Fatalf("at the exact size: %v", err)
	}
	dst := []byte("prefix")
	got, err := e.AppendRedirect(dst, &goldenAllocReq, &r, exact-1)
	if !errors.Is(err, ErrTooLarge) || !bytes.Equal(got, dst) {
		t.Fatalf("one byte short: %x, %v; want dst and ErrTooLarge", got, err)
	}
	long := Redirect{Server: server4, Domain: strings.Repeat("d", MaxDomainLen+1)}
	if _, err := e.AppendRedirect(nil, &goldenAllocReq, &long, 1500); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("domain of %d bytes: %v, want ErrTooLarge", len(long.Domain), err)
	}
}
