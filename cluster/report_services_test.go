package cluster

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// turnService is a dual-stack TURN service as a report carries it.
var turnService = ServiceReport{
	Name:     "turn",
	Addr:     netip.MustParseAddrPort("198.18.0.7:3478"),
	Addr6:    netip.MustParseAddrPort("[2001:db8::7]:3478"),
	Sessions: 15, Capacity: 5000, Accepted: 40,
	Unhealthy: true,
}

// TestReportServicesGolden pins the version 2 encoding: the version byte
// says services follow the version 1 fields, then the count and each
// service's name, flags, two addresses and load.
func TestReportServicesGolden(t *testing.T) {
	r := Report{Seq: 1, Services: []ServiceReport{turnService, {Name: "g", Addr: netip.MustParseAddrPort("[2001:db8::9]:7777"), Draining: true, LoadFailed: true}}}
	b, err := EncodeReport(r)
	if err != nil {
		t.Fatal(err)
	}
	want := "02" + "00" + "00" + "00" + // version 2, no flags, no session address, no raft address
		"00000000" + "00000000" + "0000000000000000" + "0000000000000001" + "00000000" + "00" + // loads, seq, timing, no api
		"02" + // two services
		"04" + hex.EncodeToString([]byte("turn")) + "02" + // unhealthy
		"04" + "c6120007" + "0d96" + "06" + "20010db8000000000000000000000007" + "0d96" +
		"0000000f" + "00001388" + "0000000000000028" +
		"01" + "67" + "05" + // draining and load failed
		"06" + "20010db8000000000000000000000009" + "1e61" + "00" +
		"00000000" + "00000000" + "0000000000000000"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	got, err := DecodeReport(b)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("decode: %+v, %v", got, err)
	}
}

// TestReportServiceDomain pins the optional domain: a service with one
// has the flag svcDomain and its entry ends with the domain's length and
// bytes; the others keep the encoding TestReportServicesGolden pins.
func TestReportServiceDomain(t *testing.T) {
	g := ServiceReport{Name: "g", Addr: netip.MustParseAddrPort("[2001:db8::9]:7777"), Domain: "t.example"}
	r := Report{Seq: 1, Services: []ServiceReport{g, turnService}}
	b, err := EncodeReport(r)
	if err != nil {
		t.Fatal(err)
	}
	want := "02" + "00" + "00" + "00" +
		"00000000" + "00000000" + "0000000000000000" + "0000000000000001" + "00000000" + "00" +
		"02" +
		"01" + "67" + "08" + // the domain flag
		"06" + "20010db8000000000000000000000009" + "1e61" + "00" +
		"00000000" + "00000000" + "0000000000000000" +
		"09" + hex.EncodeToString([]byte("t.example")) +
		"04" + hex.EncodeToString([]byte("turn")) + "02" +
		"04" + "c6120007" + "0d96" + "06" + "20010db8000000000000000000000007" + "0d96" +
		"0000000f" + "00001388" + "0000000000000028"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	got, err := DecodeReport(b)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("decode: %+v, %v", got, err)
	}
	g.Domain = strings.Repeat("d", MaxServiceDomainLen+1)
	if _, err := EncodeReport(Report{Services: []ServiceReport{g}}); err == nil {
		t.Fatal("a domain over MaxServiceDomainLen encoded")
	}
	flag := 1 + 1 + 1 + 1 + 4 + 4 + 8 + 8 + 4 + 1 + 1 + 1 + 1 // the first service's flags
	dl := flag + 1 + 19 + 1 + 16                              // its domain's length
	// The first service alone, its domain's length byte set to n and
	// followed by rest.
	alone := func(n byte, rest string) []byte {
		c := append([]byte(nil), b[:dl]...)
		c[flag-3] = 1
		return append(append(c, n), rest...)
	}
	if _, err := DecodeReport(alone(9, "t.example")); err != nil {
		t.Fatalf("the first service alone: %v", err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty domain", alone(0, "")},
		{"long domain", alone(MaxServiceDomainLen+1, strings.Repeat("d", MaxServiceDomainLen+1))},
		{"truncated domain", alone(9, "t.ex")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeReport(tc.b); !errors.Is(err, ErrBadReport) {
				t.Fatalf("err %v; want ErrBadReport", err)
			}
		})
	}
	if b[flag] != svcDomain {
		t.Fatalf("flags byte at %d is %#x", flag, b[flag])
	}
}

// TestReportWithoutServicesIsVersion1 checks that a report without
// services keeps the version 1 encoding, which agents without services
// decode: a farm is upgraded one agent at a time.
func TestReportWithoutServicesIsVersion1(t *testing.T) {
	b, err := EncodeReport(Report{Seq: 3, Services: []ServiceReport{}})
	if err != nil || b[0] != reportVersion {
		t.Fatalf("encoding %x, %v: want version %d", b, err, reportVersion)
	}
}

// TestReportFourServicesSize measures a realistic report of four
// dual-stack services with signing room to spare, and checks that the
// worst case a configuration could ask for is refused, not truncated.
func TestReportFourServicesSize(t *testing.T) {
	r := Report{
		Service:  netip.MustParseAddrPort("198.18.0.7:3479"),
		RaftAddr: "198.18.0.7:7301", API: "198.18.0.7:8500",
		Capacity: 1000, Seq: 1 << 40, Voter: true, Bootstrapped: true,
	}
	for _, name := range []string{"turn", "turn-tcp", "game", "media-relay"} {
		s := turnService
		s.Name = name
		r.Services = append(r.Services, s)
	}
	b, err := EncodeReport(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("four dual-stack services: %d bytes of %d (%d left for the signature's %d)", len(b), MaxReportSize, 512-len(b), maxMetaSigLen)
	if len(b) > MaxReportSize*3/4 {
		t.Errorf("four services take %d bytes, over three quarters of MaxReportSize %d", len(b), MaxReportSize)
	}
	for len(r.Services) < MaxServices {
		s := turnService
		s.Name = strings.Repeat("s", MaxServiceNameLen-1) + string(rune('a'+len(r.Services)))
		r.Services = append(r.Services, s)
	}
	if _, err := EncodeReport(r); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("eight long-named services encoded (err %v)", err)
	}
}

// TestReportServicesRejects lists services a report must not carry, on
// either side of the wire.
func TestReportServicesRejects(t *testing.T) {
	long := strings.Repeat("x", MaxServiceNameLen+1)
	for _, tc := range []struct {
		name string
		svcs []ServiceReport
	}{
		{"empty name", []ServiceReport{{}}},
		{"long name", []ServiceReport{{Name: long}}},
		{"twice", []ServiceReport{{Name: "a"}, {Name: "a"}}},
		{"too many", make([]ServiceReport, MaxServices+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := EncodeReport(Report{Services: tc.svcs}); err == nil {
				t.Fatal("encoded")
			}
		})
	}
	good, err := EncodeReport(Report{Services: []ServiceReport{turnService}})
	if err != nil {
		t.Fatal(err)
	}
	svc := len(good) - (1 + 1 + 4 + 1 + 7 + 19 + 16) // where the services section starts
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"no services", mut(func(b []byte) []byte { b[svc] = 0; return b[:svc+1] })},
		{"count", mut(func(b []byte) []byte { b[svc] = MaxServices + 1; return b })},
		{"empty name", mut(func(b []byte) []byte { b[svc+1] = 0; return b })},
		{"flags", mut(func(b []byte) []byte { b[svc+6] = 0x80; return b })},
		{"second address is ipv4", mut(func(b []byte) []byte {
			i := svc + 7 + 7
			return append(append(b[:i:i], familyIPv4, 1, 2, 3, 4, 0, 1), b[i+19:]...)
		})},
		{"truncated", good[:len(good)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := DecodeReport(tc.b); !errors.Is(err, ErrBadReport) {
				t.Fatalf("decoded %+v, err %v; want ErrBadReport", r, err)
			}
		})
	}
}

// TestSameMembership checks that only load and Seq are left out of the
// comparison that decides whether a report must be gossiped: every other
// field of a Report, and of a ServiceReport, counts. It walks the structs'
// fields, so a field added later cannot be forgotten.
func TestSameMembership(t *testing.T) {
	load := map[string]bool{"Sessions": true, "Accepted": true, "Seq": true}
	base := Report{Services: []ServiceReport{turnService}}
	rt := reflect.TypeFor[Report]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Name == "Services" {
			continue
		}
		b := base
		setNonZero(reflect.ValueOf(&b).Elem().Field(i))
		if got := sameMembership(base, b); got != load[f.Name] {
			t.Errorf("Report.%s changed: sameMembership = %v, want %v", f.Name, got, load[f.Name])
		}
	}
	st := reflect.TypeFor[ServiceReport]()
	for i := range st.NumField() {
		f := st.Field(i)
		b := base
		b.Services = []ServiceReport{turnService}
		setNonZero(reflect.ValueOf(&b.Services[0]).Elem().Field(i))
		if got := sameMembership(base, b); got != load[f.Name] {
			t.Errorf("ServiceReport.%s changed: sameMembership = %v, want %v", f.Name, got, load[f.Name])
		}
	}
	if sameMembership(base, Report{}) {
		t.Error("a report that lost its services is the same membership")
	}
}

// setNonZero changes v to a value that differs from turnService's and the
// zero value.
func setNonZero(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	default:
		v.Set(reflect.ValueOf(netip.MustParseAddrPort("198.18.9.9:9")))
	}
}
