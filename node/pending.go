package node

import (
	"time"

	"github.com/usherlb/usher/client"
	"github.com/usherlb/usher/cluster"
)

// pendingTTL returns how long the leader keeps the pending ledger entry of
// a redirect whose client never shows up in a report
// (assign.Config.PendingTTL), given the keepalive interval the redirect
// names in USHER-TIMERS and the cluster's report interval
// (Timing.PublishInterval); zero means the default of either.
//
// An entry should outlive a real client's way to its server and into the
// leader's view, and no more: every entry a stranger books holds a seat
// that long. The client's way is
//
//   - one round trip: the redirect reaches the client and its first
//     keepalive, sent at once, reaches the server (client.DefaultRTO, the
//     client's own allowance for a round trip);
//   - one keepalive interval, stretched by the client's jitter
//     (client.DefaultJitter): if that first keepalive is lost, the next
//     one follows an interval later;
//   - the report: the endpoint counts the session as the keepalive
//     arrives, the agent's view loop copies the count into its report
//     every viewInterval, the cluster sends the report every publish
//     interval, and the leader rebuilds its view within viewGap of it.
//
// With the default timers (1 s, 250 ms) that is 1.97 s.
//
// A named service's client (a browser's TURN Allocate) is counted by the
// service's load source, which may poll less often; its entries may expire
// before its report shows them, which costs balance for a moment, never a
// refusal.
func pendingTTL(keepalive, publish time.Duration) time.Duration {
	if keepalive <= 0 {
		keepalive = client.DefaultKeepaliveInterval
	}
	if publish <= 0 {
		publish = cluster.DefaultPublishInterval
	}
	roundTrip := client.DefaultRTO
	nextKeepalive := time.Duration(float64(keepalive) * (1 + client.DefaultJitter))
	report := viewInterval + publish + viewGap
	return roundTrip + nextKeepalive + report
}
