package assign

import "time"

// DefaultPendingTTL is how long a pending entry lives when Config.PendingTTL
// is zero. It is what the agent derives from its default timers (a round
// trip, a keepalive interval of 1 s with the client's jitter, and the time a
// report takes to show the client); a caller with other timers passes its
// own.
const DefaultPendingTTL = 2 * time.Second

// ledger is one node's pending entries: the times of the redirects the leader
// sent to it that the node's reports do not show yet, oldest first. It is a
// ring buffer that grows by doubling and never shrinks, so once it has
// reached its working size pushing allocates nothing. Its length is bounded
// by the limit push is given (the node's capacity, or its stock share): a
// push beyond it drops the oldest entry, so a flood of picks can refresh a
// node's entries but never grow them, nor the memory they take, past it.
//
// Entries are kept as Unix nanoseconds: expiry runs for every node on every
// pick, and an integer comparison is much cheaper than time.Time's.
type ledger struct {
	buf  []int64 // UnixNano of each entry
	head int     // index of the oldest entry
	n    int     // number of entries
}

// minLedger is the first allocation of a ledger's ring.
const minLedger = 16

// len returns the number of entries.
func (l *ledger) len() int { return l.n }

// push appends an entry at t (UnixNano), which should not be before the
// newest entry, first dropping the oldest ones if the ledger already holds
// limit entries. With limit <= 0 it records nothing.
func (l *ledger) push(t int64, limit int) {
	if limit <= 0 {
		return
	}
	if l.n >= limit {
		l.dropOldest(uint64(l.n - limit + 1))
	}
	if l.n == len(l.buf) {
		l.grow()
	}
	i := l.head + l.n
	if i >= len(l.buf) {
		i -= len(l.buf)
	}
	l.buf[i] = t
	l.n++
}

func (l *ledger) grow() {
	nb := make([]int64, max(minLedger, 2*len(l.buf)))
	k := copy(nb, l.buf[l.head:])
	copy(nb[k:], l.buf[:l.head])
	l.buf = nb
	l.head = 0
}

// dropOldest removes the k oldest entries (all of them if k >= len).
func (l *ledger) dropOldest(k uint64) {
	if k >= uint64(l.n) {
		l.reset()
		return
	}
	l.head += int(k)
	if l.head >= len(l.buf) {
		l.head -= len(l.buf)
	}
	l.n -= int(k)
}

// dropOldestOf removes the k oldest entries of a and b taken together,
// oldest first (all of both if k is at least their total).
func dropOldestOf(a, b *ledger, k uint64) {
	for ; k > 0 && a.n > 0 && b.n > 0; k-- {
		if a.buf[a.head] <= b.buf[b.head] {
			a.dropOldest(1)
		} else {
			b.dropOldest(1)
		}
	}
	// One of them is empty, or nothing is left to drop.
	a.dropOldest(k)
	b.dropOldest(k)
}

// expire removes entries made before cutoff (UnixNano). Entries are in time
// order, so it stops at the first one that is still alive.
func (l *ledger) expire(cutoff int64) {
	for l.n > 0 && l.buf[l.head] < cutoff {
		l.head++
		if l.head == len(l.buf) {
			l.head = 0
		}
		l.n--
	}
	if l.n == 0 {
		l.head = 0
	}
}

// reset removes every entry but keeps the ring for reuse.
func (l *ledger) reset() {
	l.head, l.n = 0, 0
}
