package e2e

import (
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ScreenshotEnv names a PNG file (relative to e2e/, where the tests run, or
// absolute): when set, TestTURN/browser renders what each browser's page
// reported, with the browsers' versions, into it with headless chromium.
// docs/turn-browsers.png is made so:
//
//	USHER_E2E_SCREENSHOT=$PWD/docs/turn-browsers.png go test -run '^TestTURN$/^browser$' ./e2e
const ScreenshotEnv = "USHER_E2E_SCREENSHOT"

// browserReport is what one browser's page reported, for the screenshot.
type browserReport struct {
	browser, version string
	cases            []browserCase
	results          []browserResult
}

// browserReports gathers the reports of one TestTURN/browser run.
type browserReports struct {
	mu  sync.Mutex
	all []browserReport
}

func (r *browserReports) add(b browserReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, b)
}

// browserVersion is what the browser's program says of its version.
func browserVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "version unknown"
	}
	return strings.TrimSpace(string(out))
}

// render writes the reports as a page and has headless chromium (at
// chromium) take its screenshot into png. It reads only a local file.
func (r *browserReports) render(t *testing.T, chromium, png string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`<!doctype html><html><body style="font: 14px sans-serif; margin: 16px">`)
	b.WriteString(`<h3>Browsers through the Usher balancer address to a coturn farm (e2e TestTURN/browser)</h3>`)
	fmt.Fprintf(&b, `<p>%s; iceTransportPolicy "relay"; each case: two peer connections, a data channel echo over the selected relay candidate.</p>`,
		html.EscapeString(time.Now().UTC().Format("2006-01-02")))
	b.WriteString(`<table border="1" cellpadding="5" style="border-collapse: collapse">`)
	b.WriteString(`<tr><th>browser</th><th>ICE servers</th><th>echo</th><th>local candidate</th><th>relay protocol</th><th>relay address</th></tr>`)
	r.mu.Lock()
	for _, rep := range r.all {
		for i, c := range rep.cases {
			var res browserResult
			if i < len(rep.results) {
				res = rep.results[i]
			}
			echo := res.Echo
			if res.Error != "" {
				echo = "error: " + res.Error
			}
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>",
				html.EscapeString(rep.version), html.EscapeString(strings.Join(c.URLs, " ")), html.EscapeString(echo),
				html.EscapeString(res.CandidateType), html.EscapeString(res.RelayProtocol), html.EscapeString(res.Address))
		}
	}
	r.mu.Unlock()
	b.WriteString(`</table></body></html>`)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(png)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1100,330",
		"--screenshot="+abs, "file://"+page).CombinedOutput()
	if _, serr := os.Stat(abs); err != nil || serr != nil {
		t.Fatalf("screenshot into %s: %v %v\n%s", abs, err, serr, out)
	}
	t.Logf("screenshot of the browsers' results in %s", abs)
}
