package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/usherlb/usher/client"
	"github.com/usherlb/usher/wire"
)

// probeResult is one probe's outcome, printed by `usher probe -json`.
type probeResult struct {
	Server string  `json:"server"`
	Term   uint64  `json:"term"`
	RTTms  float64 `json:"rtt_ms"`
}

// runProbe implements `usher probe`.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("probe", "[-json] [-count N] [-timeout D] ADDR",
		`Send Usher probes to the balancer address ADDR (host:port) and print, for
each, the assigned server, the answer's term and the round-trip time. Each
probe is a fresh session, retransmitted until answered or -timeout passes
(package client's Prober).`, stderr)
	asJSON := fs.Bool("json", false, `print one JSON object per probe: {"server":..., "term":..., "rtt_ms":...}`)
	count := fs.Int("count", 1, "number of probes to send")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for each probe's answer")
	interval := fs.Duration("interval", 0, "pause between probes")
	service := fs.String("service", "", "service to ask for (USHER-SERVICE)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if *count < 1 || *timeout <= 0 || len(*service) > wire.MaxServiceLen {
		fmt.Fprintln(stderr, "usher probe: -count must be at least 1, -timeout positive, -service at most 64 bytes")
		return 2
	}
	dst, err := resolveUDP(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "usher probe: %v\n", err)
		return 2
	}
	opts := client.Options{Service: *service, RTO: probeRTO, Retries: probeRetries}
	failed := 0
	for i := range *count {
		if i > 0 && *interval > 0 {
			select {
			case <-ctx.Done():
				return 1
			case <-time.After(*interval):
			}
		}
		res, err := probeOnce(ctx, dst, opts, *timeout)
		if err != nil {
			fmt.Fprintf(stderr, "usher probe: %v: %v\n", dst, err)
			failed++
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if *asJSON {
			b, _ := json.Marshal(res)
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			fmt.Fprintf(stdout, "server=%s term=%d rtt=%sms\n", res.Server, res.Term, strconv.FormatFloat(res.RTTms, 'f', 2, 64))
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// The retransmission of `usher probe`: 100 ms doubling after each
// transmission, for as long as -timeout allows.
const (
	probeRTO     = 100 * time.Millisecond
	probeRetries = 30
)

// probeOnce probes dst for a fresh session (a client.Prober of its own) and
// returns the redirect that answers it within timeout.
func probeOnce(ctx context.Context, dst netip.AddrPort, opts client.Options, timeout time.Duration) (probeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	a, err := client.Probe(ctx, dst, opts)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return probeResult{}, fmt.Errorf("no answer within %v", timeout)
	case errors.Is(err, client.ErrRefused):
		return probeResult{}, fmt.Errorf("%w: is this a balancer address?", err)
	case err != nil:
		return probeResult{}, err
	}
	return probeResult{
		Server: a.Server.String(),
		Term:   a.Term,
		RTTms:  float64(a.RTT.Microseconds()) / 1000,
	}, nil
}

// resolveUDP parses host:port, resolving a host name.
func resolveUDP(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	ua, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
