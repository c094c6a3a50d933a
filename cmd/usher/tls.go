package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/usherlb/usher/internal/pki"
)

// tlsAbout is the help of `usher tls`.
const tlsAbout = `Make the certificates of Raft's mutual TLS, as 'consul tls' does.

  usher tls ca create [-farm NAME] [-dir D] [-days N]
      a new farm CA: D/usher-NAME-ca.pem (the certificate, for every node's
      tls.ca_file) and D/usher-NAME-ca-key.pem (the key that signs node
      certificates: keep it off the nodes).
  usher tls cert create -node NAME [-ip A,B] [-ca-file F] [-ca-key-file F] [-dir D] [-days N]
      a certificate for node NAME, signed by the CA: D/usher-FARM-NAME.pem
      (tls.cert_file) and D/usher-FARM-NAME-key.pem (tls.key_file). -ip
      lists the addresses, other than its Raft address's, that the node may
      name as its session address: the others never put it in a redirect.

Every certificate names the farm, which must be the agents' label, and a node
certificate names its node, which must be the agent's node_name: a node
accepts Raft connections only from certificates of its own CA, its own farm
and, once the farm has formed, a node of its Raft configuration. Keys are
written with mode 0600 and existing files are never overwritten. A renewed
certificate is put into use by SIGHUP to the agent.

Set-up of a farm of three voters:

  usher tls ca create -farm prod
  usher tls cert create -node n1     (and n2, n3: one per node)
  usher keygen                       (the gossip key, encrypt_key)

then on node n1:

  label       = "prod"
  encrypt_key = "<the key>"
  tls {
    ca_file   = "/etc/usher/usher-prod-ca.pem"
    cert_file = "/etc/usher/usher-prod-n1.pem"
    key_file  = "/etc/usher/usher-prod-n1-key.pem"
  }`

// runTLS implements `usher tls`.
func runTLS(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) >= 2 && args[1] == "create" {
		switch args[0] {
		case "ca":
			return runTLSCACreate(args[2:], stdout, stderr)
		case "cert":
			return runTLSCertCreate(args[2:], stdout, stderr)
		}
	}
	usage := "Usage: usher tls ca create | cert create [flags]\n\n" + tlsAbout + "\n"
	fmt.Fprint(stderr, usage) // as the flag package prints every command's help
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		return 0
	}
	return 2
}

// runTLSCACreate implements `usher tls ca create`.
func runTLSCACreate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("tls ca create", "[-farm NAME] [-dir D] [-days N]",
		"Create a farm CA: its certificate, for every node's tls.ca_file, and its key,\nwhich signs node certificates ('usher tls cert create') and should stay off\nthe nodes. The farm name must be the agents' label. See 'usher tls -h'.", stderr)
	farm := fs.String("farm", "usher", "the farm's name: the agents' label (letters, digits, '-', '_', '.')")
	dir := fs.String("dir", ".", "directory the files are written to")
	days := fs.Int("days", int(pki.DefaultCAValidity/(24*time.Hour)), "days the CA is valid")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 || *days < 1 {
		fs.Usage()
		return 2
	}
	ca, err := pki.NewCA(*farm, time.Now(), time.Duration(*days)*24*time.Hour, rand.Reader)
	if err != nil {
		fmt.Fprintf(stderr, "usher tls ca create: -farm: %v\n", err)
		return 2
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		fmt.Fprintf(stderr, "usher tls ca create: %v\n", err)
		return 1
	}
	base := pki.CABase(*dir, *farm)
	if err := pki.WriteNew([]pki.File{{Path: base + ".pem", Data: ca.CertPEM(), Mode: 0o644}, {Path: base + "-key.pem", Data: keyPEM, Mode: 0o600}}, saved(stdout)); err != nil {
		fmt.Fprintf(stderr, "usher tls ca create: %v\n", err)
		return 1
	}
	return 0
}

// runTLSCertCreate implements `usher tls cert create`.
func runTLSCertCreate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("tls cert create", "-node NAME [-ip A,B] [-ca-file F] [-ca-key-file F] [-dir D] [-days N]",
		"Create a certificate and key for node NAME (the agent's node_name), signed by\nthe farm's CA. See 'usher tls -h'.", stderr)
	nodeName := fs.String("node", "", "the node's name: the agent's node_name (required)")
	caFile := fs.String("ca-file", "", "the CA certificate (default: the one usher-*-ca.pem in -dir)")
	caKeyFile := fs.String("ca-key-file", "", "the CA key (default: -ca-file with -key before .pem)")
	dir := fs.String("dir", ".", "directory the files are written to, and the CA is looked for in")
	days := fs.Int("days", int(pki.DefaultCertValidity/(24*time.Hour)), "days the certificate is valid (at most the CA's remaining life)")
	ipList := fs.String("ip", "", "comma-separated session addresses the node may announce besides its raft address's")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 || *nodeName == "" || *days < 1 {
		fs.Usage()
		return 2
	}
	var ips []netip.Addr
	for _, f := range strings.FieldsFunc(*ipList, func(r rune) bool { return r == ',' || r == ' ' }) {
		ip, err := netip.ParseAddr(f)
		if err != nil {
			fmt.Fprintf(stderr, "usher tls cert create: -ip: %v\n", err)
			return 2
		}
		ips = append(ips, ip)
	}
	ca, err := loadCA(*dir, *caFile, *caKeyFile)
	if err != nil {
		fmt.Fprintf(stderr, "usher tls cert create: %v\n", err)
		return 1
	}
	certPEM, keyPEM, err := ca.Issue(*nodeName, time.Now(), time.Duration(*days)*24*time.Hour, rand.Reader, ips...)
	if err != nil {
		fmt.Fprintf(stderr, "usher tls cert create: -node: %v\n", err)
		return 2
	}
	base := pki.NodeBase(*dir, ca.Farm, *nodeName)
	if err := pki.WriteNew([]pki.File{{Path: base + ".pem", Data: certPEM, Mode: 0o644}, {Path: base + "-key.pem", Data: keyPEM, Mode: 0o600}}, saved(stdout)); err != nil {
		fmt.Fprintf(stderr, "usher tls cert create: %v\n", err)
		return 1
	}
	return 0
}

// loadCA reads the CA certificate and key; an empty caFile means the one
// usher-*-ca.pem in dir, an empty caKeyFile the key beside caFile.
func loadCA(dir, caFile, caKeyFile string) (*pki.CA, error) {
	if caFile == "" {
		found, err := pki.FindCA(dir)
		if err != nil {
			return nil, fmt.Errorf("-ca-file: %w; name the CA with -ca-file", err)
		}
		caFile = found
	}
	if caKeyFile == "" {
		caKeyFile = pki.CAKeyFile(caFile)
	}
	return pki.ReadCA(caFile, caKeyFile)
}

// saved reports each file pki.WriteNew saves on stdout.
func saved(stdout io.Writer) func(string) {
	return func(path string) { fmt.Fprintf(stdout, "==> Saved %s\n", path) }
}
