//go:build linux

package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/usherlb/usher/internal/pki"
)

// e2eFarm is the farm name (label) of the chaos farms.
const e2eFarm = "usher-e2e"

// farmCredentials makes, with the binary's own commands (`usher tls`,
// `usher keygen`), what a farm of several voters needs to start: a farm
// CA, a certificate per node and a gossip key, all in dir. It returns each
// node's flags giving it its credentials.
func farmCredentials(t *testing.T, bin, dir string, nodes []string) map[string][]string {
	t.Helper()
	run := func(args ...string) string {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("usher %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("tls", "ca", "create", "-farm", e2eFarm, "-dir", dir)
	key := strings.TrimSpace(run("keygen"))
	caFile := farmCAFile(dir)
	creds := make(map[string][]string, len(nodes))
	for _, n := range nodes {
		run("tls", "cert", "create", "-node", n, "-dir", dir)
		base := pki.NodeBase(dir, e2eFarm, n)
		creds[n] = []string{
			"-label", e2eFarm,
			"-encrypt-key", key,
			"-tls-ca-file", caFile,
			"-tls-cert-file", base + ".pem",
			"-tls-key-file", base + "-key.pem",
		}
	}
	return creds
}

// farmCAFile is where farmCredentials writes the farm CA's certificate.
func farmCAFile(dir string) string { return pki.CABase(dir, e2eFarm) + ".pem" }
