package vip

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeServer records what a Holder asks of the probe responder.
type fakeServer struct {
	conn  *net.UDPConn
	calls []string
}

func (s *fakeServer) Serve(conn *net.UDPConn) { s.conn = conn; s.calls = append(s.calls, "serve") }
func (s *fakeServer) Stop()                   { s.conn = nil; s.calls = append(s.calls, "stop") }

// freePort returns a loopback UDP address nobody is bound to.
func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// listenUDP stands in for IP_FREEBIND in script mode: the address is local.
func listenUDP(ap netip.AddrPort) (*net.UDPConn, error) {
	return net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
}

// TestHolderServesOnlyWhileHeld checks, in every mode that runs without
// root, that Acquire starts the responder on a socket of the balancer
// address and Release stops it, that a failed Acquire starts nothing, and
// what each mode does to the address: bind mode binds it only while held
// (so a second holder cannot take it: the bind fences), script mode runs
// its commands with the term.
func TestHolderServesOnlyWhileHeld(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := func(c *Config) {
		c.Mode = "script"
		c.AcquireScript = `echo "acquire $USHER_VIP $USHER_NODE $USHER_TERM" >> ` + log
		c.ReleaseScript = `echo "release $USHER_TERM" >> ` + log
	}
	tests := []struct {
		name    string
		setup   func(*Config)
		failing bool
		log     string
	}{
		{"bind", func(c *Config) { c.Mode = "bind" }, false, ""},
		{"script", script, false, "acquire 127.0.0.1 n1 7\nrelease 0\n"},
		{"script failing", func(c *Config) { script(c); c.AcquireScript = "exit 3" }, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(log)
			srv := &fakeServer{}
			cfg := Config{Addr: freePort(t), Server: srv, Listen: listenUDP, Node: "n1"}
			tt.setup(&cfg)
			h, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			err = h.Acquire(7)
			if tt.failing {
				if err == nil || len(srv.calls) != 0 {
					t.Fatalf("failing acquire: err %v, responder calls %v", err, srv.calls)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if srv.conn == nil || srv.conn.LocalAddr().(*net.UDPAddr).AddrPort() != cfg.Addr {
				t.Fatalf("responder not serving on %v after Acquire (calls %v)", cfg.Addr, srv.calls)
			}
			if cfg.Mode == "bind" {
				other, _ := New(cfg)
				if err := other.Acquire(8); err == nil {
					t.Error("a second bind holder took the address while the first holds it")
				}
			}
			if err := h.Release(); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(srv.calls, ","); got != "serve,stop" {
				t.Errorf("responder calls %s, want serve,stop", got)
			}
			if cfg.Mode == "bind" {
				c, err := listenUDP(cfg.Addr)
				if err != nil {
					t.Fatalf("address still bound after Release: %v", err)
				}
				c.Close()
			}
			b, _ := os.ReadFile(log)
			if string(b) != tt.log {
				t.Errorf("script log %q, want %q", b, tt.log)
			}
		})
	}
}

func TestNewRefusesUnknownMode(t *testing.T) {
	if _, err := New(Config{Mode: "magic"}); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Errorf("New with vip_mode magic: %v", err)
	}
}
