//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// probeInterval is how often Reachable resends its datagram.
const probeInterval = 50 * time.Millisecond

// Reachable reports whether a UDP datagram from src's address gets to dst's
// address and the echo comes back within timeout. It opens a short-lived
// echo socket inside dst's namespace and a sender inside src's (no ping
// binary needed), resending every 50 ms to ride out ARP resolution. A lost
// or refused datagram means false; err is only for failures to set up the
// sockets. Both directions must work for true.
func Reachable(src, dst *Host, timeout time.Duration) (bool, error) {
	var echo *net.UDPConn
	if err := dst.Do(func() (err error) {
		echo, err = net.ListenUDP("udp4", &net.UDPAddr{IP: dst.Addr.AsSlice()})
		return err
	}); err != nil {
		return false, fmt.Errorf("e2e: echo socket on %s: %w", dst.Name, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer echo.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			n, from, err := echo.ReadFromUDP(buf)
			if err != nil {
				return // closed
			}
			_, _ = echo.WriteToUDP(buf[:n], from)
		}
	}()

	var conn *net.UDPConn
	if err := src.Do(func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: src.Addr.AsSlice()})
		return err
	}); err != nil {
		return false, fmt.Errorf("e2e: sender socket on %s: %w", src.Name, err)
	}
	defer conn.Close()

	to := echo.LocalAddr().(*net.UDPAddr)
	msg := fmt.Appendf(nil, "e2e %s->%s", src.Name, dst.Name)
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 64)
	for time.Now().Before(deadline) {
		// A send error (EINVAL from a blackhole route, EHOSTUNREACH) is
		// just another lost probe.
		_, _ = conn.WriteToUDP(msg, to)
		_ = conn.SetReadDeadline(earliest(deadline, time.Now().Add(probeInterval)))
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				// ICMP errors surface here on some kernels; keep waiting
				// out the interval so the loop does not spin.
				time.Sleep(time.Until(earliest(deadline, time.Now().Add(probeInterval))))
				break
			}
			if from.AddrPort().Addr().Unmap() == dst.Addr && from.Port == to.Port && bytes.Equal(buf[:n], msg) {
				return true, nil
			}
		}
	}
	return false, nil
}

// earliest returns the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
