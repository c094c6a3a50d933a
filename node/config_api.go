package node

import (
	"net"
	"net/netip"
	"strings"
)

// parseAPI parses the HTTP API's keys (http, api_token, api_token_file,
// api_write_token, api_write_token_file, api_tls) into p: the tokens, read
// from their files when named by one, and whether the API serves HTTPS.
//
// HTTPS is the default wherever the API is reachable from other hosts and
// the node has a certificate to serve (the tls block): a token sent in
// clear over the network is a token any host on the path can replay. On
// loopback the API stays plain HTTP by default, so that `usher status` on
// the node itself needs no CA file.
func (c *Config) parseAPI(p *Parsed, bad func(key, value, problem string)) {
	if c.HTTP == "" {
		return
	}
	host, _, err := net.SplitHostPort(c.HTTP)
	if err != nil {
		bad("http", c.HTTP, "is not a host:port address")
		return
	}
	p.APIReadToken = readToken("api_token", c.APIToken, "api_token_file", c.APITokenFile, bad)
	p.APIWriteToken = readToken("api_write_token", c.APIWriteToken, "api_write_token_file", c.APIWriteTokenFile, bad)
	if p.APIWriteToken == "" {
		p.APIWriteToken = p.APIReadToken // one token for everything
	}
	ip, err := netip.ParseAddr(host)
	p.apiLoopback = (err == nil && ip.IsLoopback()) || host == "localhost"
	if c.APITLS == nil {
		p.APITLS = c.TLS.enabled() && !p.apiLoopback
	} else {
		p.APITLS = *c.APITLS
	}
}

// checkAPI checks the HTTP API's keys: an API that other hosts reach needs
// a token, HTTPS needs the tls block, and api_hosts lists host names.
func (r *Runtime) checkAPI(bad func(key, value, problem string)) {
	if r.HTTP == "" {
		return
	}
	for _, h := range r.APIHosts {
		if h == "" || strings.ContainsAny(h, " /:@") && net.ParseIP(h) == nil {
			bad("api_hosts", h, "is not a host name or an address (no port)")
		}
	}
	if !r.Parsed.apiLoopback && r.Parsed.APIWriteToken == "" {
		bad("http", r.HTTP, "is not a loopback address: an API that other hosts reach needs api_token (or api_token_file), else anyone who reaches it can drain the farm")
	}
	if r.Parsed.APITLS && !r.TLS.enabled() {
		bad("api_tls", "true", "needs the tls block (tls.ca_file, tls.cert_file, tls.key_file): the API serves that certificate")
	}
}
