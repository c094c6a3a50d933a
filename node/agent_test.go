package node

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/client"
)

// testConfig is a dev-like configuration on free loopback ports.
func testConfig() Config {
	c := DevConfig()
	c.NodeName = "test"
	c.SessionAddr = "127.0.0.1:0"
	c.Bind = "127.0.0.1:0"
	c.VIP = "127.0.0.1:0"
	c.HTTP = "127.0.0.1:0"
	c.KeepaliveInterval = "50ms"
	c.DeadAfter = "2s"
	c.SessionTTL = "10s"
	c.RequireTicket = true
	return c
}

func getJSON(t *testing.T, hc *http.Client, url string, v any) int {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); v != nil && ct != "application/json" {
		t.Errorf("%s: content type %q", url, ct)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode
}

// startAgent starts an agent and waits until it answers probes.
func startAgent(t *testing.T, c Config) *Agent {
	t.Helper()
	a, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAgentEndToEnd(t *testing.T) {
	a := startAgent(t, testConfig())
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	base := "http://" + a.HTTPAddr()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.Dial(ctx, a.VIPAddr(), client.Options{Events: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Server() != a.SessionAddr() {
		t.Fatalf("assigned %v, want %v", s.Server(), a.SessionAddr())
	}
	if s.Term() != a.Term() || s.Term() == 0 {
		t.Errorf("term %d, agent serves in %d", s.Term(), a.Term())
	}
	// Stock STUN and TURN requests to the balancer address get a 300.
	stock, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(a.VIPAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer stock.Close()
	for _, m := range []*stun.Message{
		stun.MustBuild(stun.TransactionID, stun.BindingRequest),
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}),
	} {
		stock.Write(m.Raw)
		stock.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1500)
		n, err := stock.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		ans := &stun.Message{Raw: buf[:n]}
		var code stun.ErrorCodeAttribute
		var alt stun.AlternateServer
		if err := ans.Decode(); err != nil || ans.Type.Method != m.Type.Method || code.GetFrom(ans) != nil || code.Code != stun.CodeTryAlternate ||
			alt.GetFrom(ans) != nil || net.JoinHostPort(alt.IP.String(), strconv.Itoa(alt.Port)) != a.SessionAddr().String() {
			t.Errorf("%v: answer %v %v %v", m.Type, ans, code, alt)
		}
	}

	// Keepalives with the ticket are accepted: the session appears.
	waitFor(t, func() bool { n, _ := a.ep.Load(); return n == 1 && s.Stats().KeepalivesAnswered > 0 })

	var st Status
	if code := getJSON(t, hc, base+"/v1/status", &st); code != 200 || st.Node != "test" || st.Role != "leader" || st.Term != a.Term() || st.Leader != "test" || st.VIPHolder != "test" || st.Members != 1 ||
		!st.Serving || st.Sessions != 1 || st.Accepted != 1 || st.SessionAddr != a.SessionAddr().String() || st.Version != Version {
		t.Errorf("status %d %+v", code, st)
	}
	var view struct {
		Policy string
		Nodes  []viewNode
	}
	waitFor(t, func() bool {
		getJSON(t, hc, base+"/v1/view", &view)
		return len(view.Nodes) == 1 && view.Nodes[0].Sessions == 1
	})
	if view.Policy != "least-loaded" || view.Nodes[0].ID != "test" || view.Nodes[0].Addr != a.SessionAddr().String() {
		t.Errorf("view %+v", view)
	}
	var sessions struct {
		Count    int
		Sessions []sessionJSON
	}
	getJSON(t, hc, base+"/v1/sessions", &sessions)
	if sessions.Count != 1 || len(sessions.Sessions) != 1 || !sessions.Sessions[0].Ticketed ||
		sessions.Sessions[0].Client != s.LocalAddr().String() && !strings.HasSuffix(sessions.Sessions[0].Client, ":"+itoa(s.LocalAddr().Port())) {
		t.Errorf("sessions %+v (client %v)", sessions, s.LocalAddr())
	}
	var health map[string]bool
	if code := getJSON(t, hc, base+"/v1/health", &health); code != 200 || !health["ok"] {
		t.Errorf("health %d %v", code, health)
	}
	var e map[string]string
	if code := getJSON(t, hc, base+"/v1/nope", &e); code != 404 || e["error"] == "" {
		t.Errorf("unknown path %d %v", code, e)
	}
	if resp, err := hc.Post(base+"/v1/status", "text/plain", nil); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST /v1/status: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"usher_probes_answered", "usher_keepalives_answered", "usher_sessions",
		"go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Drain through the API: the client hears USHER-DRAIN.
	for _, tc := range []struct {
		url  string
		code int
	}{{"/v1/drain", 400}, {"/v1/drain?node=other", 404}, {"/v1/drain?node=test&enable=maybe", 400}, {"/v1/drain?node=test", 200}} {
		req, _ := http.NewRequest(http.MethodPut, base+tc.url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("PUT %s: %d, want %d", tc.url, resp.StatusCode, tc.code)
		}
	}
	waitFor(t, func() bool { return a.Status().Draining })
	deadline := time.After(10 * time.Second)
	for drained := false; !drained; {
		select {
		case ev := <-s.Events():
			drained = ev.Kind == client.Draining
		case <-deadline:
			t.Fatal("no Draining event")
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, base+"/v1/drain?node=test", nil)
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("undrain: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// The undrain goes through Raft; the endpoint follows the agreed state.
	waitFor(t, func() bool { return !a.Status().Draining })

	s.Close()
	if err := a.Close(); err != nil {
		t.Error(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestAgentRefusesBadConfig(t *testing.T) {
	c := testConfig()
	c.Capacity = -1
	if _, err := New(c, nil); err == nil || !strings.Contains(err.Error(), "capacity") {
		t.Errorf("got %v", err)
	}
	// A port in use fails cleanly and leaks nothing.
	a := startAgent(t, testConfig())
	c = testConfig()
	c.SessionAddr = a.SessionAddr().String()
	if _, err := New(c, nil); err == nil {
		t.Error("second agent bound the same session address")
	}
	c = testConfig()
	c.HTTP = a.HTTPAddr()
	if _, err := New(c, nil); err == nil {
		t.Error("second agent bound the same HTTP address")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func itoa(n uint16) string { return strconv.Itoa(int(n)) }

func TestAgentScriptVIP(t *testing.T) {
	dir := t.TempDir()
	log := dir + "/vip.log"
	c := testConfig()
	c.HTTP = ""
	c.VIPMode = "script"
	c.VIPAcquireScript = `echo "acquire $USHER_VIP $USHER_NODE $USHER_TERM" >> ` + log
	c.VIPReleaseScript = `echo "release $USHER_VIP" >> ` + log
	a := startAgent(t, c)
	term := a.Term()
	if !a.VIPAddr().IsValid() || a.HTTPAddr() != "" {
		t.Errorf("vip %v http %q", a.VIPAddr(), a.HTTPAddr())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "acquire 127.0.0.1 test "+strconv.FormatUint(term, 10)+"\nrelease 127.0.0.1\n"; got != want {
		t.Errorf("script log %q, want %q", got, want)
	}

	// An acquire script that fails: the node never answers probes.
	c.VIPAcquireScript = "exit 3"
	b2, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := b2.WaitServing(ctx); err == nil {
		t.Error("serving although the acquire script fails")
	}
}
