package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/pion/stun/v3"

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
probe is a fresh session, retransmitted until answered or -timeout passes.`, stderr)
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
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		fmt.Fprintf(stderr, "usher probe: %v\n", err)
		return 1
	}
	defer conn.Close()

	failed := 0
	for i := range *count {
		if i > 0 && *interval > 0 {
			select {
			case <-ctx.Done():
				return 1
			case <-time.After(*interval):
			}
		}
		res, err := probeOnce(ctx, conn, dst, *service, *timeout)
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

// probeOnce runs one probe transaction: it sends a probe for a fresh
// session, retransmits it with a doubling timeout, and returns the first
// redirect from dst that answers it.
func probeOnce(ctx context.Context, conn *net.UDPConn, dst netip.AddrPort, service string, timeout time.Duration) (probeResult, error) {
	p := wire.Probe{Service: service, PadTo: wire.ProbeSize}
	rand.Read(p.TxID[:])
	rand.Read(p.Session[:])
	var enc wire.Encoder
	pkt, err := enc.AppendProbe(nil, &p)
	if err != nil {
		return probeResult{}, err
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var (
		dec  wire.Decoder
		resp wire.Response
		buf  = make([]byte, 1500)
		rto  = 100 * time.Millisecond
	)
	for {
		sent := time.Now()
		if !sent.Before(deadline) {
			return probeResult{}, fmt.Errorf("no answer within %v", timeout)
		}
		if _, err := conn.WriteToUDPAddrPort(pkt, dst); err != nil {
			return probeResult{}, err
		}
		wait := sent.Add(rto)
		if wait.After(deadline) {
			wait = deadline
		}
		rto *= 2
		for {
			if ctx.Err() != nil {
				return probeResult{}, ctx.Err()
			}
			rd := time.Now().Add(100 * time.Millisecond)
			if wait.Before(rd) {
				rd = wait
			}
			conn.SetReadDeadline(rd)
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					if time.Now().Before(wait) {
						continue // wake up to check ctx
					}
					break // retransmit
				}
				return probeResult{}, err
			}
			rtt := time.Since(sent)
			if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != dst ||
				dec.DecodeResponse(buf[:n], &resp) != nil || resp.TxID != p.TxID {
				continue // not our answer
			}
			switch {
			case resp.Success:
				return probeResult{}, errors.New("answered with a success, not a redirect: is this a session endpoint rather than a balancer address?")
			case resp.Code != stun.CodeTryAlternate || !resp.Server.IsValid():
				return probeResult{}, fmt.Errorf("answered with error %d, not a redirect", resp.Code)
			}
			return probeResult{
				Server: resp.Server.String(),
				Term:   resp.Term,
				RTTms:  float64(rtt.Microseconds()) / 1000,
			}, nil
		}
	}
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
