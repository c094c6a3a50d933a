//go:build linux

package vip

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

// The netlink VIP changes interfaces, so its test runs in a network namespace
// of its own: the parent test creates the namespace with a veth pair in it
// and runs this test binary again inside it, where the child does the work.
const netnsChildEnv = "USHER_NETLINK_VIP_CHILD"

func TestNetlinkVIP(t *testing.T) {
	if os.Getenv(netnsChildEnv) != "" {
		netlinkVIPChild(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("netlink VIP test needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netlink VIP test needs iproute2's ip command")
	}
	ns := fmt.Sprintf("usher-t-vip-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	_ = exec.Command("ip", "netns", "del", ns).Run() // a leftover of a crashed run
	run("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("-n", ns, "link", "add", "uv0", "type", "veth", "peer", "name", "uv1")
	run("-n", ns, "addr", "add", "198.18.200.1/24", "dev", "uv0")
	run("-n", ns, "addr", "add", "198.18.200.2/24", "dev", "uv1")
	run("-n", ns, "link", "set", "uv0", "up")
	run("-n", ns, "link", "set", "uv1", "up")
	run("-n", ns, "link", "set", "lo", "up")
	// A stale copy of the VIP, as a crashed earlier agent would leave it.
	run("-n", ns, "addr", "add", "198.18.200.100/32", "dev", "uv0")

	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^TestNetlinkVIP$", "-test.v")
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
}

func netlinkVIPChild(t *testing.T) {
	vip := netip.MustParseAddr("198.18.200.100")
	has := func() (bool, int) {
		link, err := netlink.LinkByName("uv0")
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if ip, _ := netip.AddrFromSlice(a.IP); ip.Unmap() == vip {
				return true, a.ValidLft
			}
		}
		return false, 0
	}

	v, err := newNetlink(nil, "uv0", vip, 2*time.Second, 500*time.Millisecond, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := has(); ok {
		t.Fatal("stale copy of the address survived start-up")
	}

	// Listen for the gratuitous ARP on the other end of the veth pair.
	peer, err := net.InterfaceByName("uv1")
	if err != nil {
		t.Fatal(err)
	}
	listener, err := arp.Dial(peer)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()

	if _, err := v.take(7); err != nil {
		t.Fatal(err)
	}
	ok, lft := has()
	if !ok || lft <= 0 || lft > 2 {
		t.Fatalf("after take: present=%v valid_lft=%d, want present with a lifetime of at most 2s", ok, lft)
	}
	_ = listener.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		p, _, err := listener.Read()
		if err != nil {
			t.Fatalf("no gratuitous ARP seen: %v", err)
		}
		if p.SenderIP == vip && p.TargetIP == vip {
			break
		}
	}

	// The holder renews the lifetime: after longer than one lifetime the
	// address is still there.
	time.Sleep(2500 * time.Millisecond)
	if ok, _ := has(); !ok {
		t.Fatal("address expired although its holder renews it")
	}
	if err := v.drop(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := has(); ok {
		t.Fatal("address still present after drop")
	}

	// A holder that dies without releasing: the kernel lifetime removes the
	// address by itself.
	if _, err := v.take(8); err != nil {
		t.Fatal(err)
	}
	v.halt()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, _ := has()
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an unrenewed address did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
