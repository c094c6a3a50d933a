package node

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/internal/pki"
)

func TestAPITLSConfig(t *testing.T) {
	f := writeTLSFiles(t, "prod", "n1", time.Now(), time.Hour)
	on, off := true, false
	for _, tt := range []struct {
		name   string
		http   string
		tls    bool
		apiTLS *bool
		want   bool
		err    string
	}{
		{"loopback with tls block", "127.0.0.1:7480", true, nil, false, ""},
		{"localhost with tls block", "localhost:7480", true, nil, false, ""},
		{"other address with tls block", "198.18.0.11:7480", true, nil, true, ""},
		{"any address with tls block", "0.0.0.0:7480", true, nil, true, ""},
		{"other address without tls block", "198.18.0.11:7480", false, nil, false, ""},
		{"turned off", "198.18.0.11:7480", true, &off, false, ""},
		{"turned on on loopback", "127.0.0.1:7480", true, &on, true, ""},
		{"on without tls block", "127.0.0.1:7480", false, &on, false, `api_tls: "true" needs the tls block`},
		{"no api", "", true, &on, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tlsConfig(f)
			if !tt.tls {
				c.TLS = TLSConfig{}
			}
			c.HTTP, c.APITLS, c.APIToken = tt.http, tt.apiTLS, testReadToken
			rt, err := c.Build()
			switch {
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Validate = %v, want %q", err, tt.err)
				}
			case err != nil:
				t.Fatal(err)
			case rt.Parsed.APITLS != tt.want:
				t.Errorf("APITLS = %t, want %t", rt.Parsed.APITLS, tt.want)
			}
		})
	}
}

func TestAPITLSKey(t *testing.T) {
	for _, tt := range []struct {
		src  string
		args []string
		want string // "", "true" or "false"
	}{
		{"", nil, ""},
		{"api_tls = true\n", nil, "true"},
		{"api_tls = false\n", nil, "false"},
		{"", []string{"-api-tls"}, "true"},
		{"api_tls = true\n", []string{"-api-tls=false"}, "false"},
	} {
		_, fs := fileAndFlags(t, tt.src, tt.args)
		if got := fs.Lookup("api-tls").Value.String(); got != tt.want {
			t.Errorf("%q %q: api_tls = %q, want %q", tt.src, tt.args, got, tt.want)
		}
	}
	if _, err := ParseConfig([]byte("api_tls = \"maybe\"\n"), "usher.hcl"); err == nil || !strings.Contains(err.Error(), "api_tls: true or false") {
		t.Errorf("api_tls = \"maybe\": %v", err)
	}
}

// TestAPIOverTLS serves an agent's API over HTTPS and checks what a client
// that verifies it sees: the farm's CA and the node's name accepted, a
// certificate of another node or another CA refused before
// any request is sent, plain HTTP refused, and a certificate reloaded from
// disk served at the next connection.
func TestAPIOverTLS(t *testing.T) {
	files := writeTLSFiles(t, "prod", "n1", time.Now(), time.Hour)
	c := tlsConfig(files)
	on := true
	c.APITLS = &on
	c.APIToken = testReadToken
	a := startAgent(t, c)
	if !strings.HasPrefix(a.APIURL(), "https://") {
		t.Fatalf("APIURL %q", a.APIURL())
	}
	farm := verifierOf(t, files.ca.CertPEM())
	other := writeTLSFiles(t, "prod", "n1", time.Now(), time.Hour) // same farm name, another CA
	for _, tt := range []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"farm CA", APIClientTLS(farm, ""), true},
		{"farm CA and node", APIClientTLS(farm, "n1"), true},
		{"another node", APIClientTLS(farm, "n2"), false},
		{"another CA", APIClientTLS(verifierOf(t, other.ca.CertPEM()), ""), false},
		{"system roots", &tls.Config{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := getOverTLS(a.APIURL()+"/v1/status", tt.cfg)
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok && err == nil {
				t.Fatal("the client accepted the agent's certificate")
			}
			if !tt.ok && tt.cfg.VerifyConnection != nil && !errors.Is(err, ErrAPICertificate) {
				t.Errorf("error %v does not wrap ErrAPICertificate", err)
			}
		})
	}
	resp, err := http.Get("http://" + a.HTTPAddr() + "/v1/status")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the HTTPS API answered plain HTTP")
		}
	}

	// SIGHUP's reload: the next connection gets the new certificate.
	before, _ := getOverTLS(a.APIURL()+"/v1/health", APIClientTLS(farm, "n1"))
	files.issue(t, "n1", time.Now(), 2*time.Hour)
	if _, err := a.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	after, err := getOverTLS(a.APIURL()+"/v1/health", APIClientTLS(farm, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if before == "" || before == after {
		t.Errorf("certificate serial %s before the reload, %s after", before, after)
	}
}

// verifierOf returns the verifier of the CA certificate caPEM.
func verifierOf(t *testing.T, caPEM []byte) *pki.Verifier {
	t.Helper()
	v, err := pki.NewVerifier(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// getOverTLS GETs url on a new connection made with cfg and returns the
// serial number of the certificate the server presented.
func getOverTLS(url string, cfg *tls.Config) (string, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
}
