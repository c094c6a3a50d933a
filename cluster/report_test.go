package cluster

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestReportRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Report
	}{
		{"zero", Report{}},
		{"ipv4", Report{
			Service: netip.MustParseAddrPort("10.0.0.12:3479"), RaftAddr: "10.0.0.12:8300",
			Sessions: 12, Capacity: 1000, Accepted: 1 << 40, Voter: true, Seq: 99,
		}},
		{"ipv6 draining", Report{
			Service: netip.MustParseAddrPort("[2001:db8::1]:3479"), RaftAddr: "[2001:db8::1]:8300",
			Sessions: 1<<32 - 1, Capacity: 1<<32 - 1, Accepted: 1<<64 - 1, Draining: true, Seq: 1<<64 - 1,
			Bootstrapped: true, Leaving: true, Timing: 0xdeadbeef,
		}},
		{"hostname raft addr", Report{RaftAddr: "node-a.example:8300"}},
		{"services", Report{Service: netip.MustParseAddrPort("10.0.0.12:3479"), Seq: 4,
			Services: []ServiceReport{turnService, {Name: "game", Addr: netip.MustParseAddrPort("10.0.0.12:7777"), LoadFailed: true}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeReport(tc.r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeReport(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.r) {
				t.Fatalf("round trip: got %+v, want %+v", got, tc.r)
			}
		})
	}
}

func TestReportNormalizesAddresses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"[::ffff:10.0.0.1]:99", "10.0.0.1:99"},
		{"[fe80::1%eth0]:99", "[fe80::1]:99"},
	} {
		b, err := EncodeReport(Report{Service: netip.MustParseAddrPort(tc.in)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeReport(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Service.String() != tc.want {
			t.Errorf("%s decoded as %s, want %s", tc.in, got.Service, tc.want)
		}
	}
}

func TestReportSizeBound(t *testing.T) {
	worst := Report{
		Service:  netip.MustParseAddrPort("[2001:db8::1]:65535"),
		RaftAddr: strings.Repeat("a", maxRaftAddrLen-6) + ":65535",
		API:      strings.Repeat("b", maxAPIAddrLen-6) + ":65535",
		Sessions: 1<<32 - 1, Capacity: 1<<32 - 1, Accepted: 1<<64 - 1, Seq: 1<<64 - 1, Timing: 1<<32 - 1,
		Draining: true, Voter: true, Bootstrapped: true, Leaving: true,
	}
	b, err := EncodeReport(worst)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MaxReportSize {
		t.Errorf("worst case encodes to %d bytes, MaxReportSize is %d", len(b), MaxReportSize)
	}
	if MaxReportSize >= 512 {
		t.Errorf("MaxReportSize %d is not under memberlist's 512-byte limit", MaxReportSize)
	}
	worst.RaftAddr += "x"
	if _, err := EncodeReport(worst); err == nil {
		t.Error("a 256-byte raft address encoded")
	}
}

func TestDecodeReportRejects(t *testing.T) {
	good, err := EncodeReport(Report{Service: netip.MustParseAddrPort("10.0.0.1:1"), RaftAddr: "h:1", Seq: 5})
	if err != nil {
		t.Fatal(err)
	}
	mapped := append([]byte{reportVersion, 0, familyIPv6}, netip.MustParseAddr("::ffff:1.2.3.4").AsSlice()...)
	mapped = append(mapped, 0, 1, 0)
	mapped = append(mapped, make([]byte, 28)...)
	badRaft := []byte{reportVersion, 0, familyNone, 3, 'a', 'b', 'c'}
	badRaft = append(badRaft, make([]byte, 28)...)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version", append([]byte{3}, good[1:]...)},
		{"version 2 without services", append([]byte{reportVersionServices}, good[1:]...)},
		{"flags", append([]byte{reportVersion, 0x80}, good[2:]...)},
		{"family", append([]byte{reportVersion, 0, 5}, good[3:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(bytes.Clone(good), 0)},
		{"mapped ipv6", mapped},
		{"raft addr", badRaft},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := DecodeReport(tc.b); !errors.Is(err, ErrBadReport) {
				t.Fatalf("decoded %+v, err %v; want ErrBadReport", r, err)
			}
		})
	}
}

func FuzzDecodeReport(f *testing.F) {
	for _, r := range []Report{
		{},
		{Service: netip.MustParseAddrPort("10.0.0.1:3479"), RaftAddr: "10.0.0.1:8300", Sessions: 3, Voter: true, Seq: 1},
		{Service: netip.MustParseAddrPort("[2001:db8::1]:1"), Draining: true, Seq: 2},
		{Seq: 3, Services: []ServiceReport{turnService}},
	} {
		b, err := EncodeReport(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{reportVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReport(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		again, err := EncodeReport(r)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", r, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b, again)
		}
	})
}

func TestReportMsg(t *testing.T) {
	r := Report{Service: netip.MustParseAddrPort("192.0.2.7:3479"), RaftAddr: "192.0.2.7:8300", Sessions: 7,
		Capacity: 100, Accepted: 42, Seq: 9, Voter: true, API: "127.0.0.1:8080"}
	b, err := appendReportMsg([]byte("keep"), "node-a", r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("keep")) {
		t.Fatalf("appendReportMsg dropped dst: %q", b)
	}
	name, got, err := decodeReportMsg(b[4:])
	if err != nil || name != "node-a" || !reflect.DeepEqual(got, r) {
		t.Fatalf("decodeReportMsg = %q, %+v, %v; want node-a, %+v", name, got, err, r)
	}
	good := b[4:]
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"kind only", []byte{msgReport}},
		{"wrong kind", append([]byte{2}, good[1:]...)},
		{"empty name", []byte{msgReport, 0, reportVersion}},
		{"name past the end", []byte{msgReport, 9, 'a'}},
		{"no report", good[:2+len("node-a")]},
		{"truncated report", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodeReportMsg(tc.b); !errors.Is(err, ErrBadReport) {
				t.Fatalf("decodeReportMsg(%x) = %v, want ErrBadReport", tc.b, err)
			}
		})
	}
	for _, bad := range []string{"", strings.Repeat("n", maxNodeNameLen+1)} {
		if _, err := appendReportMsg(nil, bad, r); err == nil {
			t.Errorf("appendReportMsg with a %d-byte name: no error", len(bad))
		}
	}
}

func FuzzReportMsg(f *testing.F) {
	b, _ := appendReportMsg(nil, "n1", Report{Seq: 1, Sessions: 3})
	f.Add(b)
	f.Add([]byte{msgReport, 1, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, r, err := decodeReportMsg(b)
		if err != nil {
			return
		}
		again, err := appendReportMsg(nil, name, r)
		if err != nil {
			t.Fatalf("a decoded message does not encode: %v", err)
		}
		name2, r2, err := decodeReportMsg(again)
		if err != nil || name2 != name || !reflect.DeepEqual(r2, r) {
			t.Fatalf("round trip: %q %+v %v, want %q %+v", name2, r2, err, name, r)
		}
	})
}
