package srclimit

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

var (
	t0    = time.Unix(1_800_000_000, 0)
	hostA = netip.MustParseAddr("192.0.2.1")
	hostB = netip.MustParseAddr("192.0.2.200") // hostA's /24
	hostC = netip.MustParseAddr("198.51.100.7")
)

// step is one check of a bucket table test: at offset at from t0, a
// datagram from from, and whether it must pass.
type step struct {
	at   time.Duration
	from netip.Addr
	want bool
}

// TestBucket runs the bucket arithmetic on an injected clock.
func TestBucket(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"burst then empty", Config{Rate: 10, Burst: 3}, []step{
			{0, hostA, true}, {0, hostA, true}, {0, hostA, true}, {0, hostA, false}, {0, hostA, false},
		}},
		{"one token back per interval", Config{Rate: 10, Burst: 2}, []step{
			{0, hostA, true}, {0, hostA, true}, {0, hostA, false},
			{99 * ms, hostA, false}, {100 * ms, hostA, true}, {100 * ms, hostA, false},
			{300 * ms, hostA, true}, {300 * ms, hostA, true}, {300 * ms, hostA, false},
		}},
		{"refill stops at the burst", Config{Rate: 10, Burst: 2}, []step{
			{0, hostA, true}, {10 * time.Second, hostA, true}, {10 * time.Second, hostA, true}, {10 * time.Second, hostA, false},
		}},
		{"a /24 shares one bucket", Config{Rate: 1, Burst: 2}, []step{
			{0, hostA, true}, {0, hostB, true}, {0, hostA, false}, {0, hostB, false}, {0, hostC, true},
		}},
		{"a /32 does not", Config{Rate: 1, Burst: 1, IPv4Bits: 32}, []step{
			{0, hostA, true}, {0, hostB, true}, {0, hostA, false}, {0, hostB, false},
		}},
		{"mapped and plain IPv4 are one client", Config{Rate: 1, Burst: 1}, []step{
			{0, hostA, true}, {0, netip.AddrFrom16(hostA.As16()), false},
		}},
		{"a /56 shares one bucket", Config{Rate: 1, Burst: 1}, []step{
			{0, netip.MustParseAddr("2001:db8:0:1200::1"), true},
			{0, netip.MustParseAddr("2001:db8:0:12ff:ffff::9"), false},
			{0, netip.MustParseAddr("2001:db8:0:1300::1"), true},
		}},
		{"IPv6 prefixes longer than 64 bits", Config{Rate: 1, Burst: 1, IPv6Bits: 128}, []step{
			{0, netip.MustParseAddr("2001:db8::1"), true},
			{0, netip.MustParseAddr("2001:db8::2"), true},
			{0, netip.MustParseAddr("2001:db8::1"), false},
		}},
		{"a clock stepping back never adds tokens", Config{Rate: 10, Burst: 1}, []step{
			{time.Second, hostA, true}, {0, hostA, false}, {time.Second + 99*ms, hostA, false}, {time.Second + 100*ms, hostA, true},
		}},
		{"a rate above a billion still limits", Config{Rate: 2e9, Burst: 1}, []step{
			{0, hostA, true}, {0, hostA, false}, {time.Nanosecond, hostA, true},
		}},
		{"off", Config{Rate: 0, Burst: 1}, []step{
			{0, hostA, true}, {0, hostA, true}, {0, hostA, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := New(tt.cfg, 1, 2)
			for i, s := range tt.steps {
				if got := tb.Allow(s.from, t0.Add(s.at)); got != s.want {
					t.Fatalf("step %d (%v at %v): allowed %v, want %v", i, s.from, s.at, got, s.want)
				}
			}
		})
	}
}

// TestSteadyRate checks that a source sending at the rate is always
// answered and one sending at ten times the rate is answered at the rate.
func TestSteadyRate(t *testing.T) {
	tb := New(Config{Rate: 100, Burst: 10}, 3, 4)
	now := t0
	heavy := 0
	for i := range 10_000 { // ten seconds at 1000/s
		now = now.Add(time.Millisecond)
		if tb.Allow(hostC, now) {
			heavy++
		}
		if i%10 == 0 && !tb.Allow(hostA, now) {
			t.Fatalf("the light source was refused at %v", now.Sub(t0))
		}
	}
	if heavy < 1000 || heavy > 1010 {
		t.Errorf("the heavy source was answered %d times in 10 s, want 1000 plus the burst", heavy)
	}
}

// spoofed returns the i-th of many distinct /24s.
func spoofed(i int) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(i)<<8|1)
	return netip.AddrFrom4(b)
}

// TestSpoofedSources floods a small table with 100,000 distinct spoofed
// prefixes, while a light source sends steadily and a heavy one floods:
// the table must not grow, the light source must always be answered, and
// the heavy one must stay limited (it may regain a burst when evicted, but
// the spoofers, one datagram each, go first).
func TestSpoofedSources(t *testing.T) {
	tests := []struct {
		name    string
		slots   int
		spoofed int // spoofed datagrams between two of the heavy source's
	}{
		{"small table, dense spoofing", 64, 10},
		{"default table", 0, 10},
		{"one set", Ways, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const rate, burst = 100, 50
			tb := New(Config{Rate: rate, Burst: burst, Slots: tt.slots}, 5, 6)
			size := tb.Size()
			now, heavy, sent := t0, 0, 0
			light := netip.MustParseAddr("203.0.113.9")
			for i := 0; i < 100_000; i++ {
				now = now.Add(10 * time.Microsecond)
				tb.Allow(spoofed(i), now)
				if i%tt.spoofed == 0 {
					sent++
					if tb.Allow(hostC, now) {
						heavy++
					}
				}
				if i%1000 == 0 && !tb.Allow(light, now) {
					t.Fatalf("the light source was refused after %d spoofed datagrams", i)
				}
			}
			if tb.Size() != size || len(tb.slots) != size {
				t.Errorf("the table grew from %d to %d slots", size, tb.Size())
			}
			secs := now.Sub(t0).Seconds()
			if most := int(rate*secs) + burst + 1; heavy > most {
				t.Errorf("the heavy source got %d of %d answered in %.1f s, want at most %d", heavy, sent, secs, most)
			}
		})
	}
}

// TestAllowAllocs checks that a check allocates nothing, found or not.
func TestAllowAllocs(t *testing.T) {
	tb := New(Config{Rate: 100, Burst: 10}, 7, 8)
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		i++
		tb.Allow(spoofed(i), t0)
		tb.Allow(hostA, t0)
	}); n != 0 {
		t.Errorf("%v allocs per check", n)
	}
}

// TestNilAllows checks that a table that is off allows everything.
func TestNilAllows(t *testing.T) {
	var zero Table
	for _, tb := range []*Table{nil, &zero, New(Config{}, 0, 0)} {
		for i := range 3 {
			if !tb.Allow(hostA, t0) {
				t.Errorf("%+v refused check %d", tb, i)
			}
		}
	}
}

// FuzzTable checks the table against a map of buckets with no evictions,
// charged with every datagram the table answered: the table may forget a
// debt (answering more), never invent one, so it refuses a prefix only
// when that prefix's own answered datagrams have spent its bucket.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0, 0, 1, 200})
	f.Fuzz(func(t *testing.T, ops []byte) {
		tb := New(Config{Rate: 10, Burst: 3, Slots: 8}, 9, 10)
		ref := make(map[byte]int64) // tat per /24, no evictions
		now := t0
		for _, op := range ops {
			if op >= 0xf0 {
				now = now.Add(time.Duration(op&0x0f) * 25 * time.Millisecond)
				continue
			}
			a := netip.AddrFrom4([4]byte{10, 0, op, 1})
			got := tb.Allow(a, now)
			r := slot{tat: ref[op]}
			if !got && r.take(now.UnixNano(), tb.interval, tb.tolerance) {
				t.Fatalf("%v refused at %v, though what the table answered it leaves a token", a, now.Sub(t0))
			}
			if got {
				// The reference bucket is charged for what the table
				// answered, forgotten debts included.
				ref[op] = max(ref[op], now.UnixNano()) + tb.interval
			}
		}
		if len(tb.slots) != 8 {
			t.Fatalf("the table has %d slots", len(tb.slots))
		}
	})
}

// BenchmarkAllow is the cost of one check on the probe path: one source
// found in its set, and a new source evicting another.
func BenchmarkAllow(b *testing.B) {
	b.Run("known", func(b *testing.B) {
		tb := New(Config{Rate: 1 << 30, Burst: 1}, 11, 12)
		now := t0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			tb.Allow(hostA, now)
		}
	})
	b.Run("spoofed", func(b *testing.B) {
		tb := New(Config{Rate: 100, Burst: 10}, 11, 12)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			tb.Allow(spoofed(i), t0)
		}
	})
}

// TestSingleBucket runs a Bucket, the limit of one stream, on an injected
// clock: the same arithmetic as a table's bucket, and nil or a zero rate
// allow everything.
func TestSingleBucket(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name        string
		rate, burst int
		at          []time.Duration
		want        []bool
	}{
		{"burst then empty", 10, 3, []time.Duration{0, 0, 0, 0}, []bool{true, true, true, false}},
		{"one token back per interval", 10, 1, []time.Duration{0, 0, 99 * ms, 100 * ms, 100 * ms}, []bool{true, false, false, true, false}},
		{"refill stops at the burst", 10, 2, []time.Duration{0, 10 * time.Second, 10 * time.Second, 10 * time.Second}, []bool{true, true, true, false}},
		{"a burst below one is one", 10, 0, []time.Duration{0, 0}, []bool{true, false}},
		{"off", 0, 1, []time.Duration{0, 0, 0}, []bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBucket(tt.rate, tt.burst)
			for i, at := range tt.at {
				if got := b.Allow(t0.Add(at)); got != tt.want[i] {
					t.Fatalf("event %d at %v: allowed %v, want %v", i, at, got, tt.want[i])
				}
			}
		})
	}
	var zero Bucket
	for i := range 3 {
		if !zero.Allow(t0) {
			t.Errorf("the zero Bucket refused event %d", i)
		}
	}
}
