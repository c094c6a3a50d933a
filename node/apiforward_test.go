package node

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/internal/pki"
)

// farmCA is one farm's CA in a test directory, issuing node files.
type farmCA struct {
	ca  *pki.CA
	dir string
}

// newFarmCA makes the CA of farm prod.
func newFarmCA(t *testing.T) *farmCA {
	t.Helper()
	ca, err := pki.NewCA("prod", time.Now(), 24*time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &farmCA{ca: ca, dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(f.dir, "ca.pem"), ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// files writes node's certificate and key and returns its tls block.
func (f *farmCA) files(t *testing.T, node string) TLSConfig {
	t.Helper()
	cert, key, err := f.ca.Issue(node, time.Now(), time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tc := TLSConfig{
		CAFile:   filepath.Join(f.dir, "ca.pem"),
		CertFile: filepath.Join(f.dir, node+".pem"),
		KeyFile:  filepath.Join(f.dir, node+"-key.pem"),
	}
	if err := os.WriteFile(tc.CertFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tc.KeyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return tc
}

// tweak returns a newTestFarm tweak that gives every node its certificate
// of this farm, the API tokens and api_tls = apiTLS.
func (f *farmCA) tweak(t *testing.T, apiTLS bool) func(i int, c *Config) {
	return func(i int, c *Config) {
		c.Label = "prod"
		c.TLS = f.files(t, c.NodeName)
		c.APITLS = &apiTLS
		c.APIToken, c.APIWriteToken = testReadToken, testWriteToken
	}
}

// sniffer is a TCP listener that records every byte anyone sends it, so a
// test can tell whether a request, or a token, ever reached it.
type sniffer struct {
	net.Listener
	mu    sync.Mutex
	conns int
	got   bytes.Buffer
}

// listenSniffer listens on addr (host:0) and records what arrives.
func listenSniffer(t *testing.T, addr string) *sniffer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &sniffer{Listener: ln}
	t.Cleanup(func() { ln.Close() })
	return s
}

// Accept wraps each connection so that what it reads is recorded.
func (s *sniffer) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.conns++
	s.mu.Unlock()
	return &sniffedConn{Conn: c, s: s}, nil
}

// drain accepts connections and reads them, each for at most a second, as
// a silent host would.
func (s *sniffer) drain() {
	for {
		c, err := s.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
	}
}

// seen returns how many connections came and whether any byte carried a
// token.
func (s *sniffer) seen() (conns int, token bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.got.Bytes()
	return s.conns, bytes.Contains(b, []byte(testWriteToken)) || bytes.Contains(b, []byte(testReadToken))
}

type sniffedConn struct {
	net.Conn
	s *sniffer
}

func (c *sniffedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.s.mu.Lock()
	c.s.got.Write(p[:n])
	c.s.mu.Unlock()
	return n, err
}

// forgeLeaderAPI makes the leader's gossiped load report name api as its
// HTTP API, as a forged report would, and waits until follower holds it.
func forgeLeaderAPI(t *testing.T, leader, follower *Agent, api string) {
	t.Helper()
	setQuiet(leader, true)
	waitFor(t, func() bool {
		leader.cl.Load().SetReport(cluster.Report{Service: leader.ep.Addr(), Capacity: uint32(leader.cfg.Capacity), API: api})
		for _, m := range follower.cl.Load().Members() {
			if m.Name == leader.cfg.NodeName {
				return m.Report.API == api
			}
		}
		return false
	})
}

// drainThrough asks via's API to drain node, with the write token, and
// returns the answer's status (0 when there was none).
func drainThrough(t *testing.T, via *Agent, hc *http.Client, node string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, via.APIURL()+"/v1/drain?node="+node, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(TokenHeader, testWriteToken)
	resp, err := hc.Do(req)
	if err != nil {
		t.Logf("drain through %s: %v", via.cfg.NodeName, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestFarmForwardsOnlyToTheLeader forges the leader's API address in its
// gossiped load report and drains through a follower: the follower must
// never send the drain, or the caller's token, to the forged address. On
// another host than the one raft knows as the leader's, the address is not
// followed at all; over HTTPS, a listener on the leader's own host, even
// one with a certificate of another node of the farm, gets a failed
// handshake and no request. Over plain HTTP the leader's host is trusted
// as a whole (docs/security.md), so that case is not part of it. Last, the
// true address restored, the drain is forwarded and applied, so the
// refusals above are not a forwarding that never works.
func TestFarmForwardsOnlyToTheLeader(t *testing.T) {
	for _, apiTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("api_tls=%t", apiTLS), func(t *testing.T) {
			ca := newFarmCA(t)
			f := newTestFarm(t, 3, 3, ca.tweak(t, apiTLS))
			leader := f.leader()
			fs := f.followers()
			via, target := fs[0], fs[1]
			hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			if apiTLS {
				hc.Transport = &http.Transport{DisableKeepAlives: true, TLSClientConfig: APIClientTLS(verifierOf(t, ca.ca.CertPEM()), "")}
			}

			elsewhere := listenSniffer(t, "127.0.0.2:0")
			go elsewhere.drain()
			forgeries := map[string]*sniffer{"another host": elsewhere}
			if apiTLS {
				// A server on the leader's host with the certificate of
				// another node of the farm.
				insider := listenSniffer(t, "127.0.0.1:0")
				srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					t.Errorf("the forged API got %s %s", r.Method, r.URL)
				}))
				srv.Listener = insider
				srv.Config.ErrorLog = log.New(io.Discard, "", 0)
				srv.TLS = apiServerTLS(pki.NewStore(loadBundle(t, ca.files(t, "n9"))))
				srv.StartTLS()
				t.Cleanup(srv.Close)
				forgeries["the leader's host, another node's certificate"] = insider
			}
			for name, s := range forgeries {
				forgeLeaderAPI(t, leader, via, s.Addr().String())
				status := drainThrough(t, via, hc, target.cfg.NodeName)
				conns, token := s.seen()
				if status == http.StatusOK || token || (name == "another host" && conns > 0) {
					t.Errorf("%s: drain answered %d; the forged API had %d connections, token seen %t", name, status, conns, token)
				}
				if leader.cl.Load().State().Drained[target.cfg.NodeName] {
					t.Fatalf("%s: the target was drained", name)
				}
			}

			setQuiet(leader, false)
			waitFor(t, func() bool { _, api := via.LeaderAPI(); return api == leader.HTTPAddr() })
			if status := drainThrough(t, via, hc, target.cfg.NodeName); status != http.StatusOK {
				t.Fatalf("drain through a follower to the true leader API: %d", status)
			}
			waitFor(t, func() bool { return target.ep.Draining() })
		})
	}
}

// loadBundle reads the TLS files of tc as the agent does.
func loadBundle(t *testing.T, tc TLSConfig) *pki.Bundle {
	t.Helper()
	certPEM, err := os.ReadFile(tc.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(tc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(tc.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := pki.ParseCertificates(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ParseKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pki.NewBundle(caPEM, chain, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}
