package cluster

import (
	"net/netip"
	"testing"
	"time"
)

func BenchmarkServing(b *testing.B) {
	cfg := testConfig(b, "bench", nil)
	cfg.BootstrapExpect = 1
	c := startNode(b, cfg)
	waitSingleServer(b, []*Cluster{c}, 10*time.Second)
	// The node starts once; the sub-benchmark runs as often as it needs.
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Serving()
			}
		})
	})
}

func BenchmarkEncodeReport(b *testing.B) {
	r := Report{Service: netip.MustParseAddrPort("10.0.0.12:3479"), RaftAddr: "10.0.0.12:8300", Sessions: 10, Capacity: 100, Seq: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeReport(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeReport(b *testing.B) {
	enc, err := EncodeReport(Report{Service: netip.MustParseAddrPort("10.0.0.12:3479"), RaftAddr: "10.0.0.12:8300", Sessions: 10, Capacity: 100, Seq: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeReport(enc); err != nil {
			b.Fatal(err)
		}
	}
}
