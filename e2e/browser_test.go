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
	"sync"
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
	// Tries is how many times the page runs the case until it succeeds
	// (once when 0), as an application that gathers again would.
	Tries int `json:"tries,omitempty"`
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
	// Started, RelayAt and EchoAt are the page's instants (Unix
	// milliseconds) of the case's start, its first relay candidate and
	// the echo's arrival; 0 when the event did not happen.
	Started int64 `json:"started"`
	RelayAt int64 `json:"relayAt"`
	EchoAt  int64 `json:"echoAt"`
	// Attempts is how many times the case ran; FirstError and
	// FirstStarted are the first attempt's, when there were several.
	Attempts     int    `json:"attempts"`
	FirstError   string `json:"firstError"`
	FirstStarted int64  `json:"firstStarted"`
}

// browserPage is the page: for each case two RTCPeerConnections in the
// page, signalled directly, a data channel from the first that the second
// echoes, and the selected pair's local candidate from getStats; then it
// POSTs the results to result (beside the page). Every instant it reports
// is the page's Date.now(), Unix milliseconds. Optional settings: gate, a
// URL the page fetches before it starts (the test answers it when it
// wants the page to go); parallel, to run the cases at once rather than
// one after the other; echoMs, how long a case waits for its echo;
// retryMs, the pause before a case with tries runs again. A case fails as
// soon as one of its connections has gathered every candidate it will
// without a relay one.
const browserPage = `<!doctype html>
<html><body><pre id="out">running</pre><script>
const cfg = %s;
async function runCase(c) {
  const conf = {iceServers: [{urls: c.urls, username: cfg.username, credential: cfg.credential}], iceTransportPolicy: 'relay'};
  const a = new RTCPeerConnection(conf), b = new RTCPeerConnection(conf);
  const cands = [];
  const r = {name: c.name, candidates: cands, started: Date.now()};
  const relayed = {a: false, b: false};
  let fail;
  const gathered = (side, other) => e => {
    if (!e.candidate) {
      // Gathering is over: without a relay candidate this side can never connect.
      if (!relayed[side]) fail(new Error(side + ': gathering complete without a relay candidate'));
      return;
    }
    if (/ typ relay /.test(e.candidate.candidate)) {
      relayed[side] = true;
      if (side === 'a' && !r.relayAt) r.relayAt = Date.now();
    }
    if (side === 'a') cands.push(e.candidate.candidate);
    other.addIceCandidate(e.candidate);
  };
  a.onicecandidate = gathered('a', b);
  b.onicecandidate = gathered('b', a);
  b.ondatachannel = e => { e.channel.onmessage = m => e.channel.send('echo:' + m.data); };
  const dc = a.createDataChannel('usher');
  const wait = cfg.echoMs || 15000;
  const echo = new Promise((resolve, reject) => {
    fail = reject;
    dc.onopen = () => dc.send(c.name);
    dc.onmessage = m => { r.echoAt = Date.now(); resolve(m.data); };
    setTimeout(() => reject(new Error('no echo within ' + wait / 1000 + ' s; ice ' + a.iceConnectionState + ', gathering ' + a.iceGatheringState)), wait);
  });
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
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
const safe = c => runCase(c).catch(e => ({name: c.name, error: String(e)}));
// withRetries runs a case up to c.tries times, retryMs apart, as an
// application that gathers again when a connection failed would.
async function withRetries(c) {
  let r = await safe(c);
  const first = r;
  let attempts = 1;
  while (r.error && attempts < (c.tries || 1)) {
    await new Promise(res => setTimeout(res, cfg.retryMs || 500));
    r = await safe(c);
    attempts++;
  }
  r.attempts = attempts;
  if (attempts > 1) { r.firstError = first.error; r.firstStarted = first.started; }
  return r;
}
(async () => {
  if (cfg.gate) await fetch(cfg.gate);
  let results = [];
  if (cfg.parallel) {
    results = await Promise.all(cfg.cases.map(withRetries));
  } else {
    for (const c of cfg.cases) results.push(await withRetries(c));
  }
  await fetch('result', {method: 'POST', body: JSON.stringify(results)});
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

// lookup returns the browser's program if it is installed.
func (b browser) lookup() (string, error) {
	var err error
	for _, name := range b.bins {
		var p string
		if p, err = exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", err
}

// find returns the browser's program, installing its Debian package if
// it is missing; it skips the test, saying why, when that is not
// possible: the browsers are an optional part of the scenario.
func (b browser) find(t *testing.T) string {
	t.Helper()
	if p, err := b.lookup(); err == nil {
		return p
	}
	if err := tryAptInstall(t, b.pkg); err != nil {
		t.Skipf("%s is not installed and installing it failed; skipping: %v", b.pkg, err)
	}
	p, err := b.lookup()
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
	cases := tf.browserCases()
	client := tf.c.topo.Client()
	srv := serveBrowserPages(t, client, map[string]string{b.name: browserPageFor(t, cases, nil)})
	results, url := srv.results[b.name], srv.url(client, b.name)
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
	coturns := tf.coturnAddrs()
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

// coturnAddrs returns the set of the coturns' host addresses.
func (tf *turnFarm) coturnAddrs() map[netip.Addr]bool {
	out := make(map[netip.Addr]bool)
	for _, c := range tf.coturns {
		out[c.addr.Addr()] = true
	}
	return out
}

// browserCases are the page's cases: the balancer address as stun: and
// as turn: over UDP, and as turn: over TCP.
func (tf *turnFarm) browserCases() []browserCase {
	vip := tf.balancer.String()
	return []browserCase{
		{Name: "turn-udp", URLs: []string{"stun:" + vip, "turn:" + vip + "?transport=udp"}, Proto: "udp"},
		{Name: "turn-tcp", URLs: []string{"turn:" + vip + "?transport=tcp"}, Proto: "tcp"},
	}
}

// browserPageFor returns the page running cases with the farm's TURN REST
// credentials and the optional settings in extra (see browserPage).
func browserPageFor(t *testing.T, cases []browserCase, extra map[string]any) string {
	t.Helper()
	user, pass := turnRESTCredential(turnSecret, turnUser)
	cfg := map[string]any{"cases": cases, "username": user, "credential": pass}
	for k, v := range extra {
		cfg[k] = v
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(browserPage, b)
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

// pageServer serves the browsers' pages on the client host's
// browserPort: browser NAME's page at /NAME/, its results posted to
// /NAME/result. A page may fetch /NAME/go first, which answers only once
// the test opens the gate.
type pageServer struct {
	pages   map[string]string
	results map[string]chan []browserResult
	// arrived receives a browser's name when its page fetches /NAME/go.
	arrived  chan string
	gate     chan struct{}
	openOnce sync.Once
}

// serveBrowserPages serves pages (a page by browser name) on h's
// browserPort until the test ends.
func serveBrowserPages(t *testing.T, h *Host, pages map[string]string) *pageServer {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(h.Addr, browserPort).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s := &pageServer{pages: pages, results: make(map[string]chan []browserResult),
		arrived: make(chan string, len(pages)), gate: make(chan struct{})}
	for name := range pages {
		s.results[name] = make(chan []browserResult, 1)
	}
	srv := &http.Server{Handler: s.mux(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("page server: %v", err)
		}
	}()
	t.Cleanup(func() {
		s.open()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
		<-done
	})
	return s
}

// url returns the address of browser name's page.
func (s *pageServer) url(h *Host, name string) string {
	return "http://" + netip.AddrPortFrom(h.Addr, browserPort).String() + "/" + name + "/"
}

// open opens the gate: every page waiting in /NAME/go goes on.
func (s *pageServer) open() { s.openOnce.Do(func() { close(s.gate) }) }

// mux routes the page, its gate and its results.
func (s *pageServer) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{name}/{$}", func(w http.ResponseWriter, r *http.Request) {
		page, ok := s.pages[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	})
	mux.HandleFunc("GET /{name}/go", func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.arrived <- r.PathValue("name"):
		default:
		}
		select {
		case <-s.gate:
			w.WriteHeader(http.StatusNoContent)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST /{name}/result", func(w http.ResponseWriter, r *http.Request) {
		ch, ok := s.results[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		var got []browserResult
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case ch <- got:
		default:
		}
	})
	return mux
}
