//go:build linux

package e2e

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/wire"
)

// chaosService is the service every agent of the service-death scenario
// offers, backed by a service server on its host.
const chaosService = "media"

// serviceDeathBound is how long after a service's server died the balancer
// may still name it (issue 14: a 250 ms check interval, 2 failures, no new
// client sent to a dead server later than 1.5 s after it died).
const serviceDeathBound = 1500 * time.Millisecond

// serviceWatch is how long service-death keeps probing after a kill before
// it takes the last answer naming the dead server: twice the bound, so
// that a server named too late is seen naming it.
const serviceWatch = 2 * serviceDeathBound

// serviceConfig is an agent's configuration file for service-death:
// service chaosService at addr, its load the agent's own session table (a
// source that needs nothing from the server), checked by a STUN Binding
// every 250 ms that fails after 200 ms, critical after 2 failures.
func serviceConfig(addr netip.AddrPort) string {
	return fmt.Sprintf(`service %[1]q {
  address  = %[2]q
  # Every probe is a new client: hundreds of thousands must not fill it.
  capacity = 100000000
  load {
    source = "sessions"
  }
  check "alive" {
    type                     = "stun"
    address                  = %[2]q
    interval                 = "250ms"
    timeout                  = "200ms"
    failures_before_critical = 2
  }
}
`, chaosService, addr.String())
}

// newServiceCluster is newChaosCluster with every agent offering service
// chaosService at servicePort on its own host address. The servers are
// not started: serviceDeath starts them.
func newServiceCluster(t *testing.T, netns bool, profile string) *chaosCluster {
	t.Helper()
	c := prepareChaosCluster(t, chaosTopology(t, netns, 3), netns, profile)
	for _, a := range c.agents {
		conf := filepath.Join(c.dir, a.name+".service.hcl")
		addr := netip.AddrPortFrom(a.host.Addr, servicePort)
		if err := os.WriteFile(conf, []byte(serviceConfig(addr)), 0o600); err != nil {
			t.Fatal(err)
		}
		c.creds[a.name] = append(c.creds[a.name], "-config", conf)
	}
	c.launch()
	return c
}

// serviceProbe is a padded Usher probe with a fresh session for service
// svc (USHER-SERVICE).
func serviceProbe(svc string) *probeKind {
	return &probeKind{name: "probe-" + svc, build: func(enc *wire.Encoder, buf []byte, tx [stun.TransactionIDSize]byte) []byte {
		p := wire.Probe{TxID: tx, Service: svc, PadTo: wire.ProbeSize}
		rand.Read(p.Session[:])
		out, _ := enc.AppendProbe(buf, &p)
		return out
	}}
}

// serviceDeath starts a service server on every agent's host, sends a
// probe for the service to the VIP every probeEvery, and cfg.reps times
// SIGKILLs one server (each host's in turn, the leader's among them) while
// its agent lives on: the last redirect naming the dead server must
// arrive within serviceDeathBound of the kill (death-to-last-named, timed
// by the answer's arrival against the clock read before the kill, so an
// upper bound). The server then restarts on its address and must be named
// again (restart-to-named). Sessions of the default service must not
// notice.
func serviceDeath(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig) {
	var servers []*serviceServer
	for _, a := range c.agents {
		s := &serviceServer{c: c, host: a.host, addr: netip.AddrPortFrom(a.host.Addr, servicePort)}
		s.start()
		servers = append(servers, s)
	}
	// Until its health checks pass no server offers the service, and the
	// balancer rightly refuses its probes (508): the prober starts once
	// the leader offers them all.
	var addrs []netip.AddrPort
	for _, s := range servers {
		addrs = append(addrs, s.addr)
	}
	c.waitOffered(c.waitHealthy(30*time.Second), chaosService, addrs, 30*time.Second)
	vip := netip.AddrPortFrom(c.topo.VIP(), vipPort)
	pr := startProberTo(c, probeEvery, []target{{to: vip, kind: serviceProbe(chaosService), vip: true}})
	ss := openSessions(c, 3)
	for rep := range cfg.reps {
		l := c.waitHealthy(30 * time.Second)
		c.settle(ss, answerTimeout)
		from := Monotonic()
		for _, s := range servers {
			if _, ok := pr.namedAfter(s.addr, from, answerTimeout); !ok {
				t.Fatalf("rep %d: the balancer names no %s on %s within %v", rep, chaosService, s.host.Name, answerTimeout)
			}
		}
		victim := servers[rep%len(servers)]
		t0 := victim.kill()
		time.Sleep(serviceWatch)
		last, n := pr.lastNamed(victim.addr, t0)
		res.observe("death-to-last-named", last)
		t.Logf("rep %d: %s's server killed (leader %s): named %d times after, the last %v after the kill",
			rep, victim.host.Name, l.name, n, last.Round(time.Millisecond))
		if last > serviceDeathBound {
			res.violation("named-after-death")
			t.Errorf("rep %d: the dead server on %s was named %v after its death (bound %v)", rep, victim.host.Name, last, serviceDeathBound)
		}
		c.checkUndisturbed(ss, t0, Monotonic(), res)
		tr := victim.start()
		if a, ok := pr.namedAfter(victim.addr, tr, answerTimeout); ok {
			res.observe("restart-to-named", a.recv-tr)
		} else {
			res.violation("not-named-again")
			t.Errorf("rep %d: the restarted server on %s was not named within %v", rep, victim.host.Name, answerTimeout)
		}
		res.repDone()
	}
	c.verify(pr, res)
}

// namedAfter returns the first redirect to a request sent at or after
// from that names server, waiting up to timeout for it.
func (p *prober) namedAfter(server netip.AddrPort, from, timeout time.Duration) (answer, bool) {
	return p.firstWhere(timeout, func(a answer) bool { return a.sent >= from && a.redirect && a.server == server })
}

// lastNamed returns how long after t0 the last redirect naming server
// arrived (0 if none did since t0) and how many arrived since t0.
func (p *prober) lastNamed(server netip.AddrPort, t0 time.Duration) (time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var last time.Duration
	n := 0
	for _, a := range p.answers {
		if a.recv >= t0 && a.redirect && a.server == server {
			last, n = max(last, a.recv-t0), n+1
		}
	}
	return last, n
}
