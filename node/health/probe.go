package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/pion/stun/v3"
)

// maxDatagram is the largest reply a stun or udp check reads.
const maxDatagram = 1500

// maxBody is how much of an http check's response body is read (and
// discarded) so that the connection closes cleanly.
const maxBody = 64 << 10

// maxRedirects is how many redirects an http check follows.
const maxRedirects = 3

// probe runs one check once, within ctx, and returns nil when it passes.
func probe(ctx context.Context, c *Check) error {
	switch c.Kind {
	case KindSTUN:
		return probeSTUN(ctx, c.Address)
	case KindUDP:
		return probeUDP(ctx, c.Address, c.Send, c.Expect)
	case KindTCP:
		return probeTCP(ctx, c.Address)
	case KindHTTP:
		return probeHTTP(ctx, c.URL)
	case KindCommand:
		return probeCommand(ctx, c.Command, c.Shell)
	}
	return fmt.Errorf("unknown kind %q", c.Kind)
}

// dialUDP opens a connected UDP socket to addr whose deadline is ctx's,
// so an ICMP port unreachable shows up as a read error.
func dialUDP(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			conn.Close()
			return nil, fmt.Errorf("set deadline: %w", err)
		}
	}
	// Cancelling ctx (Close of the Checker) ends a blocked read at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return &stopConn{Conn: conn, stop: stop}, nil
}

type stopConn struct {
	net.Conn
	stop func() bool
}

func (c *stopConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// probeSTUN sends a Binding request and waits for the answer carrying its
// transaction ID: a Binding success, or an error response with code 401
// (a TURN server such as coturn asking for credentials), passes. Datagrams
// that are not STUN or carry another transaction ID are skipped; if no
// answer comes, the last of them is the error.
func probeSTUN(ctx context.Context, addr string) error {
	conn, err := dialUDP(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if _, err := conn.Write(req.Raw); err != nil {
		return err
	}
	buf := make([]byte, maxDatagram)
	var skipped error
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if skipped != nil && isTimeout(err) {
				return skipped
			}
			return err
		}
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if err := res.Decode(); err != nil {
			skipped = fmt.Errorf("not a stun message: %w", err)
			continue
		}
		if res.TransactionID != req.TransactionID {
			skipped = errors.New("answer with another transaction id")
			continue
		}
		return stunVerdict(res)
	}
}

// stunVerdict judges the answer to a Binding request.
func stunVerdict(res *stun.Message) error {
	switch res.Type {
	case stun.BindingSuccess:
		return nil
	case stun.BindingError:
		var code stun.ErrorCodeAttribute
		if err := code.GetFrom(res); err != nil {
			return fmt.Errorf("error response without error code: %w", err)
		}
		if code.Code == stun.CodeUnauthorized {
			return nil
		}
		return fmt.Errorf("error response %d %s", code.Code, code.Reason)
	}
	return fmt.Errorf("unexpected answer %s", res.Type)
}

// probeUDP sends payload and passes on a reply that starts with expect.
func probeUDP(ctx context.Context, addr string, payload, expect []byte) error {
	conn, err := dialUDP(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write(payload); err != nil {
		return err
	}
	buf := make([]byte, maxDatagram)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(buf[:n], expect) {
		return fmt.Errorf("reply %q does not start with %q", truncate(buf[:n], 32), expect)
	}
	return nil
}

// probeTCP passes when addr accepts a connection.
func probeTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// httpClient follows at most maxRedirects redirects and keeps no idle
// connections, so a check opens a fresh one each run and leaves nothing
// behind when its Checker closes.
var httpClient = &http.Client{
	Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
	},
	CheckRedirect: func(_ *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return fmt.Errorf("more than %d redirects", maxRedirects)
		}
		return nil
	},
}

// probeHTTP GETs url and passes on a 2xx status; the body is ignored.
func probeHTTP(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("User-Agent", "usher-health-check")
	res, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxBody))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("status %s", res.Status)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
