package assign

import (
	"strings"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    Policy
		wantErr bool
	}{
		{"least-loaded", LeastLoaded, false},
		{"p2c", P2C, false},
		{"round-robin", RoundRobin, false},
		{"random", Random, false},
		{"sticky", Sticky, false},
		{"", 0, true},
		{"Least-Loaded", 0, true},
		{"roundrobin", 0, true},
	}
	for _, tt := range tests {
		got, err := ParsePolicy(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParsePolicy(%q) = %v, want an error", tt.in, got)
			} else if !strings.Contains(err.Error(), `"`+tt.in+`"`) {
				t.Errorf("ParsePolicy(%q) error %q does not name the value", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestPolicyStringRoundTrip(t *testing.T) {
	for _, p := range allPolicies {
		got, err := ParsePolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p.String(), got, err)
		}
		b, err := p.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText(%v): %v", p, err)
		}
		var q Policy
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("UnmarshalText(%q) = %v, %v", b, q, err)
		}
	}
	if s := Policy(42).String(); s != "policy(42)" {
		t.Errorf("unknown policy String = %q", s)
	}
	if _, err := Policy(42).MarshalText(); err == nil {
		t.Error("MarshalText of an unknown policy succeeded")
	}
	var p Policy
	if err := p.UnmarshalText([]byte("bogus")); err == nil {
		t.Error("UnmarshalText(bogus) succeeded")
	}
}
