package e2e

import (
	"cmp"
	"slices"
	"time"
)

// Sighting is evidence, gathered outside the node, that a node served the
// VIP (answered probes as its holder) in Term at some instant within
// [Sent, Recv] on Monotonic's scale: Sent is the observer's clock read
// before it sent its request (a probe, a status query), Recv its clock read
// once the answer had arrived, so the serving decision the answer reports
// was taken in between. Node names the node when the evidence says who it
// was (a status query) and is "" when it does not (an answer from the VIP).
// Term 0 carries no term and proves nothing about order.
type Sighting struct {
	Node       string
	Term       uint64
	Sent, Recv time.Duration
}

// StaleServing returns the sightings that prove a node served in an older
// term after a newer term had already served, which the leader lease
// forbids (a leader's lease ends before any other node can be elected, and
// a node serves a term only while raft says that term is current, so every
// instant served in term T comes before every instant served in any later
// term). For each it returns the sighting of the newer term, received
// before the older one was even sent, and the older one.
//
// An older-term sighting sent before any newer term's sighting arrived is
// no violation: its node may have served while still entitled to, and the
// answer travelled slowly (a dead host's kernel flushes the answers it
// queued while resolving the client's address once its link is back).
// late counts those. Sightings of term 0 are ignored; the input order does
// not matter, and s is not modified.
func StaleServing(s []Sighting) (bad [][2]Sighting, late int) {
	byRecv := make([]Sighting, 0, len(s))
	for _, x := range s {
		if x.Term != 0 {
			byRecv = append(byRecv, x)
		}
	}
	slices.SortStableFunc(byRecv, func(a, b Sighting) int { return cmp.Compare(a.Recv, b.Recv) })
	// best[i] is the last received sighting of the highest term among
	// byRecv[:i+1].
	best := make([]Sighting, len(byRecv))
	for i, x := range byRecv {
		best[i] = x
		if i > 0 && best[i-1].Term > x.Term {
			best[i] = best[i-1]
		}
	}
	// newest returns the highest-term sighting received strictly before t.
	newest := func(t time.Duration) (Sighting, bool) {
		i, _ := slices.BinarySearchFunc(byRecv, t, func(x Sighting, t time.Duration) int { return cmp.Compare(x.Recv, t) })
		if i == 0 {
			return Sighting{}, false
		}
		return best[i-1], true
	}
	for _, x := range byRecv {
		if n, ok := newest(x.Sent); ok && n.Term > x.Term {
			bad = append(bad, [2]Sighting{n, x})
			continue
		}
		if n, ok := newest(x.Recv); ok && n.Term > x.Term {
			late++
		}
	}
	return bad, late
}

// SharedTerms returns, for every term that two different named nodes were
// both seen serving, the first such pair in s. Raft elects at most one
// leader per term and a node serves only the term it leads, so any pair is
// a violation whenever it happened. Unnamed sightings and term 0 are
// ignored.
func SharedTerms(s []Sighting) [][2]Sighting {
	first := map[uint64]Sighting{}
	reported := map[uint64]bool{}
	var out [][2]Sighting
	for _, x := range s {
		if x.Node == "" || x.Term == 0 {
			continue
		}
		f, ok := first[x.Term]
		switch {
		case !ok:
			first[x.Term] = x
		case f.Node != x.Node && !reported[x.Term]:
			reported[x.Term] = true
			out = append(out, [2]Sighting{f, x})
		}
	}
	return out
}

// Served returns the sightings of term (of any term, term 0 included,
// when term is 0) whose serving instant surely lies within [from, to):
// sent at or after from and received before to (to 0: no end). With from
// the instant a leader's lease has surely ended, each is that leader
// serving past its lease; with [from, to) a span without a quorum, each is
// a node serving without one.
func Served(s []Sighting, term uint64, from, to time.Duration) []Sighting {
	var out []Sighting
	for _, x := range s {
		if (term == 0 || x.Term == term) && x.Sent >= from && (to == 0 || x.Recv < to) {
			out = append(out, x)
		}
	}
	return out
}
