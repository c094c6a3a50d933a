//go:build linux

package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // G505: TURN REST credentials are HMAC-SHA1 by definition
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BrowserEnv, set to "0", skips TestTURN's browser part (and the install
// of the browsers it may need).
const BrowserEnv = "USHER_E2E_BROWSER"

// browserPort is where the test serves the WebRTC page, on the client
// host's address.
const browserPort = 8088

// browserTimeout bounds the whole page: the browser's start and every case.
const browserTimeout = 45 * time.Second

// browserCase is one pair of peer connections the page opens, with its
// ICE servers: a data channel between the two must open over relay
// candidates only (iceTransportPolicy "relay").
type browserCase struct {
	Name string   `json:"name"`
	URLs []string `json:"urls"`
	// Proto is the relay protocol the selected local candidate must use.
	Proto string `json:"proto"`
}

// browserResult is what the page reports for one case.
type browserResult struct {
	Name          string   `json:"name"`
	Error         string   `json:"error"`
	Echo          string   `json:"echo"`
	CandidateType string   `json:"type"`
	RelayProtocol string   `json:"relayProtocol"`
	Address       string   `json:"address"`
	Candidates    []string `json:"candidates"`
}

// browserPage is the page: for each case two RTCPeerConnections in the
// page, signalled directly, a data channel from the first that the second
// echoes, and the selected pair's local candidate from getStats; then it
// POSTs the results to /result.
const browserPage = `<!doctype html>
<html><body><pre id="out">running</pre><script>
const cfg = %s;
async function runCase(c) {
  const conf = {iceServers: [{urls: c.urls, username: cfg.username, credential: cfg.credential}], iceTransportPolicy: 'relay'};
  const a = new RTCPeerConnection(conf), b = new RTCPeerConnection(conf);
  const cands = [];
  a.onicecandidate = e => { if (e.candidate) { cands.push(e.candidate.candidate); b.addIceCandidate(e.candidate); } };
  b.onicecandidate = e => { if (e.candidate) { a.addIceCandidate(e.candidate); } };
  b.ondatachannel = e => { e.channel.onmessage = m => e.channel.send('echo:' + m.data); };
  const dc = a.createDataChannel('usher');
  const echo = new Promise((resolve, reject) => {
    dc.onopen = () => dc.send(c.name);
    dc.onmessage = m => resolve(m.data);
    setTimeout(() => reject(new Error('no echo within 15 s; ice ' + a.iceConnectionState + ', gathering ' + a.iceGatheringState)), 15000);
  });
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  const r = {name: c.name, candidates: cands};
  try {
    r.echo = await echo;
    const stats = await a.getStats();
    // The selected pair: chromium names it in its transport stats,
    // firefox (which has none) marks the pair selected.
    let pair;
    stats.forEach(s => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
      if (s.type === 'candidate-pair' && s.selected && !pair) pair = s;
    });
    const l = pair && stats.get(pair.localCandidateId);
    if (l) { r.type = l.candidateType; r.relayProtocol = l.relayProtocol; r.address = l.address + ':' + l.port; }
  } catch (e) { r.error = String(e); }
  a.close(); b.close();
  return r;
}
(async () => {
  const results = [];
  for (const c of cfg.cases) {
    try { results.push(await runCase(c)); } catch (e) { results.push({name: c.name, error: String(e)}); }
  }
  await fetch('/result', {method: 'POST', body: JSON.stringify(results)});
  document.getElementById('out').textContent = 'done';
})();
</script></body></html>
`

// turnRESTCredential returns a TURN REST user and password for the
// shared secret, valid for an hour: the user is "<expiry>:<name>", the
// password base64(HMAC-SHA1(secret, user)).
func turnRESTCredential(secret, name string) (user, password string) {
	user = strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + ":" + name
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(user))
	return user, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// browser is a headless browser the page runs in.
type browser struct {
	name string
	pkg  string   // Debian's package
	bins []string // program names to look for, the package's first
	// args returns the command line that opens url with its profile in
	// dir; it starts with the program to run.
	args func(bin, url, dir string) []string
}

// browsers are the browsers TestTURN/browser tries, each in a subtest of
// its own.
var browsers = []browser{
	{name: "chromium", pkg: "chromium", bins: []string{"chromium", "chromium-browser"}, args: func(bin, url, dir string) []string {
		return []string{bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
			"--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
			"--user-data-dir=" + dir, url}
	}},
	// firefox refuses to run as root in a home it does not own, so it
	// gets the profile directory as its home; env execs it in place, so
	// the process started is firefox itself.
	{name: "firefox", pkg: "firefox-esr", bins: []string{"firefox-esr", "firefox"}, args: func(bin, url, dir string) []string {
		return []string{"env", "HOME=" + dir, bin, "--headless", "--no-remote", "--new-instance", "--profile", dir, url}
	}},
}

// find returns the browser's program, installing its Debian package if
// it is missing; it skips the test, saying why, when that is not
// possible: the browsers are an optional part of the scenario.
func (b browser) find(t *testing.T) string {
	t.Helper()
	look := func() (string, error) {
		var err error
		for _, name := range b.bins {
			var p string
			if p, err = exec.LookPath(name); err == nil {
				return p, nil
			}
		}
		return "", err
	}
	if p, err := look(); err == nil {
		return p
	}
	if err := tryAptInstall(t, b.pkg); err != nil {
		t.Skipf("%s is not installed and installing it failed; skipping: %v", b.pkg, err)
	}
	p, err := look()
	if err != nil {
		t.Fatalf("%s installed but not found: %v", b.pkg, err)
	}
	return p
}

// testBrowser opens the page in each browser (see runBrowser).
func (tf *turnFarm) testBrowser(t *testing.T) {
	if os.Getenv(BrowserEnv) == "0" {
		t.Skipf("%s=0: browser part skipped", BrowserEnv)
	}
	var reports browserReports
	var chromium string
	for _, b := range browsers {
		t.Run(b.name, func(t *testing.T) {
			rep := tf.runBrowser(t, b)
			if b.name == "chromium" {
				chromium = rep.bin
			}
			reports.add(rep.browserReport)
		})
	}
	if png := os.Getenv(ScreenshotEnv); png != "" && chromium != "" {
		reports.render(t, chromium, png)
	}
}

// browserRun is one browser's run: its program and what its page reported.
type browserRun struct {
	bin string
	browserReport
}

// runBrowser serves the page from the client host and opens it in the
// headless browser there: with the balancer address as stun: and as
// turn: over UDP, then as turn: over TCP, each pair of peer connections
// must gather relay candidates on a coturn (by following the 300) and
// echo a message over a data channel.
func (tf *turnFarm) runBrowser(t *testing.T, b browser) (run browserRun) {
	bin := b.find(t)
	run.bin, run.browser, run.version = bin, b.name, browserVersion(bin)
	vip := tf.balancer.String()
	cases := []browserCase{
		{Name: "turn-udp", URLs: []string{"stun:" + vip, "turn:" + vip + "?transport=udp"}, Proto: "udp"},
		{Name: "turn-tcp", URLs: []string{"turn:" + vip + "?transport=tcp"}, Proto: "tcp"},
	}
	user, pass := turnRESTCredential(turnSecret, turnUser)
	cfg, err := json.Marshal(map[string]any{"cases": cases, "username": user, "credential": pass})
	if err != nil {
		t.Fatal(err)
	}
	client := tf.c.topo.Client()
	results := serveBrowserPage(t, client, fmt.Sprintf(browserPage, cfg))
	url := "http://" + netip.AddrPortFrom(client.Addr, browserPort).String() + "/"
	dir := filepath.Join(tf.dir, b.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	args := b.args(bin, url, dir)
	p := client.StartIn(t, filepath.Join(tf.dir, "logs"), args[0], args[1:]...)
	defer func() { _ = p.Kill() }()

	var got []browserResult
	select {
	case got = <-results:
	case <-p.Done():
		t.Fatalf("%s exited before the page reported:\n%s", b.name, tail(p.Log(), 20))
	case <-time.After(browserTimeout):
		t.Fatalf("the page reported nothing within %v; %s's log:\n%s", browserTimeout, b.name, tail(p.Log(), 20))
	}
	coturns := make(map[netip.Addr]bool)
	for _, c := range tf.coturns {
		coturns[c.addr.Addr()] = true
	}
	for i, c := range cases {
		if i >= len(got) {
			t.Errorf("%s: no result", c.Name)
			continue
		}
		checkBrowserResult(t, c, got[i], coturns)
	}
	run.cases, run.results = cases, got
	return run
}

// checkBrowserResult checks one case: the echo came back over a relay
// candidate of the case's protocol, allocated on a coturn.
func checkBrowserResult(t *testing.T, c browserCase, r browserResult, coturns map[netip.Addr]bool) {
	t.Helper()
	if r.Error != "" || r.Echo != "echo:"+c.Name {
		t.Errorf("%s: data channel failed: error %q, echo %q, candidates %q", c.Name, r.Error, r.Echo, r.Candidates)
		return
	}
	relay, err := netip.ParseAddrPort(r.Address)
	if r.CandidateType != "relay" || r.RelayProtocol != c.Proto || err != nil || !coturns[relay.Addr()] {
		t.Errorf("%s: selected local candidate %s %s %q, want a relay over %s on a coturn", c.Name, r.CandidateType, r.RelayProtocol, r.Address, c.Proto)
		return
	}
	t.Logf("%s: data channel echoed over a %s relay candidate %s (candidates: %s)", c.Name, r.RelayProtocol, r.Address, strings.Join(r.Candidates, "; "))
}

// serveBrowserPage serves page at / on the client host's browserPort and
// returns the channel the page's POST to /result is decoded into. The
// server closes when the test ends.
func serveBrowserPage(t *testing.T, h *Host, page string) <-chan []browserResult {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(h.Addr, browserPort).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	results := make(chan []browserResult, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	})
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		var got []browserResult
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case results <- got:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("page server: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
		<-done
	})
	return results
}
