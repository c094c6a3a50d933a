//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// The coturn farm's TURN REST credentials: every coturn shares the secret,
// and turnutils_uclient derives a time-limited user from it (-W).
const (
	turnRealm  = "e2e.usher"
	turnSecret = "usher-e2e-turn-rest-secret"
	turnUser   = "e2e"
	// turnPort is where each coturn listens on its host's address, UDP
	// and TCP; the agents' balancer address uses the same port on the VIP.
	turnPort = vipPort
	// turnRelayPorts is the size of each coturn's relay port range;
	// ranges of different hosts do not overlap.
	turnRelayPorts = 100
)

// coturnBins are the programs of Debian's coturn package.
type coturnBins struct{ server, uclient string }

// ensureCoturn returns coturn's turnserver and turnutils_uclient,
// installing Debian's package first if they are missing (as root; without
// root the test skips).
func ensureCoturn(t *testing.T) coturnBins {
	t.Helper()
	find := func() (coturnBins, error) {
		s, err := exec.LookPath("turnserver")
		if err != nil {
			return coturnBins{}, err
		}
		u, err := exec.LookPath("turnutils_uclient")
		return coturnBins{server: s, uclient: u}, err
	}
	if b, err := find(); err == nil {
		return b
	}
	aptInstall(t, "coturn")
	// Under systemd the package starts its own turnserver on every
	// address; the farm runs its own, in its namespaces only.
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if out, err := exec.Command("systemctl", "disable", "--now", "coturn").CombinedOutput(); err != nil {
			t.Logf("stopping the coturn service the package started: %v: %s", err, out)
		}
	}
	b, err := find()
	if err != nil {
		t.Fatalf("coturn installed but not found: %v", err)
	}
	return b
}

// aptInstall installs Debian packages with apt-get, running apt-get update
// first if a package is unknown. It skips the test when apt-get is
// missing or the process is not root, and fails it when the install
// fails.
func aptInstall(t *testing.T, pkgs ...string) {
	t.Helper()
	if err := tryAptInstall(t, pkgs...); err != nil {
		t.Fatal(err)
	}
}

// tryAptInstall is aptInstall returning the install's failure.
func tryAptInstall(t *testing.T, pkgs ...string) error {
	t.Helper()
	list := strings.Join(pkgs, " ")
	if os.Geteuid() != 0 {
		t.Skipf("%s not installed and installing it needs root; skipping", list)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skipf("%s not installed and apt-get is missing; skipping", list)
	}
	install := func() ([]byte, error) {
		cmd := exec.Command("apt-get", append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	out, err := install()
	if err != nil && strings.Contains(string(out), "Unable to locate") {
		if upd, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
			return fmt.Errorf("apt-get update: %w\n%s", uerr, upd)
		}
		out, err = install()
	}
	if err != nil {
		return fmt.Errorf("apt-get install %s: %w\n%s", list, err, out)
	}
	return nil
}

// coturn is one turnserver process on a farm host.
type coturn struct {
	host *Host
	addr netip.AddrPort // host address, turnPort
	proc *Proc
}

// startCoturn runs turnserver on h's address, port turnPort, UDP and TCP,
// with long-term credentials from the shared TURN REST secret, no TLS, no
// CLI, no database outside dir, relaying on turnRelayPorts ports from
// relayMin, and waits until it answers a Binding from the client host.
func startCoturn(t *testing.T, bin string, h, client *Host, dir string, relayMin int) *coturn {
	t.Helper()
	addr := h.Addr.String()
	args := []string{
		"-n", // no configuration file
		"--listening-ip=" + addr, "--relay-ip=" + addr,
		"--listening-port=" + strconv.Itoa(turnPort),
		"--min-port=" + strconv.Itoa(relayMin), "--max-port=" + strconv.Itoa(relayMin+turnRelayPorts-1),
		"--lt-cred-mech", "--use-auth-secret", "--static-auth-secret=" + turnSecret, "--realm=" + turnRealm,
		"--no-tls", "--no-dtls", "--no-cli", "--no-rfc5780",
		"--userdb=" + filepath.Join(dir, h.Name+"-turndb"),
		"--pidfile=" + filepath.Join(dir, h.Name+"-turnserver.pid"),
		"--log-file=stdout", "--simple-log",
	}
	c := &coturn{host: h, addr: netip.AddrPortFrom(h.Addr, turnPort)}
	c.proc = h.StartIn(t, filepath.Join(dir, "logs"), bin, args...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := stunBinding(client, c.addr, 200*time.Millisecond); err == nil {
			return c
		} else if time.Now().After(deadline) {
			t.Fatalf("coturn on %s does not answer a Binding: %v\n%s", h.Name, err, tail(c.proc.Log(), 20))
		}
		if done, _ := c.proc.Exited(); done {
			t.Fatalf("coturn on %s exited:\n%s", h.Name, tail(c.proc.Log(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stunBinding sends one stock Binding request from h to addr and waits up
// to timeout for its success response.
func stunBinding(h *Host, addr netip.AddrPort, timeout time.Duration) error {
	return h.Do(func() error {
		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return err
		}
		defer conn.Close()
		req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		if _, err := conn.Write(req.Raw); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(timeout))
		buf := make([]byte, 1500)
		n, err := conn.Read(buf)
		if err != nil {
			return err
		}
		res := &stun.Message{Raw: buf[:n]}
		if err := res.Decode(); err != nil {
			return err
		}
		if res.Type != stun.BindingSuccess || res.TransactionID != req.TransactionID {
			return fmt.Errorf("answer %v, want a Binding success", res.Type)
		}
		return nil
	})
}

// allocateConn sends stock TURN Allocate requests from one UDP socket on
// the client host, as a TURN client starts an allocation.
type allocateConn struct{ conn *net.UDPConn }

// newAllocateConn opens the socket on h.
func newAllocateConn(t *testing.T, h *Host) *allocateConn {
	t.Helper()
	var conn *net.UDPConn
	if err := h.Do(func() (err error) {
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(h.Addr, 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &allocateConn{conn: conn}
}

// errNoRedirect is what allocate returns for an answer that is not a 300
// with ALTERNATE-SERVER.
var errNoRedirect = errors.New("answer is not a 300 naming an alternate server")

// allocate sends one stock Allocate to dst and returns the ALTERNATE-SERVER
// of its 300 answer, waiting up to timeout.
func (a *allocateConn) allocate(dst netip.AddrPort, timeout time.Duration) (netip.AddrPort, error) {
	req := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}, stun.Fingerprint)
	if _, err := a.conn.WriteToUDPAddrPort(req.Raw, dst); err != nil {
		return netip.AddrPort{}, err
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for {
		_ = a.conn.SetReadDeadline(deadline)
		n, _, err := a.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return netip.AddrPort{}, err
		}
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if res.Decode() != nil || res.TransactionID != req.TransactionID {
			continue // a late answer to an earlier request
		}
		var code stun.ErrorCodeAttribute
		var alt stun.AlternateServer
		if res.Type.Class != stun.ClassErrorResponse || code.GetFrom(res) != nil || code.Code != stun.CodeTryAlternate ||
			alt.GetFrom(res) != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: %v", errNoRedirect, res)
		}
		ip, ok := netip.AddrFromSlice(alt.IP)
		if !ok {
			return netip.AddrPort{}, fmt.Errorf("%w: bad address %v", errNoRedirect, alt.IP)
		}
		return netip.AddrPortFrom(ip.Unmap(), uint16(alt.Port)), nil
	}
}

// uclientRun is the outcome of one turnutils_uclient run.
type uclientRun struct {
	err error
	out string
	dur time.Duration
}

// runUclient runs turnutils_uclient on h against server (an address the
// balancer answers, or a coturn's) over UDP, or TCP with tcp: one client
// pair relaying n messages to each other through their allocations (-y,
// so it needs no peer program). It fails unless the program exits 0 and
// reports no lost packets.
func runUclient(h *Host, bin string, server netip.AddrPort, tcp bool, n int, timeout time.Duration) uclientRun {
	args := []string{"-y", "-c", "-m", "1", "-n", strconv.Itoa(n), "-l", "120",
		"-u", turnUser, "-W", turnSecret, "-p", strconv.Itoa(int(server.Port()))}
	if tcp {
		args = append(args, "-t")
	}
	args = append(args, server.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	b, err := h.Command(ctx, bin, args...).CombinedOutput()
	r := uclientRun{err: err, out: string(b), dur: time.Since(start)}
	if r.err == nil {
		r.err = uclientLoss(r.out)
	}
	return r
}

// uclientLoss checks turnutils_uclient's summary: it must have relayed
// messages and lost none.
func uclientLoss(out string) error {
	var sent, recv int
	lost := ""
	for _, line := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(line, "start_mclient: tot_send_msgs="); ok {
			if _, err := fmt.Sscanf(rest, "%d, tot_recv_msgs=%d", &sent, &recv); err != nil {
				return fmt.Errorf("uclient summary %q: %w", line, err)
			}
		}
		if _, rest, ok := strings.Cut(line, "Total lost packets "); ok {
			lost, _, _ = strings.Cut(strings.TrimSpace(rest), " ")
		}
	}
	switch {
	case lost == "":
		return errors.New("uclient printed no summary")
	case lost != "0" || recv < sent:
		return fmt.Errorf("uclient lost packets: %s lost, %d sent, %d received", lost, sent, recv)
	case recv == 0:
		return errors.New("uclient relayed nothing")
	}
	return nil
}

// authAllocate makes one allocation on the coturn at dst as a TURN client
// does: an Allocate, coturn's 401 with REALM and NONCE, then the Allocate
// again with the TURN REST user's long-term credentials. The allocation
// lives until it expires (the socket never refreshes nor frees it).
func (a *allocateConn) authAllocate(dst netip.AddrPort, user, pass string, timeout time.Duration) error {
	transport := stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}
	allocate := stun.NewType(stun.MethodAllocate, stun.ClassRequest)
	res, err := a.exchange(stun.MustBuild(stun.TransactionID, allocate, transport, stun.Fingerprint), dst, timeout)
	if err != nil {
		return err
	}
	var realm stun.Realm
	var nonce stun.Nonce
	if realm.GetFrom(res) != nil || nonce.GetFrom(res) != nil {
		return fmt.Errorf("first answer is not a 401 with realm and nonce: %v", res)
	}
	req, err := stun.Build(stun.TransactionID, allocate, transport, stun.NewUsername(user), realm, nonce,
		stun.NewLongTermIntegrity(user, realm.String(), pass), stun.Fingerprint)
	if err != nil {
		return err
	}
	if res, err = a.exchange(req, dst, timeout); err != nil {
		return err
	}
	if res.Type.Class != stun.ClassSuccessResponse {
		return fmt.Errorf("authenticated Allocate answered %v", res)
	}
	return nil
}

// exchange sends req to dst and returns the answer carrying its
// transaction ID, waiting up to timeout.
func (a *allocateConn) exchange(req *stun.Message, dst netip.AddrPort, timeout time.Duration) (*stun.Message, error) {
	if _, err := a.conn.WriteToUDPAddrPort(req.Raw, dst); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for {
		_ = a.conn.SetReadDeadline(deadline)
		n, _, err := a.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil, err
		}
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if res.Decode() == nil && res.TransactionID == req.TransactionID {
			return res, nil
		}
	}
}
