package cluster_test

import (
	"log"
	"net/netip"

	"github.com/hashicorp/go-hclog"
	"github.com/usherlb/usher/cluster"
)

// A node of a three-voter farm: it joins two seeds, reports its load, and
// checks on the probe path whether it may answer on the VIP.
func ExampleNew() {
	timing, err := cluster.Profile("lan")
	if err != nil {
		log.Fatal(err)
	}
	c, err := cluster.New(cluster.Config{
		NodeName:        "node-a",
		BindAddr:        netip.MustParseAddrPort("10.0.0.11:7946"),
		RaftBindAddr:    netip.MustParseAddrPort("10.0.0.11:8300"),
		Join:            []string{"10.0.0.12:7946", "10.0.0.13:7946"},
		Label:           "farm-1",
		DataDir:         "/var/lib/usher",
		BootstrapExpect: 3,
		Voter:           true,
		Timing:          timing,
		Logger:          hclog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Shutdown()

	c.SetReport(cluster.Report{
		Service:  netip.MustParseAddrPort("10.0.0.11:3479"),
		Sessions: 12,
		Capacity: 1000,
	})
	if term, ok := c.Serving(); ok {
		log.Printf("answering probes on the VIP in term %d", term)
	}
}
