// Package srclimit limits how many datagrams each source prefix may have
// answered: a token bucket per prefix (a /24 of IPv4 or a /56 of IPv6 by
// default), kept in a table of fixed size that spoofed sources cannot grow.
//
// It is pure: the caller passes the clock reading it already has with every
// check, and the key of the table's hash. A Table has one owner: it is not
// safe for concurrent use, and the probe paths give each serving goroutine
// a table of its own.
//
// # The bucket
//
// Each bucket is kept as the theoretical arrival time (tat) of the generic
// cell rate algorithm: a bucket with tokens left is one whose tat lies less
// than Burst intervals ahead of now, and admitting a datagram moves the tat
// one interval (a second divided by Rate) further. A tat in the past is a
// full bucket. One int64 per bucket, no division on the path, and a clock
// that steps back only makes a bucket stricter for the length of the step,
// never looser.
//
// # The table
//
// The table is set-associative: the prefix, hashed with SipHash under the
// caller's random key, picks a set of a few slots, and the prefix is looked
// for in that set only, compared in full, so two prefixes never share a
// bucket. A prefix not found takes the slot of its set whose tat is the
// smallest: an empty slot first, then an idle one (a full bucket, which is
// the same as no bucket), then the one with the most tokens left. Memory is
// the Slots fixed at New, however many prefixes are seen.
//
// Why evictions cannot be used to lift a limit or to deny a light source:
//
//   - Eviction only ever hands a prefix a full bucket, so a prefix is denied
//     only by its own datagrams: another prefix, spoofed or not, can make a
//     source forget its debt but never owe one it did not run up. A light
//     source (below Rate, within Burst) is answered whatever else arrives,
//     unless the flood spoofs its own prefix, which no source-keyed limit
//     can tell from the source.
//   - A heavy source that is being limited has the largest tat of its set
//     (close to Burst intervals ahead), so it is the last slot its set gives
//     up. Spoofed sources, one datagram each, hold a tat one interval ahead
//     and evict each other first. To push the heavy source out, a flood must
//     fill its set with prefixes more indebted than it, that is, send a
//     burst's worth from each of Ways other prefixes landing in that set;
//     the set is unknown to it (the hash key is random), so it must do so
//     for every set: Slots×Burst datagrams, answered, per Burst/Rate
//     seconds. A flood that large is a distributed one that per-prefix
//     limits do not stop anyway, and the heavy source, when it is evicted,
//     regains at most one burst before it is limited again.
package srclimit

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/dchest/siphash"
)

// Ways is how many slots a set holds: how many prefixes that hash alike
// the table tells apart before it evicts one.
const Ways = 4

// DefaultSlots is the table size New uses when Config.Slots is zero: 4096
// buckets of 24 bytes, 96 KiB per table.
const DefaultSlots = 4096

// Default prefix lengths: the block a home or office NAT, or a customer of
// an IPv6 provider, is usually given.
const (
	DefaultIPv4Bits = 24
	DefaultIPv6Bits = 56
)

// Config configures a Table.
type Config struct {
	// Rate is how many datagrams per second each prefix may sustain. Zero
	// (or less) turns the limit off: every check passes.
	Rate int
	// Burst is how many datagrams a prefix with a full bucket may send at
	// once; less than one means one.
	Burst int
	// IPv4Bits and IPv6Bits are the prefix lengths sources are grouped by;
	// zero means DefaultIPv4Bits and DefaultIPv6Bits.
	IPv4Bits, IPv6Bits int
	// Slots is how many buckets the table holds, rounded up to a power of
	// two no smaller than Ways; zero means DefaultSlots.
	Slots int
}

// Table is a fixed-size table of token buckets keyed by source prefix.
// The zero value and a nil *Table allow everything.
type Table struct {
	interval   int64  // nanoseconds a token takes to come back
	tolerance  int64  // Burst intervals: how far ahead a tat may lie
	v4, hi, lo uint64 // masks of the IPv4 address and the IPv6 halves
	k0, k1     uint64 // the SipHash key
	sets       uint64 // number of sets, a power of two
	slots      []slot
}

// slot is one bucket: the prefix it stands for and its tat in Unix
// nanoseconds, zero when the slot is empty.
type slot struct {
	hi, lo uint64
	tat    int64
}

// New returns a table for cfg whose hash is keyed with k0 and k1, which
// the caller draws from a random source an attacker cannot see. It returns
// nil, which allows everything, when cfg.Rate is not positive.
func New(cfg Config, k0, k1 uint64) *Table {
	if cfg.Rate <= 0 {
		return nil
	}
	interval := max(int64(time.Second)/int64(cfg.Rate), 1)
	n := Ways
	for n < cfg.Slots || (cfg.Slots == 0 && n < DefaultSlots) {
		n *= 2
	}
	v4bits := orDefault(cfg.IPv4Bits, DefaultIPv4Bits, 32)
	v6bits := orDefault(cfg.IPv6Bits, DefaultIPv6Bits, 128)
	return &Table{
		interval:  interval,
		tolerance: int64(max(cfg.Burst, 1)) * interval,
		v4:        mask(v4bits + 32),
		hi:        mask(min(v6bits, 64)),
		lo:        mask(max(v6bits-64, 0)),
		k0:        k0,
		k1:        k1,
		sets:      uint64(n / Ways),
		slots:     make([]slot, n),
	}
}

// orDefault returns bits, or def when bits is zero, within [0, most].
func orDefault(bits, def, most int) int {
	if bits == 0 {
		bits = def
	}
	return min(max(bits, 0), most)
}

// mask returns a 64-bit mask of its top bits set (bits at most 64).
func mask(bits int) uint64 {
	if bits <= 0 {
		return 0
	}
	return ^uint64(0) << (64 - bits)
}

// Allow reports whether a datagram from a, read at now, is within its
// prefix's limit, and takes a token if it is. It does not allocate.
func (t *Table) Allow(a netip.Addr, now time.Time) bool {
	if t == nil || t.slots == nil {
		return true
	}
	hi, lo := t.key(a)
	return t.find(hi, lo).take(now.UnixNano(), t.interval, t.tolerance)
}

// key returns the prefix of a as two words. An IPv4 address (or an
// IPv4-mapped IPv6 one) is kept in its mapped form, so the two spellings
// of one client share a bucket and no IPv6 prefix shares it.
func (t *Table) key(a netip.Addr) (hi, lo uint64) {
	if a = a.Unmap(); a.Is4() {
		b := a.As4()
		return 0, (0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))) & (t.v4 | 0xffff<<32)
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]) & t.hi, binary.BigEndian.Uint64(b[8:]) & t.lo
}

// find returns the slot of the prefix hi, lo: its own, or, when it has
// none, the slot of its set with the smallest tat, emptied for it.
func (t *Table) find(hi, lo uint64) *slot {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], hi)
	binary.LittleEndian.PutUint64(b[8:], lo)
	i := (siphash.Hash(t.k0, t.k1, b[:]) & (t.sets - 1)) * Ways
	set := t.slots[i : i+Ways : i+Ways]
	victim := &set[0]
	for j := range set {
		s := &set[j]
		if s.tat != 0 && s.hi == hi && s.lo == lo {
			return s
		}
		if s.tat < victim.tat {
			victim = s
		}
	}
	*victim = slot{hi: hi, lo: lo}
	return victim
}

// take takes a token from s at now if it has one left.
func (s *slot) take(now, interval, tolerance int64) bool {
	next := max(s.tat, now) + interval
	if next-now > tolerance {
		return false
	}
	s.tat = next
	return true
}

// Size returns how many buckets t holds: its memory is Size times 24
// bytes, whatever it has seen.
func (t *Table) Size() int {
	if t == nil {
		return 0
	}
	return len(t.slots)
}

// Bucket is one token bucket, kept as a table's buckets are (see "The
// bucket" above), for a stream of events that is limited as a whole rather
// than by source. The zero value and a nil *Bucket allow everything. Like
// a Table it has one owner.
type Bucket struct {
	s                   slot // its prefix unused
	interval, tolerance int64
}

// NewBucket returns a bucket that sustains rate events per second and lets
// burst through at once (at least one). It returns nil, which allows
// everything, when rate is not positive.
func NewBucket(rate, burst int) *Bucket {
	if rate <= 0 {
		return nil
	}
	interval := max(int64(time.Second)/int64(rate), 1)
	return &Bucket{interval: interval, tolerance: int64(max(burst, 1)) * interval}
}

// Allow reports whether the bucket has a token left at now, and takes it
// if so.
func (b *Bucket) Allow(now time.Time) bool {
	if b == nil || b.interval == 0 {
		return true
	}
	return b.s.take(now.UnixNano(), b.interval, b.tolerance)
}
