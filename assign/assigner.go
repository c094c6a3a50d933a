package assign

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// ErrNoServer is returned by [Assigner.Pick] when no node is eligible.
var ErrNoServer = errors.New("assign: no eligible server")

// ErrNoReport is the ErrNoServer of an Assigner that knows nothing current
// of the farm: its view is empty, or every node's report is older than
// StaleAfter (as on a leader that has just taken over, before the reports
// reach it) or says the node is Starting. Whether the farm could take the session is then unknown, not
// refused. errors.Is(ErrNoReport, ErrNoServer) holds.
var ErrNoReport = fmt.Errorf("%w: no report in time", ErrNoServer)

// Config configures an [Assigner]. The zero value is usable: least-loaded,
// reports never stale, a 2 s pending TTL, the ledger on, stock picks
// booking at most an eighth of each node's capacity, and a warm-up.
type Config struct {
	// Policy chooses among eligible nodes.
	Policy Policy
	// StaleAfter makes a node ineligible when its report is older than this
	// (now - ReportedAt > StaleAfter). Zero means reports never go stale.
	StaleAfter time.Duration
	// PendingTTL is how long a ledger entry lives if the node's reports never
	// account for it (the client never arrived). Zero means
	// DefaultPendingTTL. It should be what a real client needs to reach its
	// server plus the time a report takes to show it, and no more: every
	// entry a stranger books lives this long.
	PendingTTL time.Duration
	// StockShare is the share of a node's capacity that the pending
	// entries of stock picks (BookStock) may take: a node keeps at most
	// ceil(StockShare × Capacity) of them, at least one, and a stock pick
	// beyond that replaces its oldest. Zero means DefaultStockShare; a
	// negative value makes stock picks book nothing.
	StockShare float64
	// ColdPicks, when positive, ends the warm-up after that many successful
	// picks even if the view has not caught up (see [Assigner.Warm]). Zero
	// means no pick limit.
	ColdPicks int
	// Spread is LeastLoaded's band: new sessions go round robin to the
	// nodes loaded at most Spread sessions above the eligible nodes' mean
	// (see the package documentation). Zero means DefaultSpread; a negative
	// value makes LeastLoaded strict, always the least loaded node, which
	// herds onto a node whose report just showed many departures.
	Spread int

	// Test knobs, set only by this package's tests. noLedger disables the
	// pending ledger, so load is the reported sessions alone: the
	// simulations use it to measure what the ledger is worth (without it
	// bursts herd onto one node). startWarm skips the warm-up, so that a
	// test sees LeastLoaded from the first pick.
	noLedger, startWarm bool
}

// DefaultSpread is LeastLoaded's default band above the mean, in sessions.
const DefaultSpread = 10

// DefaultStockShare is the default Config.StockShare: an eighth of each
// node's capacity.
const DefaultStockShare = 0.125

// Assigner picks servers for new sessions from the installed [View] and its
// pending ledger.
//
// It is NOT safe for concurrent use: exactly one goroutine (the probe
// responder) owns it and calls all of its methods, Pending and Warm included.
type Assigner struct {
	cfg Config
	ttl time.Duration
	now func() time.Time
	rng *rand.Rand

	view  *View
	state []nodeState // parallel to view.nodes
	spare []nodeState // the previous state array, reused by SetView
	elig  []int32     // scratch: indices of eligible nodes, in ID order
	// families has bit 1<<f set when the view holds a node reachable on
	// family f, and common when every node with an address is, so that
	// PickFor filters by family only in a view that needs it.
	families, common uint8

	rrLast  string // ID of the last node round-robin picked
	rrValid bool

	born  time.Time // the clock when New ran: no report before it shows our picks
	warm  bool      // see Warm; never goes back to false
	picks uint64    // successful picks since New
}

// nodeState is what the Assigner remembers about one node across views,
// and what eligible needs of the installed view's entry for it in a form
// cheaper to test on every pick.
type nodeState struct {
	led          ledger    // pending entries of BookSession picks, at most Capacity
	stock        ledger    // pending entries of BookStock picks, at most stockCap
	stockCap     int       // the most entries stock may hold (Config.StockShare)
	accepted     uint64    // Accepted in the last reconciled report
	reconciledAt time.Time // ReportedAt of that report
	hrw          uint64    // hashNodeID(ID), for Sticky
	picks        uint64    // successful picks since the last TakePicks

	// Of the installed view's entry for the node:
	closed     bool  // draining, starting, suspect, no capacity or no address: never eligible
	starting   bool  // Node.Starting: no current report, as a stale one
	families   uint8 // bit 1<<f for each family f the node is reachable on (see Node.AddrFor)
	reportedNs int64 // ReportedAt in Unix nanoseconds (see unixNano); older than reconciledAt after an out-of-order report
}

// New returns an Assigner with no view: Pick fails with ErrNoServer until
// SetView installs one. now and rng must not be nil; they are the
// Assigner's only sources of time and randomness.
func New(cfg Config, now func() time.Time, rng *rand.Rand) *Assigner {
	if now == nil || rng == nil {
		panic("assign: New needs a clock and a random source")
	}
	a := &Assigner{cfg: cfg, ttl: cfg.PendingTTL, now: now, rng: rng, born: now(), warm: cfg.startWarm}
	if a.ttl <= 0 {
		a.ttl = DefaultPendingTTL
	}
	return a
}

// Config returns the configuration the Assigner was built with.
func (a *Assigner) Config() Config { return a.cfg }

// View returns the installed view (nil before the first SetView).
func (a *Assigner) View() *View { return a.view }

// SetView installs a new snapshot of the farm and reconciles the ledger.
//
// For each node that was in the previous view too, the growth k of its
// Accepted counter is the number of clients it took in between; the k oldest
// ledger entries of that node are removed, because the new report counts
// those clients in Sessions. If the counter went down while ReportedAt moved
// forward, the node restarted: its new Accepted value is taken as the growth.
// A report older than the one last reconciled (out of order) changes nothing
// in the ledger. A node new to the view starts with an empty ledger and its
// current Accepted as the baseline; a node missing from the view loses its
// ledger. Reports produced before New ran only move baselines (see Warm).
// Expired entries are dropped too.
//
// A nil view is an empty one. Once the Assigner has seen a view as large as
// v, SetView does not allocate.
func (a *Assigner) SetView(v *View) {
	if v == nil {
		v = &View{}
	}
	oldNodes := a.view.Nodes()
	old := a.state
	n := len(v.nodes)
	ns := a.spare
	if cap(ns) < n {
		ns = make([]nodeState, n)
	}
	ns = ns[:n]
	cutoff := before(unixNano(a.now()), a.ttl)

	var families uint8
	common := uint8(0xff)
	j := 0
	for i := range v.nodes {
		nd := &v.nodes[i]
		for j < len(oldNodes) && oldNodes[j].ID < nd.ID {
			j++ // a node that left: its state is dropped
		}
		st := &ns[i]
		if j < len(oldNodes) && oldNodes[j].ID == nd.ID {
			*st = old[j]
			a.reconcile(st, nd)
		} else {
			*st = nodeState{accepted: nd.Accepted, reconciledAt: nd.ReportedAt, hrw: hashNodeID(nd.ID)}
		}
		st.led.expire(cutoff)
		st.stock.expire(cutoff)
		st.stockCap = a.stockCap(nd.Capacity)
		st.closed = nd.Draining || nd.Starting || nd.Suspect || nd.Capacity <= 0 || !nd.Addr.IsValid()
		st.starting = nd.Starting
		st.families = nd.families()
		if nd.Addr.IsValid() {
			families |= st.families
			common &= st.families
		}
		st.reportedNs = unixNano(nd.ReportedAt)
	}

	// The old array becomes the spare. Clear it so it does not keep the
	// rings of nodes that left alive; the live rings were copied into ns.
	clear(old)
	a.spare = old[:0]
	a.state = ns
	a.view = v
	a.families, a.common = families, common
	if cap(a.elig) < n {
		a.elig = make([]int32, 0, n)
	}
	if !a.warm {
		a.warm = a.caughtUp(v)
	}
}

// reconcile removes from st's ledger the entries nd's report accounts for.
func (a *Assigner) reconcile(st *nodeState, nd *Node) {
	if nd.ReportedAt.Before(st.reconciledAt) {
		return // an older report than the one already reconciled
	}
	var k uint64
	switch {
	case nd.ReportedAt.Before(a.born):
		// Produced before this Assigner existed, so none of its clients
		// are in it: the growth was a predecessor's. Move the baseline only.
	case nd.Accepted >= st.accepted:
		k = nd.Accepted - st.accepted
	default: // the counter restarted with the node
		k = nd.Accepted
	}
	// A client that arrived may have been booked either way: the oldest
	// entries go first, whichever ledger holds them.
	dropOldestOf(&st.led, &st.stock, k)
	st.accepted = nd.Accepted
	st.reconciledAt = nd.ReportedAt
}

// stockCap returns how many pending entries of stock picks a node of the
// given capacity keeps (see Config.StockShare).
func (a *Assigner) stockCap(capacity int) int {
	share := a.cfg.StockShare
	switch {
	case share < 0 || capacity <= 0:
		return 0
	case share == 0:
		share = DefaultStockShare
	}
	return max(1, int(math.Ceil(share*float64(capacity))))
}

// caughtUp reports whether every node of v that may still be assigned has a
// report produced since this Assigner was created, and there is at least
// one such node (an empty view proves nothing). Suspect nodes and, with
// StaleAfter, stale ones are ignored: their reports may never be renewed.
func (a *Assigner) caughtUp(v *View) bool {
	staleBefore := a.now().Add(-a.cfg.StaleAfter)
	fresh := 0
	for i := range v.nodes {
		nd := &v.nodes[i]
		switch {
		case nd.Suspect:
		case a.cfg.StaleAfter > 0 && nd.ReportedAt.Before(staleBefore):
		case nd.ReportedAt.Before(a.born):
			return false
		default:
			fresh++
		}
	}
	return fresh > 0
}

// Warm reports whether the warm-up is over, i.e. whether LeastLoaded really
// uses least-loaded rather than P2C.
//
// A new Assigner may be a leader that has just taken over. Its predecessor's
// last redirects are in no report it has seen yet, so the emptiest-looking
// node may in truth be filling up fast; least-loaded would pile onto it,
// while p2c spreads a burst even over a wrong view. The warm-up ends once a
// view has been installed in which every node that can be assigned (not
// suspect, not stale) has a report produced at or after the moment New ran,
// and there is at least one such node:
// such reports include every client the predecessor sent, except the few
// still in flight. It also ends after Config.ColdPicks picks if that is
// positive. Once warm, an Assigner stays warm.
//
// The rule relies on Node.ReportedAt being when the report was produced, on
// the leader's clock. If the cluster layer can only offer the time it
// received a report, the warm-up ends early by the gossip delay.
//
// The same instant bounds reconciliation: a report produced before New ran
// cannot count any client this Assigner sent, so its Accepted growth only
// moves the baseline and removes no ledger entries.
func (a *Assigner) Warm() bool {
	return a.warm || (a.cfg.ColdPicks > 0 && a.picks >= uint64(a.cfg.ColdPicks))
}

// Pending returns the number of live ledger entries for the node with the
// given ID, of session and stock picks together: redirects sent to it that
// its reports do not show yet. It is 0 for a node not in the view and
// always 0 without the ledger (a test knob). It drops expired entries as a side effect, so
// like every method it must be called from the goroutine that owns the
// Assigner.
func (a *Assigner) Pending(id string) int {
	i, ok := a.view.index(id)
	if !ok {
		return 0
	}
	st := &a.state[i]
	cutoff := before(unixNano(a.now()), a.ttl)
	st.led.expire(cutoff)
	st.stock.expire(cutoff)
	return st.led.len() + st.stock.len()
}

// TakePicks calls f with the ID of every node of the installed view that
// was picked since the last TakePicks (or New) and how many times, and
// starts those counts again from zero. Picks of a node that has left the
// view are lost, so a caller that keeps totals takes the picks before it
// installs a new view.
func (a *Assigner) TakePicks(f func(id string, n uint64)) {
	for i := range a.state {
		if n := a.state[i].picks; n > 0 {
			f(a.view.nodes[i].ID, n)
			a.state[i].picks = 0
		}
	}
}

// unixNano returns t in Unix nanoseconds, clamped to the int64 range (the
// zero Time is the smallest value), so that the probe path compares
// integers rather than Times. Comparisons then use the wall clock only, as
// the ledger does: a report time and the Assigner's clock may come from
// different processes, and only their wall readings are comparable.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minUnixNano):
		return math.MinInt64
	case t.After(maxUnixNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// before returns the Unix nanoseconds d before now, or the smallest int64
// if that is earlier still (a clock at the zero Time), rather than wrap
// around to the far future.
func before(now int64, d time.Duration) int64 {
	if now < math.MinInt64+int64(d) {
		return math.MinInt64
	}
	return now - int64(d)
}

// The Times whose Unix nanoseconds fit in an int64.
var (
	minUnixNano = time.Unix(0, math.MinInt64)
	maxUnixNano = time.Unix(0, math.MaxInt64)
)
