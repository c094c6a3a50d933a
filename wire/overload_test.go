package wire

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// Golden overload and 420 answers (docs/protocol.md shows the first and
// the last).
const (
	goldenOverloadProbe = `
		0111 0018 2112a442 75736865722d676f6c64656e  # Binding error response, length 24
		0009 0004 0000 0508                          # ERROR-CODE 508, no reason
		c0a9 0004 000009c4                           # USHER-RETRY-AFTER 2500 ms
		8028 0004 94fc19c4                           # FINGERPRINT
	`
	goldenOverloadBinding = `
		0111 0010 2112a442 75736865722d676f6c64656e  # Binding error response, length 16
		0009 0004 0000 0500                          # ERROR-CODE 500: stock STUN's server error
		8028 0004 75554dd3                           # FINGERPRINT
	`
	goldenOverloadAllocate = `
		0113 0008 2112a442 75736865722d676f6c64656e  # Allocate error response, length 8
		0009 0004 0000 0508                          # ERROR-CODE 508 (RFC 8656), no retry hint
	`
	goldenUnknownAttributes = `
		0111 001c 2112a442 75736865722d676f6c64656e  # Binding error response, length 28
		0009 0004 0000 0414                          # ERROR-CODE 420
		000a 0006 0003 7f01 0030 0000                # UNKNOWN-ATTRIBUTES 0x0003 0x7f01 0x0030 + 2 bytes alignment
		8028 0004 c88b3b16                           # FINGERPRINT
	`
)

const goldenRetryAfter = 2500 * time.Millisecond

// goldenUnknownReq is goldenStockFPReq carrying three unknown
// comprehension-required attributes.
func goldenUnknownReq() *Request {
	r := goldenStockFPReq
	r.Unknown = [MaxUnknown]stun.AttrType{0x0003, 0x7f01, 0x0030}
	r.NumUnknown = 3
	return &r
}

func TestOverloadGolden(t *testing.T) {
	tests := []struct {
		name   string
		encode func(e *Encoder) ([]byte, error)
		want   string
		code   stun.ErrorCode
	}{
		{"usher probe", func(e *Encoder) ([]byte, error) {
			return e.AppendOverload(nil, &goldenProbeReq, goldenRetryAfter, ProbeSize)
		}, goldenOverloadProbe, stun.CodeInsufficientCapacity},
		{"stock binding", func(e *Encoder) ([]byte, error) {
			return e.AppendOverload(nil, &goldenStockFPReq, goldenRetryAfter, Limit(&goldenStockFPReq, 3))
		}, goldenOverloadBinding, stun.CodeServerError},
		{"stock allocate", func(e *Encoder) ([]byte, error) {
			return e.AppendOverload(nil, &goldenAllocReq, goldenRetryAfter, Limit(&goldenAllocReq, 3))
		}, goldenOverloadAllocate, stun.CodeInsufficientCapacity},
		{"unknown attributes", func(e *Encoder) ([]byte, error) {
			return e.AppendUnknownAttributes(nil, goldenUnknownReq(), 200)
		}, goldenUnknownAttributes, stun.CodeUnknownAttribute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Encoder
			want := unhex(t, tt.want)
			got, err := tt.encode(&e)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got\n%swant\n%s", dump(got), dump(want))
			}
			// pion/stun's own reading of the golden bytes.
			m := decodeStun(t, want)
			var ec stun.ErrorCodeAttribute
			if err := ec.GetFrom(m); err != nil || ec.Code != tt.code {
				t.Fatalf("pion reads ERROR-CODE %v, %v; want %d", ec.Code, err, tt.code)
			}
			if m.Contains(stun.AttrFingerprint) {
				if err := stun.Fingerprint.Check(m); err != nil {
					t.Fatalf("pion: fingerprint: %v", err)
				}
			}
		})
	}
}

// TestUnknownAttributesPion checks UNKNOWN-ATTRIBUTES against pion/stun's
// decoder.
func TestUnknownAttributesPion(t *testing.T) {
	var ua stun.UnknownAttributes
	if err := ua.GetFrom(decodeStun(t, unhex(t, goldenUnknownAttributes))); err != nil {
		t.Fatal(err)
	}
	want := stun.UnknownAttributes{0x0003, 0x7f01, 0x0030}
	if len(ua) != len(want) {
		t.Fatalf("pion reads %v, want %v", ua, want)
	}
	for i := range want {
		if ua[i] != want[i] {
			t.Fatalf("pion reads %v, want %v", ua, want)
		}
	}
}

// TestOverloadRoundTrip decodes the overload and 420 answers as a client
// does.
func TestOverloadRoundTrip(t *testing.T) {
	tests := []struct {
		name        string
		b           string
		code        stun.ErrorCode
		retry       time.Duration
		unknown     []stun.AttrType
		fingerprint bool
	}{
		{"usher probe", goldenOverloadProbe, stun.CodeInsufficientCapacity, goldenRetryAfter, nil, true},
		{"stock binding", goldenOverloadBinding, stun.CodeServerError, 0, nil, true},
		{"stock allocate", goldenOverloadAllocate, stun.CodeInsufficientCapacity, 0, nil, false},
		{"unknown attributes", goldenUnknownAttributes, stun.CodeUnknownAttribute, 0,
			[]stun.AttrType{0x0003, 0x7f01, 0x0030}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				d Decoder
				r Response
			)
			if err := d.DecodeResponse(unhex(t, tt.b), &r); err != nil {
				t.Fatal(err)
			}
			if r.Success || r.Code != tt.code || r.RetryAfter != tt.retry || r.TxID != goldenTx {
				t.Fatalf("decoded code %d retry %v success %v", r.Code, r.RetryAfter, r.Success)
			}
			if r.NumUnknown != len(tt.unknown) {
				t.Fatalf("decoded %d unknown attributes, want %v", r.NumUnknown, tt.unknown)
			}
			for i, u := range tt.unknown {
				if r.Unknown[i] != u {
					t.Fatalf("unknown[%d] = %#04x, want %#04x", i, uint16(r.Unknown[i]), uint16(u))
				}
			}
		})
	}
}

// TestOverloadSizeRule shrinks the limit and checks what is left out, in
// order: FINGERPRINT, then USHER-RETRY-AFTER, then everything.
func TestOverloadSizeRule(t *testing.T) {
	tests := []struct {
		limit      int
		size       int
		retryAfter bool
		err        error
	}{
		{ProbeSize, 44, true, nil},
		{44, 44, true, nil},
		{43, 36, true, nil},
		{36, 36, true, nil},
		{35, 28, false, nil},
		{28, 28, false, nil},
		{27, 0, false, ErrTooLarge},
	}
	for _, tt := range tests {
		var (
			e Encoder
			d Decoder
			r Response
		)
		out, err := e.AppendOverload(nil, &goldenProbeReq, goldenRetryAfter, tt.limit)
		if !errors.Is(err, tt.err) || len(out) != tt.size {
			t.Fatalf("limit %d: %d bytes, %v; want %d, %v", tt.limit, len(out), err, tt.size, tt.err)
		}
		if err != nil {
			continue
		}
		if err := d.DecodeResponse(out, &r); err != nil {
			t.Fatalf("limit %d: %v", tt.limit, err)
		}
		if (r.RetryAfter != 0) != tt.retryAfter {
			t.Fatalf("limit %d: retry-after %v", tt.limit, r.RetryAfter)
		}
	}
}

// TestUnknownAttributesSizeRule cuts the list to fit the limit and gives
// up when not one attribute fits.
func TestUnknownAttributesSizeRule(t *testing.T) {
	tests := []struct {
		limit, size, listed int
	}{
		{200, 48, 3},
		{40, 40, 3},
		{39, 36, 2}, // 3 types take 8 bytes padded; 2 take 4
		{36, 36, 2},
		{35, 0, 0},
	}
	for _, tt := range tests {
		var (
			e Encoder
			d Decoder
			r Response
		)
		out, err := e.AppendUnknownAttributes(nil, goldenUnknownReq(), tt.limit)
		if len(out) != tt.size || (tt.size == 0) != errors.Is(err, ErrTooLarge) {
			t.Fatalf("limit %d: %d bytes, %v; want %d", tt.limit, len(out), err, tt.size)
		}
		if tt.size == 0 {
			continue
		}
		if err := d.DecodeResponse(out, &r); err != nil || r.NumUnknown != tt.listed {
			t.Fatalf("limit %d: %d listed, %v; want %d", tt.limit, r.NumUnknown, err, tt.listed)
		}
	}
	var e Encoder
	if _, err := e.AppendUnknownAttributes(nil, &goldenStockFPReq, 200); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a request with no unknown attributes: %v", err)
	}
}

// TestDecodeRequestUnknown checks which attributes make a request fail
// with ErrUnknownAttribute, and that they are listed.
func TestDecodeRequestUnknown(t *testing.T) {
	allocate := stun.NewType(stun.MethodAllocate, stun.ClassRequest)
	raw := func(t stun.AttrType) rawAttr { return rawAttr{t, []byte{0, 0, 0, 0}} }
	tests := []struct {
		name string
		b    []byte
		err  error
		want []stun.AttrType
	}{
		{"probe", build(stun.BindingRequest, true, session), nil, nil},
		{"optional unknown ignored", build(stun.BindingRequest, true, session, raw(0xC0FF)), nil, nil},
		{"change-request", build(stun.BindingRequest, false, raw(0x0003)), ErrUnknownAttribute,
			[]stun.AttrType{0x0003}},
		{"probe with two", build(stun.BindingRequest, true, session, raw(0x7f01), raw(0x0030)),
			ErrUnknownAttribute, []stun.AttrType{0x7f01, 0x0030}},
		{"repeated once", build(stun.BindingRequest, false, raw(0x7f01), raw(0x7f01)), ErrUnknownAttribute,
			[]stun.AttrType{0x7f01}},
		{"capped", build(stun.BindingRequest, false, raw(1), raw(2), raw(3), raw(4), raw(5)), ErrUnknownAttribute,
			[]stun.AttrType{0x0001, 0x0002, 0x0003, 0x0004}}, // MAPPED-ADDRESS (0x0001) means nothing in a request
		{"turn allocate", build(allocate, true, raw(stun.AttrRequestedTransport), raw(stun.AttrLifetime),
			raw(stun.AttrDontFragment), raw(stun.AttrRequestedAddressFamily), raw(attrAccessToken)), nil, nil},
		{"ice check", build(stun.BindingRequest, true, raw(stun.AttrPriority), rawAttr{stun.AttrUseCandidate, nil}), nil, nil},
		{"padding", build(stun.BindingRequest, false, session, rawAttr{stun.AttrPadding, make([]byte, 40)}), nil, nil},
		{"after integrity ignored", build(stun.BindingRequest, false, rawAttr{stun.AttrMessageIntegrity, make([]byte, 20)},
			raw(0x7f01)), nil, nil},
		{"malformed usher attribute first", build(stun.BindingRequest, false, raw(0x7f01), rawAttr{AttrSession, []byte{1}}),
			ErrAttribute, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				d Decoder
				r Request
			)
			err := d.DecodeRequest(tt.b, &r)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if tt.err != nil && !errors.Is(tt.err, ErrUnknownAttribute) {
				return
			}
			if r.NumUnknown != len(tt.want) {
				t.Fatalf("%d unknown (%v), want %v", r.NumUnknown, r.Unknown, tt.want)
			}
			for i, u := range tt.want {
				if r.Unknown[i] != u {
					t.Fatalf("unknown[%d] = %#04x, want %#04x", i, uint16(r.Unknown[i]), uint16(u))
				}
			}
		})
	}
}

// TestOverloadDoesNotAllocate: the overload answer and the 420 are the
// probe path under a flood, so they must cost no more than a redirect.
func TestOverloadDoesNotAllocate(t *testing.T) {
	var (
		e   Encoder
		d   Decoder
		r   Request
		dst = make([]byte, 0, 512)
	)
	pkt := build(stun.BindingRequest, true, session, rawAttr{0x7f01, []byte{0, 0, 0, 0}}, rawAttr{stun.AttrPadding, make([]byte, 40)})
	unknown := goldenUnknownReq()
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = e.AppendOverload(dst[:0], &goldenProbeReq, goldenRetryAfter, ProbeSize)
		_, _ = e.AppendUnknownAttributes(dst[:0], unknown, 200)
		_ = d.DecodeRequest(pkt, &r)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}
